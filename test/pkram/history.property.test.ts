/**
 * Random save/load/discard/kexec histories against a model: no finished node
 * is lost, no node returns another's data, and once every node is loaded the
 * allocator has every page back.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type LoadedFolio, PkramError } from '../../src/pkram/index.js';
import {
  bootId,
  folioBytes,
  type Machine,
  machine,
  makeFolio,
  pattern,
  readAll,
  successor,
} from './_setup.js';

interface Saved {
  folios: { order: number; index: number; bytes: Uint8Array }[];
  bytes: Uint8Array;
}

type Op =
  | { kind: 'save'; name: number; orders: number[]; len: number; discard: boolean }
  | { kind: 'load'; name: number; take: number }
  | { kind: 'kexec' };

const NPAGES = 2048;

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('save' as const),
    name: fc.integer({ min: 0, max: 5 }),
    orders: fc.array(fc.integer({ min: 0, max: 2 }), { maxLength: 3 }),
    len: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 10_000 })),
    discard: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('load' as const),
    name: fc.integer({ min: 0, max: 5 }),
    take: fc.nat(4),
  }),
  fc.constant({ kind: 'kexec' as const }),
);

function run(ops: Op[]): void {
  let m: Machine = machine(NPAGES, 0, 0);
  let gen = 0;
  let fresh = true;
  let held = 0; // pages the program allocated in this boot
  let inheritedHeld = 0; // preserved pages the program took over in this boot
  let seed = 1;
  const model = new Map<string, Saved>();
  for (const op of ops) {
    if (op.kind === 'save') {
      const name = `n${op.name}`;
      if (model.has(name)) {
        assert.throws(
          () => m.pkram.prepareSave(name),
          (e) => e instanceof PkramError && e.code === 'EEXIST',
        );
        continue;
      }
      const before = m.buddy.stats().allocatedPages;
      const node = m.pkram.prepareSave(name);
      const obj = node.prepareSaveObj();
      const saved: Saved = { folios: [], bytes: pattern(op.len, seed++) };
      for (const [i, order] of op.orders.entries()) {
        const f = makeFolio(m, order, seed++);
        held += 2 ** order;
        obj.saveFolio(f, i * 4);
        saved.folios.push({ order, index: i * 4, bytes: folioBytes(m, f).slice() });
      }
      obj.write(saved.bytes);
      obj.finishSaveObj();
      if (op.discard) {
        node.discardSave();
        const folioPages = op.orders.reduce((n, o) => n + 2 ** o, 0);
        assert.equal(m.buddy.stats().allocatedPages, before + folioPages);
      } else {
        node.finishSave();
        model.set(name, saved);
      }
    } else if (op.kind === 'load') {
      const name = `n${op.name}`;
      const want = model.get(name);
      if (want === undefined) {
        assert.throws(
          () => m.pkram.prepareLoad(name),
          (e) => e instanceof PkramError && e.code === 'ENOENT',
        );
        continue;
      }
      const node = m.pkram.prepareLoad(name);
      model.delete(name);
      const obj = node.prepareLoadObj();
      assert.ok(obj);
      for (let i = 0; i < Math.min(op.take, want.folios.length); i++) {
        const got: LoadedFolio | null = obj.loadFolio();
        assert.ok(got);
        assert.equal(got.index, want.folios[i].index);
        assert.equal(got.folio.order, want.folios[i].order);
        assert.deepEqual(folioBytes(m, got.folio), want.folios[i].bytes);
      }
      if (op.take > want.folios.length) {
        assert.equal(obj.loadFolio(), null);
        assert.deepEqual(readAll(obj, 1 + op.take * 1000), want.bytes);
      }
      node.finishLoad();
      // Inherited folios taken are now the program's: pages the successor reserved at boot.
      if (node.inherited) {
        inheritedHeld += want.folios.slice(0, op.take).reduce((n, f) => n + 2 ** f.order, 0);
      }
    } else {
      const superPfn = m.pkram.finalize();
      m = successor(
        m.device,
        superPfn,
        { generation: gen, predecessorBootId: bootId(gen % 250) },
        (gen + 1) % 250,
      );
      gen++;
      fresh = false;
      held = 0;
      inheritedHeld = 0;
    }
    assert.deepEqual(new Set(m.pkram.list().map((n) => n.name)), new Set(model.keys()));
    if (model.size === 0) {
      const st = m.buddy.stats();
      // Nothing is finalized within a boot here; a successor keeps the consumed super page
      // reserved (its own finalize reuses it), beside page 0.
      assert.equal(st.allocatedPages, held);
      assert.equal(st.reservedPages, (fresh ? 1 : 2) + inheritedHeld);
      assert.equal(m.pkram.preservedPages, 0);
      assert.equal(m.pkram.tablePages, 0);
    }
  }
}

describe('Pkram histories (property)', () => {
  it('never lose a finished node, never leak, never mix nodes up', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 25 }), (ops) => run(ops)),
      { numRuns: 80 },
    );
  });
});
