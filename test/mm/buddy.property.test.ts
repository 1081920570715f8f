/**
 * Property tests: random free-range layouts and random histories of
 * allocation and release, checked against a per-page model.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  BuddyAllocator,
  MAX_PAGE_ORDER,
  PageAllocError,
  type PageState,
  type PfnRange,
} from '../../src/mm/index.js';

// Model states per page.
const OUTSIDE = 0; // not in any initial free range: reserved for good
const FREE = 1;
const ALLOCATED = 2;
const CLAIMED = 3; // reserved later by claimRange
const PRESERVED = 4;

const EXPECTED_STATE: readonly PageState[] = [
  'reserved',
  'free',
  'allocated',
  'reserved',
  'preserved',
];

interface Layout {
  npages: number;
  ranges: PfnRange[];
}

const layoutArb: fc.Arbitrary<Layout> = fc.integer({ min: 1, max: 3000 }).chain((npages) =>
  fc
    .array(fc.record({ at: fc.nat({ max: npages - 1 }), len: fc.nat({ max: 1500 }) }), {
      maxLength: 8,
      size: 'max',
    })
    .map((rs) => ({
      npages,
      ranges: rs.map(({ at, len }) => ({ pfn: at, count: Math.min(len, npages - at) })),
    })),
);

// Small orders are the common case, but every order must appear.
const orderArb = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 2 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: MAX_PAGE_ORDER }) },
);

type Cmd =
  | { kind: 'alloc'; order: number }
  | { kind: 'free'; pick: number }
  | { kind: 'allocAt'; at: number; order: number }
  | { kind: 'claim'; at: number; len: number }
  | { kind: 'release'; pick: number }
  | { kind: 'preserve'; pick: number }
  | { kind: 'unpreserve'; pick: number };

const basicCmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 3, arbitrary: orderArb.map((order): Cmd => ({ kind: 'alloc', order })) },
  { weight: 2, arbitrary: fc.nat().map((pick): Cmd => ({ kind: 'free', pick })) },
);

const mixedCmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  basicCmdArb,
  fc
    .tuple(fc.nat({ max: 2999 }), orderArb)
    .map(([at, order]): Cmd => ({ kind: 'allocAt', at, order })),
  fc
    .tuple(fc.nat({ max: 2999 }), fc.integer({ min: 1, max: 200 }))
    .map(([at, len]): Cmd => ({ kind: 'claim', at, len })),
  fc.nat().map((pick): Cmd => ({ kind: 'release', pick })),
  fc.nat().map((pick): Cmd => ({ kind: 'preserve', pick })),
  fc.nat().map((pick): Cmd => ({ kind: 'unpreserve', pick })),
);

/** The fully coalesced free blocks of a page set, computed independently of the allocator. */
function maximalBlocks(free: (pfn: number) => boolean, npages: number): [number, number][] {
  const out: [number, number][] = [];
  let p = 0;
  while (p < npages) {
    if (!free(p)) {
      p++;
      continue;
    }
    let end = p;
    while (end < npages && free(end)) end++;
    while (p < end) {
      let o = MAX_PAGE_ORDER;
      while (p % 2 ** o !== 0 || p + 2 ** o > end) o--;
      out.push([p, o]);
      p += 2 ** o;
    }
  }
  return out;
}

function sortedBlocks(b: BuddyAllocator): [number, number][] {
  return Array.from(b.freeBlocks(), (x): [number, number] => [x.pfn, x.order]).sort(
    (x, y) => x[0] - y[0],
  );
}

class Model {
  readonly page: Uint8Array;
  readonly live: { pfn: number; order: number }[] = [];
  readonly claimed: PfnRange[] = [];
  readonly preserved: { pfn: number; order: number }[] = [];
  readonly initialFree: number;

  constructor(readonly layout: Layout) {
    this.page = new Uint8Array(layout.npages);
    for (const r of layout.ranges) this.page.fill(FREE, r.pfn, r.pfn + r.count);
    this.initialFree = this.count(FREE);
  }

  count(state: number): number {
    return this.histogram()[state];
  }

  histogram(): number[] {
    const h = [0, 0, 0, 0, 0];
    for (const s of this.page) h[s]++;
    return h;
  }

  /** Whether some aligned run of 2^order pages is entirely free. */
  fits(order: number): boolean {
    const size = 2 ** order;
    for (let p = 0; p + size <= this.page.length; p += size) {
      if (this.allAre(p, size, FREE)) return true;
    }
    return false;
  }

