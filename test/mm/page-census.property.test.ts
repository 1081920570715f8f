/**
 * The page allocator's census (pages by state per cell, what memory layouts
 * are drawn from) agrees with pageState page by page after random
 * histories of every kind of state change, on allocators whose cells hold
 * one page and several.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BuddyAllocator, PageAllocError } from '../../src/mm/index.js';
import { CENSUS_CELLS, type CensusState } from '../../src/mm/page-census.js';

type Op =
  | { kind: 'alloc'; order: number }
  | { kind: 'free'; pick: number }
  | { kind: 'preserve'; pick: number }
  | { kind: 'unpreserve'; pick: number }
  | { kind: 'claim'; at: number; len: number }
  | { kind: 'release'; pick: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.integer({ min: 0, max: 10 }).map((order): Op => ({ kind: 'alloc', order })),
  fc.nat().map((pick): Op => ({ kind: 'free', pick })),
  fc.nat().map((pick): Op => ({ kind: 'preserve', pick })),
  fc.nat().map((pick): Op => ({ kind: 'unpreserve', pick })),
  fc
    .tuple(fc.nat({ max: 1 << 14 }), fc.integer({ min: 1, max: 3000 }))
    .map(([at, len]): Op => ({ kind: 'claim', at, len })),
  fc.nat().map((pick): Op => ({ kind: 'release', pick })),
);

const STATES: CensusState[] = ['free', 'allocated', 'preserved', 'reserved'];

function checkCensus(b: BuddyAllocator): void {
  const { census } = b;
  const cellPages = 2 ** census.shift;
  assert.ok(census.cells <= CENSUS_CELLS);
  for (let c = 0; c < census.cells; c++) {
    const want = new Map<CensusState, number>(STATES.map((s) => [s, 0]));
    for (let p = c * cellPages; p < Math.min(b.npages, (c + 1) * cellPages); p++) {
      const s = b.pageState(p);
      want.set(s, (want.get(s) as number) + 1);
    }
    for (const s of STATES) assert.equal(census.count(c, s), want.get(s), `cell ${c} ${s}`);
  }
}

describe('the page census', () => {
  it('counts every page of every cell in its state, whatever the history', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(1000, CENSUS_CELLS, 3 * CENSUS_CELLS + 5, 8 * CENSUS_CELLS),
        fc.array(fc.record({ at: fc.nat({ max: 1 << 14 }), len: fc.nat({ max: 9000 }) }), {
          maxLength: 5,
        }),
        fc.array(opArb, { maxLength: 50 }),
        (npages, rs, ops) => {
          const b = BuddyAllocator.fromFreeRanges(
            npages,
            rs
              .filter((r) => r.at < npages)
              .map((r) => ({ base: r.at, count: Math.min(r.len, npages - r.at) })),
          );
          const live: [number, number][] = [];
          const kept: [number, number][] = [];
          const claimed: [number, number][] = [];
          const take = <T>(list: T[], pick: number): T | undefined =>
            list.length > 0 ? list.splice(pick % list.length, 1)[0] : undefined;
          for (const op of ops) {
            if (op.kind === 'alloc') {
              const p = b.allocPages(op.order);
              if (p !== null) live.push([p, op.order]);
            } else if (op.kind === 'free') {
              const f = take(live, op.pick);
              if (f) b.freePages(f[0], f[1]);
            } else if (op.kind === 'preserve') {
              const f = take(live, op.pick);
              if (f) {
                b.markPreserved(f[0], f[1]);
                kept.push(f);
              }
            } else if (op.kind === 'unpreserve') {
              const f = take(kept, op.pick);
              if (f) {
                b.clearPreserved(f[0], f[1]);
                live.push(f);
              }
            } else if (op.kind === 'claim' && op.at + op.len <= npages) {
              try {
                b.claimRange(op.at, op.len);
                claimed.push([op.at, op.len]);
              } catch (e) {
                if (!(e instanceof PageAllocError)) throw e;
              }
            } else if (op.kind === 'release') {
              const r = take(claimed, op.pick);
              if (r) b.releaseRange(r[0], r[1]);
            }
          }
          checkCensus(b);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('counts reserved pages preserved as they are (a predecessor\u2019s blocks at bring-up)', () => {
    const b = BuddyAllocator.fromFreeRanges(4 * CENSUS_CELLS, [{ base: 1024, count: 4096 }]);
    b.markPreserved(0, 9);
    b.allocPagesAt(2048, 4);
    checkCensus(b);
    assert.equal(b.census.count(0, 'preserved'), 2 ** b.census.shift);
  });
});
