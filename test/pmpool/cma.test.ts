/** CmaPool behaviour: alloc/release, v1's allocPages/freePages, stats, argument errors. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PAGE_SIZE } from '../../src/memory/device.js';
import { HeapDevice } from '../../src/memory/heap.js';
import { metadataPages } from '../../src/pmpool/abi.js';
import { CmaPool } from '../../src/pmpool/cma.js';
import { PmpoolError } from '../../src/pmpool/errors.js';

/** An odd base pfn, so alignment is tested against absolute pfns. */
const BASE = 17 * PAGE_SIZE;

function fresh(pages = 300): { device: HeapDevice; pool: CmaPool } {
  const device = new HeapDevice(1024 * PAGE_SIZE);
  return { device, pool: CmaPool.format(device, BASE, pages * PAGE_SIZE) };
}

function code(c: string): (e: unknown) => boolean {
  return (e) => e instanceof PmpoolError && e.code === c;
}

describe('CmaPool.format', () => {
  it('marks the header and bitmap pages used and nothing else', () => {
    const { pool } = fresh(300);
    const meta = metadataPages(300);
    assert.equal(meta, 2);
    assert.deepEqual(pool.stats(), {
      totalPages: 300,
      usedPages: 2,
      freePages: 298,
      largestFreeRun: 298,
      metadataPages: 2,
    });
    assert.equal(pool.isAllocated(17), true);
    assert.equal(pool.isAllocated(18), true);
    assert.equal(pool.isAllocated(19), false);
    assert.equal(pool.isAllocated(17 + 299), false);
    assert.equal(pool.isAllocated(16), false, 'below the pool');
    assert.equal(pool.isAllocated(17 + 300), false, 'past the pool');
  });

  it('needs more than one bitmap page for a pool over 32768 pages', () => {
    const device = new HeapDevice(40000 * PAGE_SIZE);
    const pool = CmaPool.format(device, 0, 40000 * PAGE_SIZE);
    assert.equal(pool.metadataPages, 3);
    assert.equal(pool.stats().usedPages, 3);
    assert.equal(pool.alloc(1)?.pfn, 3);
  });

  it('refuses unaligned, out-of-device and too small ranges', () => {
    const device = new HeapDevice(64 * PAGE_SIZE);
    assert.throws(() => CmaPool.format(device, 100, 8 * PAGE_SIZE), code('EINVAL'));
    assert.throws(() => CmaPool.format(device, 0, 8 * PAGE_SIZE + 1), code('EINVAL'));
    assert.throws(() => CmaPool.format(device, 0, 0), code('EINVAL'));
    assert.throws(() => CmaPool.format(device, 60 * PAGE_SIZE, 8 * PAGE_SIZE), code('EINVAL'));
    assert.throws(() => CmaPool.format(device, 0, 2 * PAGE_SIZE), code('ENOMEM'));
    assert.equal(CmaPool.format(device, 0, 3 * PAGE_SIZE).stats().freePages, 1);
  });
});

describe('CmaPool.alloc', () => {
  it('hands out first fit from a rotating hint, never a page twice', () => {
    const { pool } = fresh(300);
    const a = pool.alloc(3);
    const b = pool.alloc(5);
    assert.deepEqual(a, { pfn: 19, count: 3 });
    assert.deepEqual(b, { pfn: 22, count: 5 });
    assert.equal(pool.release(19, 3), true);
    // The hint moved on: the freed hole is not reused until the search wraps.
    assert.deepEqual(pool.alloc(1), { pfn: 27, count: 1 });
    assert.equal(pool.stats().usedPages, 2 + 5 + 1);
  });

  it('aligns the first pfn to `align` pages (absolute pfns)', () => {
    const { pool } = fresh(300);
    pool.alloc(1); // pfn 19
    const r = pool.alloc(4, 8);
    assert.deepEqual(r, { pfn: 24, count: 4 });
    const big = pool.alloc(40, 64);
    assert.equal(big?.pfn, 64);
    for (let pfn = 64; pfn < 104; pfn++) assert.equal(pool.isAllocated(pfn), true);
    assert.equal(pool.isAllocated(104), false);
  });

  it('returns null when full, and wraps to reuse freed pages', () => {
    const { pool } = fresh(40);
    const got = [];
    for (;;) {
      const r = pool.alloc(1);
      if (r === null) break;
      got.push(r.pfn);
    }
    assert.equal(got.length, 38);
    assert.equal(new Set(got).size, 38);
    assert.equal(pool.stats().freePages, 0);
    assert.equal(pool.release(30, 1), true);
    assert.equal(pool.release(31, 1), true);
    assert.equal(pool.alloc(3), null, 'two free pages are not three');
    assert.deepEqual(pool.alloc(2), { pfn: 30, count: 2 });
    assert.equal(pool.alloc(1), null);
  });

  it('returns null for a run longer than the largest free run', () => {
    const { pool } = fresh(300);
    assert.equal(pool.alloc(299), null);
    assert.deepEqual(pool.alloc(298), { pfn: 19, count: 298 });
    assert.equal(pool.stats().largestFreeRun, 0);
  });

  it('finds runs across bitmap words with holes in between', () => {
    const { pool } = fresh(300);
    const all = pool.alloc(298);
    assert.ok(all);
    // Free [40, 45), [60, 130), [200, 210): only the second fits 50.
    pool.release(40, 5);
    pool.release(60, 70);
    pool.release(200, 10);
    assert.equal(pool.stats().largestFreeRun, 70);
    assert.deepEqual(pool.alloc(50), { pfn: 60, count: 50 });
    assert.deepEqual(pool.alloc(16, 16), { pfn: 112, count: 16 });
    assert.equal(pool.alloc(16, 16), null);
    assert.deepEqual(pool.alloc(10), { pfn: 200, count: 10 });
  });

  it('refuses a bad count or align with EINVAL', () => {
    const { pool } = fresh();
    for (const c of [0, -1, 1.5, Number.NaN, 2 ** 60]) {
      assert.throws(() => pool.alloc(c), code('EINVAL'), `count ${c}`);
    }
    for (const a of [0, 3, 6, -2, 0.5, Number.POSITIVE_INFINITY]) {
      assert.throws(() => pool.alloc(1, a), code('EINVAL'), `align ${a}`);
    }
    assert.equal(pool.alloc(1, 2 ** 40), null, 'a huge power-of-two align just does not fit');
  });
});

