/** pmpool= on the kernel: early validation, reservation and a fresh pool's bring-up. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BootError } from '../../src/boot/errors.js';
import type { Kernel } from '../../src/kernel/kernel.js';
import { Machine } from '../../src/machine.js';
import { PAGE_SIZE } from '../../src/memory/device.js';
import { readDeviceHeader } from '../../src/memory/header.js';
import { E820 } from '../../src/memory/memmap-types.js';
import { FDT_NODE_DEFAULT } from '../../src/pmpool/abi.js';
import { fdtNodeName } from '../../src/pmpool/pools.js';

const MiB = 1024 * 1024;
const SIZE = 32 * MiB;

/** True when no page of [base, base + size) is free in the page allocator. */
function buddyAvoids(k: Kernel, base: number, size: number): boolean {
  const first = base / PAGE_SIZE;
  const end = (base + size) / PAGE_SIZE;
  return k.pages.freeExtents().every((e) => e.pfn + e.count <= first || e.pfn >= end);
}

function typeAt(k: Kernel, addr: number): number | undefined {
  return k.memoryMap.find(addr)?.type;
}

/** Boots `cmdline` expecting a BootError naming pmpool; checks the device header was not written. */
function refused(cmdline: string, code: string, message: RegExp): void {
  const m = Machine.create({ size: SIZE });
  const before = readDeviceHeader(m.device);
  assert.throws(
    () => m.boot(cmdline),
    (err: unknown) =>
      err instanceof BootError &&
      err.param === 'pmpool' &&
      err.code === code &&
      message.test(err.message),
    cmdline,
  );
  assert.equal(m.kernel, null);
  assert.deepEqual(readDeviceHeader(m.device), before, 'a refused boot writes nothing');
}

