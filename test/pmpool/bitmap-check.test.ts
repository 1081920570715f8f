/**
 * Damage to a pool's bitmap is never silent: every chunk of the bitmap has a
 * check word, a successor verifies them all before it trusts the pool, and a
 * chunk that fails has all its pages marked in use (they may be held), so a
 * held page is never handed out again. Reported in the pool's origin and reason.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PfnRange } from '../../src/base/range.js';
import type { Kernel } from '../../src/kernel/kernel.js';
import { Machine } from '../../src/machine.js';
import { PAGE_SIZE } from '../../src/memory/device.js';
import { HeapDevice } from '../../src/memory/heap.js';
import { BITMAP_OFFSET, CHECK_WORDS, INTENT_OP } from '../../src/pmpool/abi.js';
import { CmaPool } from '../../src/pmpool/cma.js';
import { PmpoolError } from '../../src/pmpool/errors.js';
import { inspectPools } from '../../src/pmpool/status.js';

const MiB = 1024 * 1024;
const BASE = 4 * MiB;
const POOL = 'pmpool=4M,4M';

/** Byte address of the bitmap byte holding pool page `page`'s bit. */
function bitmapByte(base: number, page: number): number {
  return base + BITMAP_OFFSET + (page >>> 3);
}

function kexec(k: Kernel, cmdline: string): Kernel {
  k.kexec.load({ cmdline });
  return k.kexec.exec();
}

/** Takes every page the pool will still hand out, one at a time. */
function drain(alloc: () => PfnRange | null): Set<number> {
  const got = new Set<number>();
  for (let r = alloc(); r !== null; r = alloc()) got.add(r.pfn);
  return got;
}

describe('pmpool bitmap checks', () => {
  for (const [label, successor] of [
    ['v2', POOL],
    ['v3', `kho=off ${POOL}`],
  ] as const) {
    for (const [what, damage] of [
      ['one bit flipped', (m: Machine, at: number) => (m.device.bytes(at, 1)[0] ^= 1 << 3)],
      ['two bytes zeroed', (m: Machine, at: number) => m.device.bytes(at, 2).fill(0)],
    ] as const) {
      it(`${label}: ${what} in a held 512-page allocation: never handed out again, reported`, () => {
        const m = Machine.create({ size: 32 * MiB });
        const k1 = m.boot(POOL);
        const pool1 = k1.pmpool!;
        const held = pool1.alloc(512)!;
        const page = held.pfn - BASE / PAGE_SIZE + 200;
        damage(m, bitmapByte(BASE, page));
        const k2 = kexec(k1, successor);
        const pool = k2.pmpool!;
        assert.equal(pool.origin, 'rebuilt');
        assert.match(pool.reason ?? '', /attach failed: EFAULT: .*does not match its check word/);
        assert.match(pool.reason ?? '', /rebuilt: \d+ bitmap chunks damaged/);
        assert.ok(k2.log.some((l) => /pmpool: default pool at 0x400000: rebuilt/.test(l)));
        for (let p = held.pfn; p < held.pfn + held.count; p++) assert.ok(pool.isAllocated(p));
        const handed = drain(() => pool.alloc(1));
        assert.ok(handed.size > 100, 'the rest of the pool is still usable');
        for (let p = held.pfn; p < held.pfn + held.count; p++) {
          assert.ok(!handed.has(p), `held pfn ${p} handed out again`);
        }
        // The holder can still give its pages back.
        assert.equal(pool.release(held.pfn, held.count), true);
      });
    }
  }

  it('a corrupt header on a kept pool is rebuilt, never reformatted: held pages stay held', () => {
    const m = Machine.create({ size: 32 * MiB });
    const k1 = m.boot(POOL);
    const held = k1.pmpool!.alloc(300)!;
    m.device.bytes(BASE, 0x40).fill(0); // the header words, magic included
    const k2 = kexec(k1, POOL);
    const pool = k2.pmpool!;
    assert.equal(pool.origin, 'rebuilt');
    assert.match(pool.reason ?? '', /ENODEV: .*no pool header.*header rewritten/);
    const handed = drain(() => pool.alloc(1));
    for (let p = held.pfn; p < held.pfn + held.count; p++) assert.ok(!handed.has(p));
    assert.ok(handed.size > 100, 'the check words vouch for the untouched chunks');
  });
});

