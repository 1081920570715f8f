import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BuddyAllocator, MAX_PAGE_ORDER, PageAllocError } from '../../src/mm/index.js';

function sortedBlocks(b: BuddyAllocator): [number, number][] {
  return Array.from(b.freeBlocks(), (x): [number, number] => [x.pfn, x.order]).sort(
    (x, y) => x[0] - y[0],
  );
}

function throwsCode(fn: () => unknown, code: string, pfnInMessage?: number): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PageAllocError, `expected PageAllocError, got ${String(e)}`);
    assert.equal(e.code, code);
    if (pfnInMessage !== undefined) assert.match(e.message, new RegExp(`pfn ${pfnInMessage}\\b`));
    return true;
  });
}

function conserved(b: BuddyAllocator): void {
  const s = b.stats();
  assert.equal(
    s.freePages + s.allocatedPages + s.reservedPages + s.preservedPages,
    s.totalPages,
    'page counts must add up',
  );
  const fromLists = s.freeByOrder.reduce((sum, n, o) => sum + n * 2 ** o, 0);
  assert.equal(fromLists, s.freePages, 'free lists must hold exactly the free pages');
}

describe('BuddyAllocator bring-up', () => {
  it('carves a power-of-two range into one block', () => {
    const b = BuddyAllocator.fromFreeRanges(16, [{ pfn: 0, count: 16 }]);
    assert.deepEqual(sortedBlocks(b), [[0, 4]]);
    assert.deepEqual(b.stats(), {
      totalPages: 16,
      freePages: 16,
      allocatedPages: 0,
      reservedPages: 0,
      preservedPages: 0,
      freeByOrder: [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0],
    });
  });

  it('carves unaligned starts and ends into maximal aligned blocks', () => {
    const b = BuddyAllocator.fromFreeRanges(32, [{ pfn: 3, count: 10 }]);
    assert.deepEqual(sortedBlocks(b), [
      [3, 0],
      [4, 2],
      [8, 2],
      [12, 0],
    ]);
    assert.equal(b.pageState(2), 'reserved');
    assert.equal(b.pageState(13), 'reserved');
    assert.equal(b.stats().reservedPages, 22);
    conserved(b);
  });

  it('caps blocks at MAX_PAGE_ORDER and handles a range ending at npages', () => {
    const n = 3 * 1024 + 7;
    const b = BuddyAllocator.fromFreeRanges(n, [{ pfn: 0, count: n }]);
    assert.deepEqual(sortedBlocks(b), [
      [0, 10],
      [1024, 10],
      [2048, 10],
      [3072, 2],
      [3076, 1],
      [3078, 0],
    ]);
    assert.equal(b.pageState(n - 1), 'free');
    conserved(b);
  });

  it('takes tiny, empty, overlapping, adjacent and unsorted ranges', () => {
    const b = BuddyAllocator.fromFreeRanges(64, [
      { pfn: 40, count: 1 },
      { pfn: 10, count: 0 },
      { pfn: 8, count: 4 },
      { pfn: 12, count: 4 },
      { pfn: 9, count: 2 },
      { pfn: 63, count: 1 },
    ]);
    // [8,16) merges to one order-3 block.
    assert.deepEqual(sortedBlocks(b), [
      [8, 3],
      [40, 0],
      [63, 0],
    ]);
    assert.equal(b.stats().freePages, 10);
    assert.equal(b.pageState(10), 'free');
    conserved(b);
  });

  it('starts with everything reserved when there are no ranges', () => {
    const b = BuddyAllocator.fromFreeRanges(100, []);
    assert.equal(b.stats().reservedPages, 100);
    assert.equal(b.allocPages(0), null);
  });

  it('supports a 16 GiB device (4M pages)', () => {
    const n = 4 * 1024 * 1024;
    const b = BuddyAllocator.fromFreeRanges(n, [{ pfn: 0, count: n }]);
    assert.equal(b.stats().freeByOrder[MAX_PAGE_ORDER], 4096);
    const p = b.allocPages(0);
    assert.equal(p, b.compoundHead(p!));
    b.freePages(p!, 0);
    assert.equal(b.stats().freeByOrder[MAX_PAGE_ORDER], 4096);
  });

  it('refuses bad sizes and ranges', () => {
    throwsCode(() => new BuddyAllocator(-1), 'EINVAL');
    throwsCode(() => new BuddyAllocator(1.5), 'EINVAL');
    throwsCode(() => new BuddyAllocator(2 ** 31), 'EINVAL');
    throwsCode(() => BuddyAllocator.fromFreeRanges(16, [{ pfn: 10, count: 7 }]), 'EFAULT');
    throwsCode(() => BuddyAllocator.fromFreeRanges(16, [{ pfn: -1, count: 2 }]), 'EINVAL');
    throwsCode(() => BuddyAllocator.fromFreeRanges(16, [{ pfn: 0, count: Number.NaN }]), 'EINVAL');
    throwsCode(
      () => BuddyAllocator.fromFreeRanges(16, [null as unknown as { pfn: number; count: number }]),
      'EINVAL',
    );
  });
});