describe('CmaPool.release', () => {
  it('returns false for foreign, metadata, unallocated and partly allocated ranges', () => {
    const { pool } = fresh(300);
    const r = pool.alloc(10);
    assert.ok(r);
    assert.equal(pool.release(0, 1), false, 'below the pool');
    assert.equal(pool.release(17, 1), false, 'the header page');
    assert.equal(pool.release(18, 2), false, 'bitmap page and the first data page');
    assert.equal(pool.release(17 + 299, 2), false, 'runs past the end');
    assert.equal(pool.release(17 + 400, 1), false, 'past the pool');
    assert.equal(pool.release(r.pfn + 10, 1), false, 'never allocated');
    assert.equal(pool.release(r.pfn + 5, 6), false, 'last page not allocated');
    assert.equal(pool.stats().usedPages, 12, 'nothing changed');
    assert.equal(pool.release(r.pfn + 2, 3), true, 'a sub-range may be released');
    assert.equal(pool.release(r.pfn + 2, 1), false, 'double release');
    assert.equal(pool.stats().usedPages, 9);
  });

  it('refuses non-integer arguments with EINVAL', () => {
    const { pool } = fresh();
    assert.throws(() => pool.release(19.5, 1), code('EINVAL'));
    assert.throws(() => pool.release(19, 0), code('EINVAL'));
    assert.throws(() => pool.release(Number.NaN, 1), code('EINVAL'));
  });
});

describe('allocPages / freePages (v1)', () => {
  it('returns naturally aligned blocks of 2^order pages', () => {
    const { pool } = fresh(300);
    const p0 = pool.allocPages(0);
    const p3 = pool.allocPages(3);
    assert.equal(p0, 19);
    assert.equal(p3, 24);
    assert.equal(pool.freePages(24, 3), true);
    assert.equal(pool.freePages(24, 3), false, 'already free');
    assert.equal(pool.freePages(19, 1), false, 'order 1 at 19 covers a free page');
    assert.equal(pool.freePages(19, 0), true);
  });

  it('is not capped at the buddy allocator MAX_ORDER (10)', () => {
    const pages = 8192;
    const device = new HeapDevice((pages + 16) * PAGE_SIZE);
    const pool = CmaPool.format(device, 0, pages * PAGE_SIZE);
    const p11 = pool.allocPages(11);
    assert.equal(p11, 2048);
    const p12 = pool.allocPages(12);
    assert.equal(p12, 4096);
    assert.equal(pool.allocPages(12), null, 'no second aligned 4096-page block');
    assert.equal(pool.allocPages(13), null);
    assert.equal(pool.freePages(4096, 12), true);
    assert.equal(pool.stats().largestFreeRun, 4096);
  });

  it('refuses a bad order with EINVAL', () => {
    const { pool } = fresh();
    for (const o of [-1, 0.5, 53, Number.NaN]) {
      assert.throws(() => pool.allocPages(o), code('EINVAL'), `order ${o}`);
      assert.throws(() => pool.freePages(19, o), code('EINVAL'), `order ${o}`);
    }
  });
});

describe('stats', () => {
  it('counts used pages and the largest free run', () => {
    const { pool } = fresh(300);
    pool.alloc(100);
    const mid = pool.alloc(50);
    pool.alloc(100);
    assert.ok(mid);
    pool.release(mid.pfn, 50);
    assert.deepEqual(pool.stats(), {
      totalPages: 300,
      usedPages: 202,
      freePages: 98,
      largestFreeRun: 50,
      metadataPages: 2,
    });
  });
});