  allAre(base: number, count: number, state: number): boolean {
    for (let i = base; i < base + count; i++) if (this.page[i] !== state) return false;
    return true;
  }

  /** Hands out [pfn, pfn + 2^order): every page must be inside the initial ranges and free. */
  take(pfn: number, order: number): void {
    const size = 2 ** order;
    assert.equal(pfn % size, 0, `order ${order} block at pfn ${pfn} is misaligned`);
    assert.ok(pfn + size <= this.page.length, `block at pfn ${pfn} runs past the pages`);
    for (let i = pfn; i < pfn + size; i++) {
      assert.equal(this.page[i], FREE, `pfn ${i} handed out while model says ${this.page[i]}`);
      this.page[i] = ALLOCATED;
    }
    this.live.push({ pfn, order });
  }

  check(b: BuddyAllocator): void {
    const s = b.stats();
    const h = this.histogram();
    assert.equal(s.totalPages, this.page.length);
    assert.equal(s.freePages, h[FREE], 'free pages');
    assert.equal(s.allocatedPages, h[ALLOCATED], 'allocated pages');
    assert.equal(s.reservedPages, h[OUTSIDE] + h[CLAIMED], 'reserved pages');
    assert.equal(s.preservedPages, h[PRESERVED], 'preserved pages');
    assert.equal(s.freePages + s.allocatedPages + s.reservedPages + s.preservedPages, s.totalPages);
    assert.equal(
      s.freeByOrder.reduce((sum, n, o) => sum + n * 2 ** o, 0),
      s.freePages,
    );
  }

  checkPages(b: BuddyAllocator): void {
    for (let p = 0; p < this.page.length; p++) {
      assert.equal(b.pageState(p), EXPECTED_STATE[this.page[p]], `state of pfn ${p}`);
    }
    for (const { pfn, order } of b.freeBlocks()) {
      assert.ok(this.allAre(pfn, 2 ** order, FREE), `free block at pfn ${pfn} holds used pages`);
    }
  }
}

function apply(b: BuddyAllocator, m: Model, cmd: Cmd): void {
  switch (cmd.kind) {
    case 'alloc': {
      const pfn = b.allocPages(cmd.order);
      if (pfn === null) assert.equal(m.fits(cmd.order), false, `order ${cmd.order} fits`);
      else m.take(pfn, cmd.order);
      return;
    }
    case 'free': {
      if (m.live.length === 0) return;
      const [blk] = m.live.splice(cmd.pick % m.live.length, 1);
      b.freePages(blk.pfn, blk.order);
      m.page.fill(FREE, blk.pfn, blk.pfn + 2 ** blk.order);
      return;
    }
    case 'allocAt': {
      const size = 2 ** cmd.order;
      const pfn = cmd.at - (cmd.at % size);
      if (pfn + size > m.page.length) return;
      if (m.allAre(pfn, size, FREE)) {
        b.allocPagesAt(pfn, cmd.order);
        m.take(pfn, cmd.order);
      } else {
        const before = sortedBlocks(b);
        assert.throws(() => b.allocPagesAt(pfn, cmd.order), codeIs('EBUSY'));
        assert.deepEqual(sortedBlocks(b), before);
      }
      return;
    }
    case 'claim': {
      if (cmd.at >= m.page.length) return;
      const count = Math.min(cmd.len, m.page.length - cmd.at);
      if (m.allAre(cmd.at, count, FREE)) {
        b.claimRange(cmd.at, count);
        m.page.fill(CLAIMED, cmd.at, cmd.at + count);
        m.claimed.push({ pfn: cmd.at, count });
      } else {
        const before = sortedBlocks(b);
        assert.throws(() => b.claimRange(cmd.at, count), codeIs('EBUSY'));
        assert.deepEqual(sortedBlocks(b), before);
      }
      return;
    }
    case 'release': {
      if (m.claimed.length === 0) return;
      const [r] = m.claimed.splice(cmd.pick % m.claimed.length, 1);
      b.releaseRange(r.pfn, r.count);
      m.page.fill(FREE, r.pfn, r.pfn + r.count);
      return;
    }
    case 'preserve': {
      if (m.live.length === 0) return;
      const [blk] = m.live.splice(cmd.pick % m.live.length, 1);
      b.markPreserved(blk.pfn, blk.order);
      m.page.fill(PRESERVED, blk.pfn, blk.pfn + 2 ** blk.order);
      m.preserved.push(blk);
      assert.throws(() => b.freePages(blk.pfn, blk.order), codeIs('EBUSY'));
      return;
    }
    case 'unpreserve': {
      if (m.preserved.length === 0) return;
      const [blk] = m.preserved.splice(cmd.pick % m.preserved.length, 1);
      b.clearPreserved(blk.pfn, blk.order);
      m.page.fill(ALLOCATED, blk.pfn, blk.pfn + 2 ** blk.order);
      m.live.push(blk);
      return;
    }
  }
}

