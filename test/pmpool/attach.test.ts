/** Re-attaching to a pool's bytes: round trip, mismatches and corruption, each a typed error. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PAGE_SIZE } from '../../src/memory/device.js';
import { HeapDevice } from '../../src/memory/heap.js';
import {
  BITMAP_OFFSET,
  FDT_COMPATIBLE,
  FDT_PROP_BITMAP,
  HDR_CRC,
  HDR_GENERATION,
  HDR_PAGES,
  HDR_VERSION,
  INTENT_COUNT,
  INTENT_CRC,
  INTENT_OP,
  INTENT_RELEASE,
} from '../../src/pmpool/abi.js';
import { CmaPool } from '../../src/pmpool/cma.js';
import { PmpoolError } from '../../src/pmpool/errors.js';

const BASE = 64 * PAGE_SIZE;
const SIZE = 500 * PAGE_SIZE;

function setup(): { device: HeapDevice; pool: CmaPool } {
  const device = new HeapDevice(1024 * PAGE_SIZE);
  const pool = CmaPool.format(device, BASE, SIZE, { generation: 7 });
  return { device, pool };
}

function word(device: HeapDevice, index: number): DataView {
  return device.view(BASE + index * 4, 4);
}

function poke(device: HeapDevice, index: number, value: number): void {
  word(device, index).setUint32(0, value, true);
}

function peek(device: HeapDevice, index: number): number {
  return word(device, index).getUint32(0, true);
}

function refused(c: string, text: RegExp): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof PmpoolError, `expected a PmpoolError, got ${e}`);
    assert.equal(e.code, c);
    assert.match(e.message, text);
    return true;
  };
}

describe('CmaPool.attach', () => {
  it('sees the same allocations, and continues without handing them out again', () => {
    const { device, pool } = setup();
    const a = pool.alloc(10);
    const b = pool.alloc(33, 32);
    const c = pool.alloc(1);
    assert.ok(a && b && c);
    pool.release(c.pfn, 1);

    const next = CmaPool.attach(device, BASE, SIZE);
    assert.equal(next.generation, 7);
    assert.deepEqual(next.attachReport, {
      ok: true,
      intent: null,
      reclaimedPages: 0,
      repaired: false,
      damagedChunks: 0,
      markedInUse: 0,
      problems: [],
    });
    assert.deepEqual(next.stats(), pool.stats());
    for (let pfn = 64; pfn < 564; pfn++) {
      assert.equal(next.isAllocated(pfn), pool.isAllocated(pfn), `pfn ${pfn}`);
    }
    const seen = new Set<number>();
    for (let pfn = a.pfn; pfn < a.pfn + 10; pfn++) seen.add(pfn);
    for (let pfn = b.pfn; pfn < b.pfn + 33; pfn++) seen.add(pfn);
    for (;;) {
      const r = next.alloc(7);
      if (r === null) break;
      for (let pfn = r.pfn; pfn < r.pfn + 7; pfn++) assert.ok(!seen.has(pfn), `pfn ${pfn} twice`);
    }
    assert.equal(
      next.release(b.pfn, 33),
      true,
      'the successor may release what the predecessor got',
    );
    assert.equal(pool.isAllocated(b.pfn), false, 'both instances are the same bytes');
  });

  it('exposes the FDT handover values', () => {
    const { pool } = setup();
    assert.equal(pool.basePhys, BASE);
    assert.equal(pool.size, SIZE);
    assert.equal(pool.bitmapPhys, BASE + BITMAP_OFFSET);
    assert.equal(FDT_COMPATIBLE, 'pmpool');
    assert.equal(FDT_PROP_BITMAP, 'bitmap');
  });

  it('refuses a base or size other than the pool was made for (ESTALE)', () => {
    const device = new HeapDevice(1024 * PAGE_SIZE);
    CmaPool.format(device, BASE, SIZE);
    assert.throws(
      () => CmaPool.attach(device, BASE, SIZE + PAGE_SIZE),
      refused('ESTALE', /500 pages, the configured size is 501 pages/),
    );
    // Same bytes seen from another base: format at 0, then move the header there.
    const other = new HeapDevice(1024 * PAGE_SIZE);
    CmaPool.format(other, 0, SIZE);
    device.bytes(BASE, 2 * PAGE_SIZE).set(other.bytes(0, 2 * PAGE_SIZE));
    assert.throws(
      () => CmaPool.attach(device, BASE, SIZE),
      refused('ESTALE', /made for base 0x0, not 0x40000/),
    );
  });

  it('refuses memory with no pool (ENODEV)', () => {
    const device = new HeapDevice(1024 * PAGE_SIZE);
    assert.throws(() => CmaPool.attach(device, BASE, SIZE), refused('ENODEV', /no pool header/));
  });

  it('refuses an unknown version (EPROTO)', () => {
    const { device } = setup();
    poke(device, HDR_VERSION, 3);
    assert.throws(() => CmaPool.attach(device, BASE, SIZE), refused('EPROTO', /version 3/));
  });

  it('refuses a header whose crc does not match (EFAULT)', () => {
    const { device } = setup();
    poke(device, HDR_GENERATION, 8);
    assert.throws(() => CmaPool.attach(device, BASE, SIZE), refused('EFAULT', /header crc/));
    poke(device, HDR_GENERATION, 7);
    poke(device, HDR_CRC, peek(device, HDR_CRC) ^ 1);
    assert.throws(() => CmaPool.attach(device, BASE, SIZE), refused('EFAULT', /header crc/));
  });

  it('refuses a bitmap whose own pages are marked free (EFAULT), check() repairs it', () => {
    const { device, pool } = setup();
    const bm = BITMAP_OFFSET / 4;
    poke(device, bm, peek(device, bm) & ~0b10);
    assert.throws(
      () => CmaPool.attach(device, BASE, SIZE),
      refused('EFAULT', /metadata page 1 is marked free/),
    );
    const report = pool.check({ repair: true });
    assert.equal(report.ok, false);
    assert.equal(report.repaired, true);
    assert.equal(CmaPool.attach(device, BASE, SIZE).attachReport?.ok, true);
  });

  it('refuses cleared bits past the last page (EFAULT)', () => {
    const { device } = setup();
    const last = BITMAP_OFFSET / 4 + Math.floor(499 / 32);
    poke(device, last, peek(device, last) & 0x0fffffff);
    assert.throws(() => CmaPool.attach(device, BASE, SIZE), refused('EFAULT', /past the last/));
  });

  it('refuses a corrupt intent record (EFAULT), never guessing which pages it meant', () => {
    const { device, pool } = setup();
    const r = pool.alloc(4);
    assert.ok(r);
    // A committed op whose crc does not match its fields.
    poke(device, INTENT_COUNT, 4);
    poke(device, INTENT_CRC, 0x12345678);
    poke(device, INTENT_OP, INTENT_RELEASE);
    assert.throws(() => CmaPool.attach(device, BASE, SIZE), refused('EFAULT', /intent.*crc/));
    poke(device, INTENT_OP, 99);
    assert.throws(() => CmaPool.attach(device, BASE, SIZE), refused('EFAULT', /unknown op 99/));
    const report = pool.check({ repair: true });
    assert.equal(report.repaired, true);
    assert.equal(report.reclaimedPages, 0);
    assert.equal(pool.isAllocated(r.pfn), true, 'the pages stay used');
    assert.equal(CmaPool.attach(device, BASE, SIZE).attachReport?.ok, true);
  });

  it('refuses a size field that disagrees with the bitmap geometry', () => {
    const { device } = setup();
    poke(device, HDR_PAGES, 600);
    // The crc catches it first: a bit flip is corruption, not a stale pool.
    assert.throws(() => CmaPool.attach(device, BASE, SIZE), refused('EFAULT', /crc/));
  });

  it('refuses a range outside the device (EINVAL)', () => {
    const { device } = setup();
    assert.throws(
      () => CmaPool.attach(device, 1000 * PAGE_SIZE, SIZE),
      refused('EINVAL', /outside/),
    );
    assert.throws(() => CmaPool.attach(device, BASE + 1, SIZE), refused('EINVAL', /whole pages/));
  });
});
