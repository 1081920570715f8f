/** Many kexecs in a row keep every pool's allocations exactly: random histories against a model. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import type { Kernel } from '../../src/kernel/kernel.js';
import { Machine } from '../../src/machine.js';
import type { Pmpool } from '../../src/pmpool/pools.js';

const MiB = 1024 * 1024;
/** Two pools: the default one and a named one; the named one sits right after it in the map. */
const CMDLINES = {
  both: 'pmpool=2M,1M pmpool=io:3M,512K',
  kho_off: 'kho=off pmpool=2M,1M pmpool=io:3M,512K',
  /** An older successor: no pmpool at all. */
  none: '',
} as const;

type Op =
  | { kind: 'alloc'; pool: 0 | 1; count: number; alignLog: number }
  | { kind: 'release'; pool: 0 | 1; pick: number; partial: boolean }
  | { kind: 'bogusRelease'; pool: 0 | 1; pfn: number }
  | { kind: 'kexec'; to: keyof typeof CMDLINES };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('alloc' as const),
      pool: fc.constantFrom(0 as const, 1 as const),
      count: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 200 })),
      alignLog: fc.integer({ min: 0, max: 6 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('release' as const),
      pool: fc.constantFrom(0 as const, 1 as const),
      pick: fc.nat(),
      partial: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('bogusRelease' as const),
      pool: fc.constantFrom(0 as const, 1 as const),
      pfn: fc.integer({ min: 0, max: 8 * 256 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('kexec' as const),
      to: fc.constantFrom('both' as const, 'both' as const, 'kho_off' as const, 'none' as const),
    }),
  },
);

/** The model: per pool, the ranges handed out (pfn -> count). */
type Model = [Map<number, number>, Map<number, number>];

function poolOf(k: Kernel, i: 0 | 1): Pmpool | undefined {
  return i === 0 ? (k.pmpool ?? undefined) : k.pmpools.get('io');
}

function check(k: Kernel, model: Model, afterKexec: boolean): void {
  for (const i of [0, 1] as const) {
    const pool = poolOf(k, i);
    assert.ok(pool);
    const expected = afterKexec ? ['v2', 'v3'] : ['fresh'];
    assert.ok(expected.includes(pool.origin), `${pool.origin} ${pool.reason}`);
    const used = new Uint8Array(pool.size / 4096);
    for (const [pfn, count] of model[i]) {
      used.fill(1, pfn - pool.base / 4096, pfn - pool.base / 4096 + count);
    }
    const meta = pool.stats().metadataPages;
    for (let p = meta; p < used.length; p++) {
      assert.equal(pool.isAllocated(pool.base / 4096 + p), used[p] === 1, `pool ${i} page ${p}`);
    }
  }
}

it('random alloc/release/kexec histories keep both pools exactly (v2, v3, older successors)', () => {
  fc.assert(
    fc.property(fc.array(op, { minLength: 1, maxLength: 40 }), (ops) => {
      const m = Machine.create({ size: 8 * MiB });
      let k = m.boot(CMDLINES.both);
      const model: Model = [new Map(), new Map()];
      let kexecs = 0;
      for (const o of ops) {
        const pool = o.kind === 'kexec' ? undefined : poolOf(k, o.pool);
        if (o.kind === 'kexec') {
          k.kexec.load({ cmdline: CMDLINES[o.to] });
          k = k.kexec.exec();
          kexecs++;
          if (o.to !== 'none') check(k, model, true);
        } else if (pool === undefined) {
        } else if (o.kind === 'alloc') {
          const align = 2 ** o.alignLog;
          const r = pool.alloc(o.count, align);
          if (r !== null) {
            assert.equal(r.pfn % align, 0);
            model[o.pool].set(r.pfn, r.count);
          }
        } else if (o.kind === 'release') {
          const held = [...model[o.pool]];
          if (held.length === 0) continue;
          const [pfn, count] = held[o.pick % held.length];
          // Releasing the tail of a range: what remains is still held.
          const cut = o.partial && count > 1 ? Math.ceil(count / 2) : 0;
          assert.equal(pool.release(pfn + cut, count - cut), true);
          if (cut > 0) model[o.pool].set(pfn, cut);
          else model[o.pool].delete(pfn);
        } else {
          const pfn = pool.base / 4096 + o.pfn;
          const held = [...model[o.pool]].some(([p, c]) => p <= pfn && pfn < p + c);
          if (!held) assert.equal(pool.release(pfn, 1), false, 'a page nobody holds');
        }
      }
      if (poolOf(k, 0) === undefined) {
        k.kexec.load({ cmdline: CMDLINES.both });
        k = k.kexec.exec();
        kexecs++;
      }
      check(k, model, kexecs > 0);
    }),
    { numRuns: 60 },
  );
});