describe('CmaPool bitmap checks', () => {
  const base = 64 * PAGE_SIZE;
  const size = 2000 * PAGE_SIZE;
  function setup(): { device: HeapDevice; pool: CmaPool; held: PfnRange } {
    const device = new HeapDevice(4096 * PAGE_SIZE);
    const pool = CmaPool.format(device, base, size, { generation: 5 });
    pool.alloc(40);
    const held = pool.alloc(512)!;
    pool.alloc(7);
    return { device, pool, held };
  }

  it('attach refuses a flipped bit (EFAULT, the chunk named), in free and in held pages alike', () => {
    for (const offset of [200, 1500]) {
      const { device } = setup();
      device.bytes(bitmapByte(base, offset), 1)[0] ^= 0x10;
      assert.throws(
        () => CmaPool.attach(device, base, size),
        (e: unknown) =>
          e instanceof PmpoolError &&
          e.code === 'EFAULT' &&
          /bitmap chunk \d+ \(pool pages \d+\.\.\d+\) does not match its check word/.test(
            e.message,
          ),
      );
    }
  });

  it('rebuild marks a damaged chunk in use, counts what it took, and the pool attaches again', () => {
    const { device, held } = setup();
    const page = held.pfn - base / PAGE_SIZE + 100;
    device.bytes(bitmapByte(base, page), 1)[0] = 0;
    const pool = CmaPool.rebuild(device, base, size);
    const r = pool.attachReport!;
    assert.equal(r.damagedChunks, 1);
    assert.equal(r.markedInUse, 8, 'the 8 pages the zeroed byte showed free');
    assert.equal(r.repaired, true);
    for (let p = held.pfn; p < held.pfn + held.count; p++) assert.ok(pool.isAllocated(p));
    assert.deepEqual(CmaPool.attach(device, base, size).attachReport?.problems, []);
  });

  it('a damaged check word is caught too, and its chunk kept in use', () => {
    const { device, pool } = setup();
    const before = pool.stats().usedPages;
    device.view(base + CHECK_WORDS * 4 + 4 * 30, 4).setUint32(0, 0xdeadbeef, true);
    assert.throws(() => CmaPool.attach(device, base, size), /check word/);
    const report = pool.check({ repair: true });
    assert.equal(report.damagedChunks, 1);
    assert.ok(pool.stats().usedPages > before);
    assert.equal(CmaPool.attach(device, base, size).attachReport?.ok, true);
  });

  it('a flipped bit in a retired intent never revives a finished alloc (its pages stay held)', () => {
    for (const bit of [0, 1]) {
      const device = new HeapDevice(4096 * PAGE_SIZE);
      const pool = CmaPool.format(device, base, size, { generation: 5 });
      const held = pool.alloc(512)!;
      // The retired op word is NONE (0): bit 0 reads ALLOC, bit 1 RELEASE.
      device.bytes(base + INTENT_OP * 4, 1)[0] ^= 1 << bit;
      const again = CmaPool.rebuild(device, base, size);
      assert.match(again.attachReport!.problems.join('\n'), /intent record is corrupt/);
      for (let p = held.pfn; p < held.pfn + held.count; p++) assert.ok(again.isAllocated(p));
      // The repair retired the record a second time: the same flip still cannot revive it.
      device.bytes(base + INTENT_OP * 4, 1)[0] ^= 1 << bit;
      const twice = CmaPool.rebuild(device, base, size);
      assert.match(twice.attachReport!.problems.join('\n'), /intent record is corrupt/);
      for (let p = held.pfn; p < held.pfn + held.count; p++) assert.ok(twice.isAllocated(p));
      assert.equal(twice.alloc(1)!.pfn >= held.pfn + held.count, true);
    }
  });

  it('pmpool status reports the damaged chunk without changing a byte', () => {
    const { device, held } = setup();
    device.bytes(bitmapByte(base, held.pfn - base / PAGE_SIZE), 1)[0] ^= 1;
    const image = device.bytes(base, 2 * PAGE_SIZE).slice();
    const [found] = inspectPools(device, [{ base, size }]);
    assert.ok(found.ok);
    assert.equal(found.damagedChunks, 1);
    assert.match(found.pending.join('\n'), /does not match its check word/);
    assert.deepEqual(device.bytes(base, 2 * PAGE_SIZE), image);
  });
});
