/**
 * Random histories of save, load, discard, remove and kexec through the
 * kernel (KHO and standalone pkram=) against a model: a finished node is
 * never lost, no other node's data comes back, and after every node is
 * loaded no page is left behind (free + the program's folios = what a fresh
 * generation has).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Kernel } from '../../src/kernel/kernel.js';
import { Machine } from '../../src/machine.js';
import type { LoadedFolio } from '../../src/pkram/index.js';
import { fillPattern, pattern, readAll } from './_setup.js';

const MiB = 1024 * 1024;

type Op =
  | { op: 'save'; name: number; orders: number[]; bytes: number; seed: number }
  | { op: 'discard'; name: number; seed: number }
  | { op: 'load'; name: number; take: number }
  | { op: 'remove'; name: number }
  | { op: 'kexec' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant('save' as const),
    name: fc.nat(5),
    orders: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 4 }),
    bytes: fc.nat(9000),
    seed: fc.nat(),
  }),
  fc.record({ op: fc.constant('discard' as const), name: fc.nat(5), seed: fc.nat() }),
  fc.record({ op: fc.constant('load' as const), name: fc.nat(5), take: fc.nat(4) }),
  fc.record({ op: fc.constant('remove' as const), name: fc.nat(5) }),
  fc.constant({ op: 'kexec' as const }),
);

interface Saved {
  orders: number[];
  bytes: number;
  seed: number;
}

function run(standalone: boolean, ops: Op[]): void {
  const m = Machine.create({ size: 16 * MiB });
  let k: Kernel = m.boot(standalone ? 'kho=off pkram=0' : '');
  const baseline = k.pages.stats().freePages;
  const model = new Map<string, Saved>();
  const kexec = (): void => {
    const cmdline = standalone ? `kho=off pkram=${k.pkram.finalize().toString(16)}` : '';
    k.kexec.load({ cmdline });
    k = k.kexec.exec();
  };
  const load = (name: string, take: number): void => {
    const want = model.get(name);
    assert.ok(want);
    model.delete(name);
    const node = k.pkram.prepareLoad(name);
    const obj = node.prepareLoadObj();
    assert.ok(obj);
    for (let i = 0; i < Math.min(take, want.orders.length); i++) {
      const got: LoadedFolio | null = obj.loadFolio();
      assert.ok(got);
      assert.equal(got.index, i * 100);
      assert.equal(got.folio.order, want.orders[i]);
      const bytes = k.folioBytes(got.folio);
      assert.deepEqual(bytes, pattern(bytes.length, want.seed + i));
      k.freePages(k.pkram.takeFolio(got.folio));
    }
    if (take >= want.orders.length) {
      assert.equal(obj.loadFolio(), null);
      assert.deepEqual(readAll(obj, 777), pattern(want.bytes, want.seed));
    }
    node.finishLoad();
  };
  for (const o of ops) {
    const name = `n${'name' in o ? o.name : 0}`;
    if (o.op === 'save' || o.op === 'discard') {
      if (model.has(name)) {
        assert.throws(() => k.pkram.prepareSave(name), /EEXIST/);
        continue;
      }
      const orders = o.op === 'save' ? o.orders : [0, 1];
      const node = k.pkram.prepareSave(name);
      const obj = node.prepareSaveObj();
      const folios = orders.map((order, i) => {
        const f = k.allocPages(order);
        assert.ok(f);
        fillPattern(k.folioBytes(f), o.seed + i);
        obj.saveFolio(f, i * 100);
        return f;
      });
      obj.write(pattern(o.op === 'save' ? o.bytes : 5000, o.seed));
      obj.finishSaveObj();
      if (o.op === 'discard') {
        node.discardSave();
        for (const f of folios) k.freePages(f);
        continue;
      }
      node.finishSave();
      model.set(name, { orders, bytes: o.bytes, seed: o.seed });
    } else if (o.op === 'load' || o.op === 'remove') {
      if (!model.has(name)) {
        assert.throws(() => k.pkram.prepareLoad(name), /ENOENT/);
        continue;
      }
      if (o.op === 'load') load(name, o.take);
      else {
        model.delete(name);
        k.pkram.remove(name);
      }
    } else {
      kexec();
      assert.deepEqual(
        k.pkram
          .list()
          .map((n) => n.name)
          .sort(),
        [...model.keys()].sort(),
      );
    }
  }
  // Finish: one more kexec so every node is inherited, load them all: nothing may leak.
  kexec();
  for (const name of [...model.keys()]) load(name, 99);
  assert.deepEqual(k.pkram.list(), []);
  const st = k.pages.stats();
  // What is not free: the super block page PKRAM keeps for its next finalize (if any).
  const kept = k.pkram.superPfn !== 0 ? 1 : 0;
  assert.equal(st.allocatedPages, 0);
  assert.equal(st.freePages + kept, baseline, `leaked ${baseline - st.freePages - kept} pages`);
}

for (const standalone of [false, true]) {
  test(`random save/load/discard/remove/kexec histories (${standalone ? 'pkram=' : 'KHO'}): no lost node, no leak, no mixed data`, () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 25 }), (ops) => run(standalone, ops)),
      { numRuns: 40 },
    );
  });
}
