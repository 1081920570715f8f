/**
 * firstFreeIn, the range query that replaces a per-page isFree loop, agrees
 * with isFree page by page after random histories.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BuddyAllocator, PageAllocError } from '../../src/mm/index.js';

type Op =
  | { kind: 'alloc'; order: number }
  | { kind: 'free'; pick: number }
  | { kind: 'claim'; at: number; len: number }
  | { kind: 'release'; pick: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.integer({ min: 0, max: 10 }).map((order): Op => ({ kind: 'alloc', order })),
  fc.nat().map((pick): Op => ({ kind: 'free', pick })),
  fc
    .tuple(fc.nat({ max: 4095 }), fc.integer({ min: 1, max: 300 }))
    .map(([at, len]): Op => ({ kind: 'claim', at, len })),
  fc.nat().map((pick): Op => ({ kind: 'release', pick })),
);

function firstFreeByPage(b: BuddyAllocator, pfn: number, count: number): number {
  for (let p = pfn; p < pfn + count; p++) if (b.isFree(p)) return p;
  return -1;
}

describe('BuddyAllocator.firstFreeIn', () => {
  it('finds the first free page of a range, as isFree per page does', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4096 }),
        fc.array(fc.record({ at: fc.nat({ max: 4095 }), len: fc.nat({ max: 2000 }) }), {
          maxLength: 6,
        }),
        fc.array(opArb, { maxLength: 60 }),
        fc.array(fc.tuple(fc.nat({ max: 4095 }), fc.nat({ max: 4096 })), { maxLength: 20 }),
        (npages, rs, ops, queries) => {
          const b = BuddyAllocator.fromFreeRanges(
            npages,
            rs
              .filter((r) => r.at < npages)
              .map((r) => ({ pfn: r.at, count: Math.min(r.len, npages - r.at) })),
          );
          const live: [number, number][] = [];
          const claimed: [number, number][] = [];
          for (const op of ops) {
            if (op.kind === 'alloc') {
              const p = b.allocPages(op.order);
              if (p !== null) live.push([p, op.order]);
            } else if (op.kind === 'free' && live.length > 0) {
              const [p, o] = live.splice(op.pick % live.length, 1)[0];
              b.freePages(p, o);
            } else if (op.kind === 'claim' && op.at + op.len <= npages) {
              if (firstFreeByPage(b, op.at, op.len) === op.at) {
                try {
                  b.claimRange(op.at, op.len);
                  claimed.push([op.at, op.len]);
                } catch (e) {
                  if (!(e instanceof PageAllocError)) throw e;
                }
              }
            } else if (op.kind === 'release' && claimed.length > 0) {
              const [p, n] = claimed.splice(op.pick % claimed.length, 1)[0];
              b.releaseRange(p, n);
            }
          }
          for (const [at, len] of [...queries, [0, npages] as [number, number]]) {
            if (at >= npages) continue;
            const count = Math.min(len, npages - at);
            assert.equal(
              b.firstFreeIn(at, count),
              firstFreeByPage(b, at, count),
              `[${at}, +${count})`,
            );
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('starts inside a free block (a tail page) and refuses bad ranges', () => {
    const b = BuddyAllocator.fromFreeRanges(64, [{ pfn: 0, count: 64 }]);
    assert.equal(b.firstFreeIn(5, 3), 5);
    b.claimRange(0, 64);
    assert.equal(b.firstFreeIn(0, 64), -1);
    b.releaseRange(40, 8);
    assert.equal(b.firstFreeIn(0, 64), 40);
    assert.equal(b.firstFreeIn(44, 0), -1);
    for (const [p, n, code] of [
      [60, 5, 'EFAULT'],
      [-1, 2, 'EINVAL'],
      [0, 1.5, 'EINVAL'],
    ] as const) {
      assert.throws(
        () => b.firstFreeIn(p, n),
        (e: unknown) => e instanceof PageAllocError && e.code === code,
      );
    }
  });
});