describe('pmpool= at boot', () => {
  it('makes a fresh default pool, reserved and marked reserved by kernel', () => {
    const m = Machine.create({ size: SIZE });
    const k = m.boot('pmpool=4M,4M');
    const pool = k.pmpool;
    assert.ok(pool);
    assert.equal(k.pmpools.get(), pool);
    assert.equal(pool.name, null);
    assert.equal(pool.base, 4 * MiB);
    assert.equal(pool.size, 4 * MiB);
    assert.equal(pool.origin, 'fresh');
    assert.equal(pool.reason, null);
    assert.equal(pool.fdtNode, FDT_NODE_DEFAULT);
    assert.equal(typeAt(k, 4 * MiB), E820.RESERVED_KERN);
    assert.equal(typeAt(k, 8 * MiB - 1), E820.RESERVED_KERN);
    assert.equal(typeAt(k, 8 * MiB), E820.USABLE);
    assert.ok(k.memblock.isReserved(4 * MiB, 4 * MiB));
    assert.ok(buddyAvoids(k, 4 * MiB, 4 * MiB));
    assert.ok(
      k.log.some((l) => /^pmpool: default pool at 0x400000: fresh/.test(l)),
      k.log.join('\n'),
    );
    const st = k.status().pmpools.pools;
    assert.equal(st.length, 1);
    assert.equal(st[0].totalPages, 1024);
    assert.equal(st[0].usedPages, st[0].metadataPages);
    assert.equal(st[0].freePages, 1024 - st[0].metadataPages);
    assert.equal(st[0].largestFreeRun, st[0].freePages);
    assert.equal(st[0].origin, 'fresh');
  });

  it('the page allocator never hands out pool pages, even when all memory is taken', () => {
    const m = Machine.create({ size: SIZE });
    const k = m.boot('pmpool=4M,4M pmpool=io:12M,1M');
    for (let order = 10; order >= 0; order--) {
      for (let f = k.allocPages(order); f !== null; f = k.allocPages(order)) {
        const start = f.pfn * PAGE_SIZE;
        const end = start + 2 ** order * PAGE_SIZE;
        assert.ok(end <= 4 * MiB || start >= 8 * MiB, `folio at ${start} is in the default pool`);
        assert.ok(end <= 12 * MiB || start >= 13 * MiB, `folio at ${start} is in pool 'io'`);
      }
    }
    assert.equal(k.pages.stats().freePages, 0);
  });

  it('named pools come up next to the default one, each with its own node name', () => {
    const m = Machine.create({ size: SIZE });
    const k = m.boot('pmpool=a:4M,1M pmpool=8M,2M pmpool=b.x-1:12M,1M');
    assert.deepEqual(
      k.pmpools.list().map((p) => [p.name, p.base, p.fdtNode]),
      [
        ['a', 4 * MiB, 'pmpool_a'],
        [null, 8 * MiB, 'default_pmpool'],
        ['b.x-1', 12 * MiB, 'pmpool_b.x-1'],
      ],
    );
    assert.equal(k.pmpool?.base, 8 * MiB);
    assert.equal(k.pmpools.get('a')?.size, 1 * MiB);
    assert.equal(k.pmpools.get('nope'), undefined);
    // Pools are independent allocators.
    const a = k.pmpools.get('a');
    assert.ok(a);
    const r = a.alloc(16);
    assert.ok(r);
    assert.ok(a.isAllocated(r.pfn));
    assert.equal(k.pmpool?.release(r.pfn, 16), false);
    assert.equal(a.release(r.pfn, 16), true);
  });

  it('a name too long for a KHO subtree gets no node', () => {
    assert.equal(fdtNodeName(null), 'default_pmpool');
    assert.equal(fdtNodeName('x'.repeat(24)), `pmpool_${'x'.repeat(24)}`);
    assert.equal(fdtNodeName('x'.repeat(25)), null);
  });

  it('no pmpool= means no pools', () => {
    const k = Machine.create({ size: SIZE }).boot('');
    assert.equal(k.pmpool, null);
    assert.deepEqual(k.pmpools.list(), []);
    assert.deepEqual(k.status().pmpools, { pools: [] });
    assert.deepEqual(k.pmpools.freeze(), { marks: [] });
  });

  it('refuses unaligned ranges', () => {
    refused('pmpool=0x400800,4M', 'EINVAL', /not page aligned/);
    refused('pmpool=4M,0x100800', 'EINVAL', /not page aligned/);
  });

  it('refuses ranges outside the device', () => {
    refused('pmpool=30M,4M', 'ERANGE', /outside the 0x2000000-byte device/);
    refused('pmpool=64M,4K', 'ERANGE', /outside/);
  });

  it('refuses ranges too small for the metadata and one data page', () => {
    refused('pmpool=4M,4K', 'EINVAL', /metadata pages and one data page/);
    refused('pmpool=4M,8K', 'EINVAL', /metadata pages and one data page/);
  });

  it('refuses reserved memory, page 0 and holes', () => {
    refused('memmap=1M$6M pmpool=4M,4M', 'ERANGE', /overlaps reserved memory at 0x600000/);
    refused('pmpool=0,1M', 'ERANGE', /overlaps reserved memory at 0x0/);
    refused(
      'memmap=exactmap memmap=4M@1M memmap=8M@16M pmpool=4M,4M',
      'ERANGE',
      /a hole in the memory map/,
    );
  });

  it('takes a pool at the top of memory: KHO scratch is placed after the fixed ranges', () => {
    const k = Machine.create({ size: SIZE }).boot('pmpool=28M,4M');
    assert.equal(k.pmpool?.base, 28 * MiB);
    assert.ok(k.kho.scratch.length > 0);
    for (const a of k.kho.scratch) assert.ok(a.base + a.size <= 28 * MiB, 'scratch below the pool');
  });

  it('refuses overlapping pools and a second default pool', () => {
    refused('pmpool=4M,4M pmpool=b:7M,2M', 'ERANGE', /pool 'b' at 0x700000 overlaps default pool/);
    refused('pmpool=4M,1M pmpool=8M,1M', 'EINVAL', /default pool is given twice/);
  });

  it('refuses memory reserved by kernel that is not exactly a kept pool', () => {
    refused('memmap=4M!4M pmpool=5M,1M', 'ERANGE', /a predecessor kept .* another base or size/);
    refused('memmap=4M!4M pmpool=2M,4M', 'ERANGE', /another base or size/);
  });

  it('crashkernel= at a fixed offset cannot take a pool', () => {
    const m = Machine.create({ size: SIZE });
    assert.throws(
      () => m.boot('pmpool=4M,4M crashkernel=1M@5M'),
      (err: unknown) => err instanceof BootError && err.param === 'crashkernel',
    );
    const k = m.boot('pmpool=4M,4M crashkernel=1M');
    const area = k.crashArea;
    assert.ok(area);
    assert.ok(area.base + area.size <= 4 * MiB || area.base >= 8 * MiB);
  });

  it('a pool works with KHO off', () => {
    const k = Machine.create({ size: SIZE }).boot('kho=off pmpool=4M,4M');
    assert.equal(k.kho.enabled, false);
    assert.equal(k.pmpool?.origin, 'fresh');
    assert.ok(k.pmpool?.alloc(3));
  });

  it('pool calls fail once the generation is replaced', () => {
    const m = Machine.create({ size: SIZE });
    const k = m.boot('pmpool=4M,4M');
    const pool = k.pmpool;
    assert.ok(pool);
    k.kexec.load();
    k.kexec.exec();
    assert.throws(() => pool.alloc(1), { name: 'KexecError', code: 'ESRCH' });
  });
});