function codeIs(code: string): (e: unknown) => boolean {
  return (e) => e instanceof PageAllocError && e.code === code;
}

/** Gives everything back and checks that the free lists coalesce completely. */
function drainAndCheck(b: BuddyAllocator, m: Model): void {
  for (const blk of m.preserved.splice(0)) {
    b.clearPreserved(blk.pfn, blk.order);
    m.live.push(blk);
  }
  // Free in an order unrelated to allocation order.
  m.live.sort((x, y) => ((x.pfn * 2654435761) >>> 0) - ((y.pfn * 2654435761) >>> 0));
  for (const blk of m.live.splice(0)) {
    b.freePages(blk.pfn, blk.order);
    m.page.fill(FREE, blk.pfn, blk.pfn + 2 ** blk.order);
  }
  for (const r of m.claimed.splice(0)) {
    b.releaseRange(r.pfn, r.count);
    m.page.fill(FREE, r.pfn, r.pfn + r.count);
  }
  m.check(b);
  assert.equal(b.stats().freePages, m.initialFree);
  const initial = new Model(m.layout);
  assert.deepEqual(
    sortedBlocks(b),
    maximalBlocks((p) => initial.page[p] === FREE, m.layout.npages),
  );
}

describe('BuddyAllocator properties', () => {
  it('bring-up yields the maximal aligned blocks of the free ranges', () => {
    fc.assert(
      fc.property(layoutArb, (layout) => {
        const b = BuddyAllocator.fromFreeRanges(layout.npages, layout.ranges);
        const m = new Model(layout);
        m.check(b);
        m.checkPages(b);
        assert.deepEqual(
          sortedBlocks(b),
          maximalBlocks((p) => m.page[p] === FREE, layout.npages),
        );
      }),
    );
  });

  /** Replays `cmds` against the allocator and the model, checking both after every step and at the end. */
  function runHistory(layout: Layout, cmds: readonly Cmd[]): void {
    const b = BuddyAllocator.fromFreeRanges(layout.npages, layout.ranges);
    const m = new Model(layout);
    for (const cmd of cmds) {
      apply(b, m, cmd);
      m.check(b);
    }
    m.checkPages(b);
    drainAndCheck(b, m);
  }

  it('alloc/free never hands a page out twice, conserves counts and coalesces fully', () => {
    fc.assert(
      fc.property(layoutArb, fc.array(basicCmdArb, { maxLength: 120, size: 'max' }), runHistory),
      { numRuns: 200 },
    );
  });

  it('allocPagesAt, claim/release and preserve keep the same invariants', () => {
    fc.assert(
      fc.property(layoutArb, fc.array(mixedCmdArb, { maxLength: 120, size: 'max' }), runHistory),
      { numRuns: 200 },
    );
  });

  it('misuse raises a typed error and changes nothing', () => {
    fc.assert(
      fc.property(
        layoutArb,
        fc.array(basicCmdArb, { maxLength: 40 }),
        fc.integer({ min: -5, max: 3100 }),
        fc.integer({ min: -1, max: MAX_PAGE_ORDER + 1 }),
        (layout, cmds, pfn, order) => {
          const b = BuddyAllocator.fromFreeRanges(layout.npages, layout.ranges);
          const m = new Model(layout);
          for (const cmd of cmds) apply(b, m, cmd);
          const isLive = m.live.some((x) => x.pfn === pfn && x.order === order);
          if (isLive) return;
          const before = { blocks: sortedBlocks(b), stats: b.stats() };
          assert.throws(() => b.freePages(pfn, order), PageAllocError);
          assert.deepEqual({ blocks: sortedBlocks(b), stats: b.stats() }, before);
        },
      ),
      { numRuns: 300 },
    );
  });
});
