/**
 * Property test: 10,000+ mutated blobs (byte flips, u32 overwrites at header
 * fields and token positions, truncations, splices) go through Fdt.from,
 * checkFull, a full walk and every getter. Nothing but FdtError may escape,
 * and a blob that passes checkFull must be fully readable.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Fdt, FdtError } from '../../src/fdt/index.js';
import { tagOffsets } from './_mutate.js';
import { loadDtb } from './_support.js';

const SOURCES = ['basic', 'basic-v2', 'basic-v16', 'board', 'deep'].map((name) => {
  const bytes = loadDtb(name);
  return { name, bytes, tags: tagOffsets(bytes).map((t) => t.abs) };
});

const INTERESTING = [
  0, 1, 2, 3, 4, 8, 9, 16, 17, 0x28, 0x7fffffff, 0x80000000, 0xfffffffc, 0xffffffff, 0xd00dfeed,
];

type Op =
  | { kind: 'flip'; at: number; value: number }
  | { kind: 'header'; field: number; value: number }
  | { kind: 'token'; which: number; word: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'splice'; from: number; to: number; len: number; insert: boolean };

const u32 = fc.oneof(
  fc.constantFrom(...INTERESTING),
  fc.nat({ max: 0xffffffff }),
  fc.nat({ max: 4096 }),
);
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.nat({ max: 255 }) }),
  fc.record({ kind: fc.constant('header' as const), field: fc.nat({ max: 9 }), value: u32 }),
  fc.record({
    kind: fc.constant('token' as const),
    which: fc.nat(),
    word: fc.nat({ max: 2 }),
    value: u32,
  }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('splice' as const),
    from: fc.nat(),
    to: fc.nat(),
    len: fc.nat({ max: 64 }),
    insert: fc.boolean(),
  }),
);

function mutate(src: (typeof SOURCES)[number], ops: Op[]): Uint8Array {
  let b = src.bytes.slice();
  for (const o of ops) {
    if (b.length === 0) break;
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    switch (o.kind) {
      case 'flip':
        b[o.at % b.length] = o.value;
        break;
      case 'header':
        if (o.field * 4 + 4 <= b.length) dv.setUint32(o.field * 4, o.value);
        break;
      case 'token': {
        const at = src.tags[o.which % src.tags.length]! + o.word * 4;
        if (at + 4 <= b.length) dv.setUint32(at, o.value);
        break;
      }
      case 'truncate':
        b = b.slice(0, o.at % b.length);
        break;
      case 'splice': {
        const from = o.from % b.length;
        const piece = b.slice(from, from + o.len);
        const to = o.to % b.length;
        if (o.insert) {
          const out = new Uint8Array(b.length + piece.length);
          out.set(b.subarray(0, to));
          out.set(piece, to);
          out.set(b.subarray(to), to + piece.length);
          b = out;
        } else {
          b.set(piece.subarray(0, b.length - to), to);
        }
        break;
      }
    }
  }
  return b;
}

/** Run `fn`; an FdtError is an acceptable answer, anything else fails the property. */
function tolerate<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (e) {
    if (e instanceof FdtError) return undefined;
    throw e;
  }
}

const MAX_NODES = 200;

/** Everything a user can ask of a blob. Returns whether checkFull passed. */
function exercise(bytes: Uint8Array): boolean {
  const fdt = tolerate(() => Fdt.from(bytes));
  if (!fdt) return false;
  const valid = isValid(fdt);
  tolerate(() => fdt.reservations());
  const nodes: number[] = [];
  tolerate(() => {
    for (const e of fdt.walk()) {
      nodes.push(e.offset);
      if (nodes.length >= MAX_NODES) break;
    }
  });
  for (const off of nodes) {
    tolerate(() => fdt.getName(off));
    const path = tolerate(() => fdt.getPath(off));
    if (path !== undefined) tolerate(() => fdt.pathOffset(path));
    tolerate(() => fdt.parentOffset(off));
    tolerate(() => fdt.nodeDepth(off));
    tolerate(() => [...fdt.subnodes(off)]);
    tolerate(() => fdt.subnodeOffset(off, 'serial'));
    tolerate(() => fdt.addressCells(off));
    tolerate(() => fdt.sizeCells(off));
    tolerate(() => fdt.getReg(off));
    const ph = tolerate(() => fdt.getPhandle(off));
    if (ph) tolerate(() => fdt.nodeOffsetByPhandle(ph));
    tolerate(() => {
      for (const p of fdt.propertyOffsets(off)) {
        const prop = tolerate(() => fdt.getPropertyByOffset(p));
        if (!prop) continue;
        tolerate(() => fdt.getProp(off, prop.name));
        tolerate(() => fdt.getU32(off, prop.name));
        tolerate(() => fdt.getU64(off, prop.name));
        tolerate(() => fdt.getCells(off, prop.name));
        tolerate(() => fdt.getString(off, prop.name));
        tolerate(() => fdt.getStringList(off, prop.name));
      }
    });
  }
  for (const p of ['serial0', 'eth/mdio', '/soc/serial', '/aliases', '/cpus/cpu@1', 'x']) {
    tolerate(() => fdt.pathOffset(p));
  }
  tolerate(() => fdt.getAlias('serial0'));
  tolerate(() => fdt.nodeOffsetByPhandle(1));
  tolerate(() => fdt.nextNode(-1, 0));
  return valid;
}

function isValid(fdt: Fdt): boolean {
  try {
    fdt.checkFull();
    return true;
  } catch (e) {
    if (e instanceof FdtError) return false;
    throw e;
  }
}

describe('fuzz: mutated blobs', () => {
  it('only FdtError escapes, over 10,000 mutated blobs', () => {
    let runs = 0;
    fc.assert(
      fc.property(
        fc.nat({ max: SOURCES.length - 1 }),
        fc.array(op, { minLength: 1, maxLength: 4 }),
        (which, ops) => {
          runs++;
          exercise(mutate(SOURCES[which]!, ops));
        },
      ),
      { numRuns: 10_000, seed: Number(process.env['FUZZ_SEED'] ?? 20251123) },
    );
    assert.equal(runs >= 10_000, true);
  });

  // Before v16 a node name without '/' passes the full check but not getName
  // (as in libfdt), so this property is about v16/v17 blobs.
  const MODERN = SOURCES.flatMap((src, i) => (src.name === 'basic-v2' ? [] : [i]));
  it('a v16/v17 blob that passes checkFull can be walked and read without any error', () => {
    let valid = 0;
    fc.assert(
      fc.property(
        fc.constantFrom(...MODERN),
        fc.array(op, { minLength: 1, maxLength: 2 }),
        (which, ops) => {
          const bytes = mutate(SOURCES[which]!, ops);
          const fdt = tolerate(() => Fdt.from(bytes));
          if (!fdt || !isValid(fdt)) return;
          valid++;
          // The full check promises every tag walks and every name resolves.
          for (const { offset } of fdt.walk()) {
            fdt.getName(offset);
            for (const p of fdt.propertyOffsets(offset)) fdt.getPropertyByOffset(p);
          }
          fdt.reservations();
        },
      ),
      { numRuns: 2_000, seed: 7 },
    );
    assert.ok(valid > 100, `only ${valid} mutated blobs stayed valid`);
  });
});