describe('BuddyAllocator alloc and free', () => {
  it('splits a block on allocation and merges it back on free', () => {
    const b = BuddyAllocator.fromFreeRanges(1024, [{ pfn: 0, count: 1024 }]);
    const p = b.allocPages(0);
    assert.equal(p, 0);
    // One block left at each order 0..9: the halves shed by the split.
    assert.deepEqual(b.stats().freeByOrder, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
    assert.equal(b.pageState(0), 'allocated');
    assert.equal(b.headOrder(0), 0);
    b.freePages(0, 0);
    assert.deepEqual(sortedBlocks(b), [[0, 10]]);
    conserved(b);
  });

  it('merges buddies freed in any order', () => {
    const b = BuddyAllocator.fromFreeRanges(8, [{ pfn: 0, count: 8 }]);
    const got = [0, 1, 2, 3, 4, 5, 6, 7].map(() => b.allocPages(0)!);
    assert.deepEqual(
      [...got].sort((x, y) => x - y),
      [0, 1, 2, 3, 4, 5, 6, 7],
    );
    for (const p of [5, 2, 7, 0, 3, 6, 1]) b.freePages(p, 0);
    assert.deepEqual(sortedBlocks(b), [
      [0, 2],
      [5, 0],
      [6, 1],
    ]);
    b.freePages(4, 0);
    assert.deepEqual(sortedBlocks(b), [[0, 3]]);
  });

  it('does not merge past a reserved buddy', () => {
    const b = BuddyAllocator.fromFreeRanges(8, [{ pfn: 0, count: 6 }]);
    assert.deepEqual(sortedBlocks(b), [
      [0, 2],
      [4, 1],
    ]);
    const p = b.allocPages(1)!;
    assert.equal(p, 4);
    b.freePages(p, 1);
    assert.deepEqual(sortedBlocks(b), [
      [0, 2],
      [4, 1],
    ]);
  });

  it('returns blocks aligned to their order', () => {
    const b = BuddyAllocator.fromFreeRanges(5000, [{ pfn: 1, count: 4998 }]);
    for (let i = 0; i < 200; i++) {
      const order = (i * 7) % (MAX_PAGE_ORDER + 1);
      const p = b.allocPages(order);
      if (p === null) continue;
      assert.equal(p % 2 ** order, 0, `order ${order} block at pfn ${p}`);
      assert.equal(b.headOrder(p), order);
    }
    conserved(b);
  });

  it('returns null when nothing fits', () => {
    const b = BuddyAllocator.fromFreeRanges(8, [{ pfn: 0, count: 8 }]);
    assert.equal(b.allocPages(4), null);
    for (let i = 0; i < 8; i++) assert.notEqual(b.allocPages(0), null);
    assert.equal(b.allocPages(0), null);
    assert.equal(b.stats().freePages, 0);
    // Fragmented: 2 free pages that are not buddies cannot serve order 1.
    b.freePages(1, 0);
    b.freePages(2, 0);
    assert.equal(b.allocPages(1), null);
    assert.equal(b.allocPages(0) !== null, true);
  });

  it('hands out a fresh range from its lowest address up, as FPI_TO_TAIL does at boot', () => {
    // Four max-order blocks: head insertion handed out the last carved first, so order-9
    // blocks came in descending pairs and a save of them was a run per folio, not one run.
    const max = 2 ** MAX_PAGE_ORDER;
    const b = BuddyAllocator.fromFreeRanges(4 * max, [{ pfn: 0, count: 4 * max }]);
    const got: number[] = [];
    for (let p = b.allocPages(9); p !== null; p = b.allocPages(9)) got.push(p);
    assert.deepEqual(
      got,
      Array.from({ length: 8 }, (_, i) => i * 512),
    );
    // Order 0 from a fresh allocator too: one ascending run.
    const c = BuddyAllocator.fromFreeRanges(3 * max, [{ pfn: 5, count: 3 * max - 5 }]);
    let last = c.allocPages(0) as number;
    assert.equal(last, 5);
    for (let p = c.allocPages(0); p !== null; p = c.allocPages(0)) {
      assert.equal(p, last + 1);
      last = p;
    }
    conserved(c);
  });
});

describe('BuddyAllocator misuse', () => {
  function setup(): { b: BuddyAllocator; p: number } {
    const b = BuddyAllocator.fromFreeRanges(64, [{ pfn: 0, count: 32 }]);
    const p = b.allocPages(2)!;
    return { b, p };
  }

  it('refuses a double free', () => {
    const { b, p } = setup();
    b.freePages(p, 2);
    const before = b.stats();
    throwsCode(() => b.freePages(p, 2), 'ENOENT', p);
    assert.deepEqual(b.stats(), before);
  });

  it('refuses freeing a tail page', () => {
    const { b, p } = setup();
    const before = b.stats();
    throwsCode(() => b.freePages(p + 1, 0), 'EINVAL', p + 1);
    throwsCode(() => b.freePages(p + 2, 1), 'EINVAL', p + 2);
    assert.deepEqual(b.stats(), before);
    assert.equal(b.compoundHead(p + 3), p);
    assert.equal(b.headOrder(p + 3), -1);
    assert.equal(b.pageState(p + 3), 'allocated');
  });

  it('refuses freeing with the wrong order', () => {
    const { b, p } = setup();
    const before = b.stats();
    throwsCode(() => b.freePages(p, 1), 'EINVAL', p);
    throwsCode(() => b.freePages(p, 3), 'EINVAL', p);
    assert.deepEqual(b.stats(), before);
    b.freePages(p, 2);
  });

  it('refuses freeing a reserved page', () => {
    const { b } = setup();
    throwsCode(() => b.freePages(40, 0), 'EPERM', 40);
    assert.equal(b.pageState(40), 'reserved');
  });

  it('refuses pfns and orders out of range', () => {
    const { b } = setup();
    for (const pfn of [-1, 64, 1e9, 1.5, Number.NaN]) {
      throwsCode(() => b.freePages(pfn, 0), 'EFAULT');
      throwsCode(() => b.pageState(pfn), 'EFAULT');
    }
    for (const order of [-1, MAX_PAGE_ORDER + 1, 0.5]) {
      throwsCode(() => b.allocPages(order), 'EINVAL');
      throwsCode(() => b.freePages(0, order), 'EINVAL');
    }
    throwsCode(() => b.allocPagesAt(62, 2), 'EINVAL', 62);
    throwsCode(() => b.allocPagesAt(64 - 1, 1), 'EINVAL');
    const small = BuddyAllocator.fromFreeRanges(6, [{ pfn: 0, count: 6 }]);
    throwsCode(() => small.allocPagesAt(4, 2), 'EFAULT', 4);
  });

  it('refuses freeing a preserved block until preservation is cleared', () => {
    const { b, p } = setup();
    b.markPreserved(p, 2);
    assert.equal(b.pageState(p + 1), 'preserved');
    assert.equal(b.stats().preservedPages, 4);
    throwsCode(() => b.freePages(p, 2), 'EBUSY', p);
    throwsCode(() => b.markPreserved(p, 2), 'EBUSY', p);
    b.clearPreserved(p, 2);
    throwsCode(() => b.clearPreserved(p, 2), 'ENOENT', p);
    b.freePages(p, 2);
    assert.deepEqual(sortedBlocks(b), [[0, 5]]);
    conserved(b);
  });

  it('refuses preserving free, tail or wrongly sized blocks', () => {
    const { b, p } = setup();
    throwsCode(() => b.markPreserved(16, 0), 'ENOENT', 16);
    throwsCode(() => b.markPreserved(p + 1, 0), 'EINVAL', p + 1);
    throwsCode(() => b.markPreserved(p, 1), 'EINVAL', p);
    assert.equal(b.stats().preservedPages, 0);
    // A reserved head with free pages in the block.
    const mixed = BuddyAllocator.fromFreeRanges(8, [{ pfn: 2, count: 2 }]);
    throwsCode(() => mixed.markPreserved(0, 2), 'ENOENT', 0);
    assert.equal(mixed.stats().reservedPages, 6);
  });
});

describe('BuddyAllocator targeted allocation and late reservation', () => {
  it('allocPagesAt takes a block out of the middle of a larger one', () => {
    const b = BuddyAllocator.fromFreeRanges(16, [{ pfn: 0, count: 16 }]);
    b.allocPagesAt(10, 1);
    assert.equal(b.pageState(11), 'allocated');
    assert.deepEqual(sortedBlocks(b), [
      [0, 3],
      [8, 1],
      [12, 2],
    ]);
    throwsCode(() => b.allocPagesAt(10, 0), 'EBUSY', 10);
    throwsCode(() => b.allocPagesAt(8, 2), 'EBUSY');
    b.freePages(10, 1);
    assert.deepEqual(sortedBlocks(b), [[0, 4]]);
  });

  it('claimRange reserves an unaligned run and releaseRange gives it back', () => {
    const b = BuddyAllocator.fromFreeRanges(2048, [{ pfn: 0, count: 2048 }]);
    b.claimRange(5, 1030);
    assert.equal(b.stats().reservedPages, 1030);
    assert.equal(b.pageState(4), 'free');
    assert.equal(b.pageState(5), 'reserved');
    assert.equal(b.pageState(1034), 'reserved');
    assert.equal(b.pageState(1035), 'free');
    assert.deepEqual(b.freeExtents(), [
      { pfn: 0, count: 5 },
      { pfn: 1035, count: 1013 },
    ]);
    conserved(b);
    // Nothing allocated from the free lists may land in the claimed run.
    for (let p = b.allocPages(0); p !== null; p = b.allocPages(0)) {
      assert.ok(p < 5 || p >= 1035, `pfn ${p} handed out from a claimed range`);
    }
    const b2 = BuddyAllocator.fromFreeRanges(2048, [{ pfn: 0, count: 2048 }]);
    b2.claimRange(5, 1030);
    b2.releaseRange(5, 1030);
    assert.deepEqual(sortedBlocks(b2), [
      [0, 10],
      [1024, 10],
    ]);
    conserved(b2);
  });

  it('claimRange is all or nothing', () => {
    const b = BuddyAllocator.fromFreeRanges(64, [{ pfn: 0, count: 64 }]);
    b.allocPagesAt(20, 0);
    const before = sortedBlocks(b);
    throwsCode(() => b.claimRange(16, 8), 'EBUSY', 20);
    assert.deepEqual(sortedBlocks(b), before);
    throwsCode(() => b.claimRange(60, 8), 'EFAULT');
    throwsCode(() => b.claimRange(0, -1), 'EINVAL');
    throwsCode(() => b.releaseRange(0, 4), 'EBUSY', 0);
  });

  it('preserves reserved memory and frees it back once restored', () => {
    // The successor's view: pages 8..15 were preserved, so bring-up left them reserved.
    const b = BuddyAllocator.fromFreeRanges(16, [
      { pfn: 0, count: 8 },
      { pfn: 16, count: 0 },
    ]);
    b.markPreserved(8, 2);
    throwsCode(() => b.markPreserved(12, 3), 'EINVAL', 12);
    assert.equal(b.pageState(9), 'preserved');
    assert.equal(b.stats().reservedPages, 4);
    b.clearPreserved(8, 2);
    b.freePages(8, 2);
    b.releaseRange(12, 4);
    assert.deepEqual(sortedBlocks(b), [[0, 4]]);
    conserved(b);
  });

  it('lists free extents sorted and coalesced', () => {
    const b = BuddyAllocator.fromFreeRanges(100, [
      { pfn: 50, count: 30 },
      { pfn: 3, count: 9 },
    ]);
    assert.deepEqual(b.freeExtents(), [
      { pfn: 3, count: 9 },
      { pfn: 50, count: 30 },
    ]);
    assert.equal(b.isFree(3), true);
    assert.equal(b.isFree(12), false);
  });
});

describe('BuddyAllocator allocReserved (restore of preserved blocks)', () => {
  it('makes reserved blocks allocated in place, and frees them as usual', () => {
    const b = BuddyAllocator.fromFreeRanges(64, [{ pfn: 32, count: 32 }]);
    b.allocReservedBlocks(Float64Array.of(0, 4, 8), Uint8Array.of(2, 0, 3));
    assert.equal(b.pageState(0), 'allocated');
    assert.equal(b.pageState(3), 'allocated');
    assert.equal(b.headOrder(8), 3);
    assert.equal(b.stats().allocatedPages, 4 + 1 + 8);
    assert.equal(b.stats().reservedPages, 32 - 13);
    b.freePages(8, 3);
    assert.equal(b.pageState(8), 'free');
    conserved(b);
  });

  it('is all or nothing: one block that is not all reserved changes nothing', () => {
    const b = BuddyAllocator.fromFreeRanges(64, [{ pfn: 32, count: 32 }]);
    const before = b.stats();
    // pfn 32 is free; pfn 2 is misaligned for order 2.
    throwsCode(
      () => b.allocReservedBlocks(Float64Array.of(0, 32), Uint8Array.of(0, 0)),
      'ENOENT',
      32,
    );
    throwsCode(() => b.allocReservedBlocks(Float64Array.of(0, 2), Uint8Array.of(0, 2)), 'EINVAL');
    throwsCode(() => b.allocReservedBlocks(Float64Array.of(16), Uint8Array.of(11)), 'EINVAL');
    assert.deepEqual(b.stats(), before);
    assert.equal(b.pageState(0), 'reserved');
  });

  it('refuses a block named twice, and undoes the blocks taken before it, tails included', () => {
    const b = BuddyAllocator.fromFreeRanges(64, [{ pfn: 32, count: 32 }]);
    const before = b.stats();
    throwsCode(
      () => b.allocReservedBlocks(Float64Array.of(8, 1, 8), Uint8Array.of(3, 0, 3)),
      'ENOENT',
      8,
    );
    assert.deepEqual(b.stats(), before);
    for (const pfn of [1, 8, 9, 15]) assert.equal(b.pageState(pfn), 'reserved');
    b.allocReservedBlocks(Float64Array.of(8, 1), Uint8Array.of(3, 0));
    assert.equal(b.headOrder(8), 3);
    conserved(b);
  });
});
