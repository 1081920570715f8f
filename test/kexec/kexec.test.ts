import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BB_CRC32C } from '../../src/boot/abi.js';
import { BootError } from '../../src/boot/errors.js';
import type { HandoverSubsystem } from '../../src/boot/handover.js';
import { Kernel, type KernelPlatform } from '../../src/kernel/kernel.js';
import { KexecError } from '../../src/kexec/errors.js';
import type { LoadedImage } from '../../src/kexec/kexec.js';
import { Machine } from '../../src/machine.js';
import { PAGE_SIZE } from '../../src/memory/device.js';
import { readDeviceHeader } from '../../src/memory/header.js';
import { MemoryMap } from '../../src/memory/memmap.js';
import { E820 } from '../../src/memory/memmap-types.js';
import { allocateAll, MiB } from '../kernel/_helpers.js';

const isKexecError = (code: string) => (e: unknown) => e instanceof KexecError && e.code === code;

test('kexec load places the boot block top-down in free memory, and unload gives it back', () => {
  const k = Machine.create({ size: 16 * MiB }).boot();
  const free = k.pages.stats().freePages;
  const top = k.allocPages(8); // the top 1 MiB block of the allocator's choosing
  assert.ok(top);
  const image = k.kexec.load({ cmdline: 'quiet' });
  const { base, size } = image.segment;
  assert.equal(base % PAGE_SIZE, 0);
  assert.ok(base + size <= 16 * MiB);
  for (let p = base / PAGE_SIZE; p < (base + size) / PAGE_SIZE; p++) {
    assert.equal(k.pages.pageState(p), 'reserved', 'segment pages are held by kexec');
  }
  // Top-down: no free page lies above the segment.
  assert.ok(k.pages.freeExtents().every((e) => (e.pfn + e.count) * PAGE_SIZE <= base));
  k.kexec.unload();
  k.freePages(top);
  assert.equal(k.pages.stats().freePages, free);
  assert.throws(() => k.kexec.unload(), isKexecError('ENOENT'));
});

test('exec boots the successor with the loaded command line; the predecessor is gone', () => {
  const m = Machine.create({ size: 16 * MiB });
  const k1 = m.boot('memmap=1M$4M');
  k1.kexec.load({ cmdline: 'memmap=2M$8M -- serve' });
  const k2 = k1.kexec.exec();
  assert.equal(k2.boot.kind, 'kexec');
  assert.equal(k2.generation, 2);
  assert.equal(k2.boot.predecessorBootId, k1.boot.bootId);
  assert.deepEqual(k2.cmdline.programArgs, ['serve']);
  assert.equal(m.kernel, k2);
  // The map handed over keeps the predecessor's memmap= range and adds the new one.
  const reserved = k2.memoryMap.entries().filter((r) => r.type === E820.RESERVED && r.base > 0);
  assert.deepEqual(
    reserved.map((r) => [r.base, r.size]),
    [
      [4 * MiB, MiB],
      [8 * MiB, 2 * MiB],
    ],
  );
  assert.equal(k1.alive, false);
  assert.throws(() => k1.allocPages(0), isKexecError('ESRCH'));
  assert.throws(() => k1.kexec.load(), isKexecError('ESRCH'));
  assert.equal(readDeviceHeader(m.device).bootBlock, 0, 'the boot block was consumed');
});

test('exec without load is ENOENT; a bad command line at load is a BootError and nothing is held', () => {
  const k = Machine.create({ size: 8 * MiB }).boot();
  assert.throws(() => k.kexec.exec(), isKexecError('ENOENT'));
  const free = k.pages.stats().freePages;
  assert.throws(
    () => k.kexec.load({ cmdline: 'memmap=oops' }),
    (e: unknown) => e instanceof BootError && e.param === 'memmap',
  );
  assert.equal(k.pages.stats().freePages, free);
  assert.equal(k.kexec.loaded, null);
});

test('a boot block is consumed once: booting it again is refused and the device boots cold', () => {
  const m = Machine.create({ size: 8 * MiB });
  const k1 = m.boot();
  const image = k1.kexec.load();
  const k2 = k1.kexec.exec();
  const again = Kernel.boot({ device: m.device, bootBlock: image.segment.base, platform: m });
  assert.equal(again.boot.kind, 'cold');
  assert.match(again.boot.coldReason ?? '', /no boot block is pending/);
  assert.equal(again.generation, k2.generation + 1);
});

/** A platform that damages the boot block after commit, before the successor reads it. */
function damaging(m: Machine, damage: (image: LoadedImage) => void): KernelPlatform {
  return {
    execute(image) {
      damage(image);
      return Kernel.boot({
        device: m.device,
        cmdline: 'fallback',
        bootBlock: image.segment.base,
        platform: m,
      });
    },
  };
}

/** A subsystem that preserves one range for the successor through the memory map. */
function preserving(addr: number, size: number): HandoverSubsystem {
  return {
    name: 'test-preserve',
    freeze: () => ({ marks: [{ base: addr, size, type: E820.PRESERVED }] }),
  };
}

test('a corrupt boot block is refused with its reason; the cold boot never hands out preserved memory', () => {
  const m = Machine.create({ size: 16 * MiB });
  const k1 = Kernel.boot({
    device: m.device,
    platform: damaging(m, (img) => {
      m.device.bytes(img.segment.base + BB_CRC32C, 1)[0] ^= 0xff;
    }),
  });
  k1.addSubsystem(preserving(6 * MiB, 2 * MiB));
  k1.kexec.load({ cmdline: 'quiet' });
  const k2 = k1.kexec.exec();
  assert.equal(k2.boot.kind, 'cold');
  assert.match(k2.boot.coldReason ?? '', /checksum|crc/i);
  assert.equal(k2.boot.cmdline, 'fallback');
  const pfns = allocateAll(k2);
  assert.ok(pfns.length > 0);
  assert.ok(
    pfns.every((p) => p * PAGE_SIZE < 6 * MiB || p * PAGE_SIZE >= 8 * MiB),
    'no preserved page is handed out after the refused handover',
  );
});

test('a truncated or stale boot block is refused the same way', () => {
  for (const damage of ['truncate', 'generation'] as const) {
    const m = Machine.create({ size: 8 * MiB });
    const k1 = Kernel.boot({
      device: m.device,
      platform: damaging(m, (img) => {
        const v = m.device.view(img.segment.base, 64);
        if (damage === 'truncate') v.setUint32(8, 16, true);
        else v.setUint32(0x10, 99, true);
      }),
    });
    const k2 = k1.kexec.load() && k1.kexec.exec();
    assert.equal(k2.boot.kind, 'cold', damage);
    assert.ok(k2.boot.coldReason, damage);
  }
});

test('a subsystem that cannot freeze cancels the exec: the others are unfrozen and the generation goes on', () => {
  const m = Machine.create({ size: 8 * MiB });
  const k = m.boot();
  const log: string[] = [];
  k.addSubsystem({
    name: 'a',
    freeze: () => {
      log.push('freeze a');
      return {};
    },
    unfreeze: () => log.push('unfreeze a'),
  });
  k.addSubsystem({
    name: 'b',
    freeze: () => {
      throw new Error('busy');
    },
    unfreeze: () => log.push('unfreeze b'),
  });
  k.kexec.load();
  assert.throws(() => k.kexec.exec(), isKexecError('EAGAIN'));
  assert.deepEqual(log, ['freeze a', 'unfreeze a']);
  assert.ok(k.alive);
  assert.equal(m.kernel, k);
  assert.equal(readDeviceHeader(m.device).bootBlock, 0);
  assert.ok(k.allocPages(0));
  k.subsystems.pop();
  assert.equal(k.kexec.exec().generation, 2, 'a later exec succeeds');
});

test('a platform that cannot start the successor leaves nothing pending', () => {
  const m = Machine.create({ size: 8 * MiB });
  const k = Kernel.boot({
    device: m.device,
    platform: {
      execute() {
        throw new Error('execve: ENOENT');
      },
    },
  });
  k.kexec.load();
  assert.throws(() => k.kexec.exec(), isKexecError('EIO'));
  assert.ok(k.alive);
  assert.equal(readDeviceHeader(m.device).bootBlock, 0);
});

test('the platform hears when an exec begins, and when it failed before the successor took over', () => {
  const m = Machine.create({ size: 8 * MiB });
  const log: string[] = [];
  let fail: 'freeze' | 'execute' | null = 'freeze';
  const platform: KernelPlatform = {
    execBegin: (image: LoadedImage) => log.push(`begin ${image.generation}`),
    execCancelled: (image: LoadedImage) => log.push(`cancelled ${image.generation}`),
    execute(image: LoadedImage) {
      log.push('execute');
      if (fail === 'execute') throw new Error('execve: ENOENT');
      return Kernel.boot({ device: m.device, bootBlock: image.segment.base, platform });
    },
  };
  const k = Kernel.boot({ device: m.device, platform });
  k.addSubsystem({
    name: 'refuses',
    freeze: () => {
      if (fail === 'freeze') throw new Error('busy');
      return {};
    },
  });
  k.kexec.load();
  assert.throws(() => k.kexec.exec(), isKexecError('EAGAIN'));
  assert.deepEqual(log.splice(0), ['begin 2', 'cancelled 2']);
  fail = 'execute';
  assert.throws(() => k.kexec.exec(), isKexecError('EIO'));
  assert.deepEqual(log.splice(0), ['begin 2', 'execute', 'cancelled 2']);
  fail = null;
  assert.equal(k.kexec.exec().generation, 2);
  assert.deepEqual(log, ['begin 2', 'execute']);
});

test('the platform hears of each image loaded, not of a refused load, and cannot fail a load by it', () => {
  const m = Machine.create({ size: 8 * MiB });
  const loaded: number[] = [];
  let throws = false;
  const platform: KernelPlatform = {
    loaded: (image: LoadedImage) => {
      loaded.push(image.segment.base);
      if (throws) throw new Error('not ready');
    },
    execute: (image: LoadedImage) =>
      Kernel.boot({ device: m.device, bootBlock: image.segment.base, platform }),
  };
  const k = Kernel.boot({ device: m.device, platform });
  const first = k.kexec.load();
  assert.deepEqual(loaded, [first.segment.base]);
  assert.throws(() => k.kexec.load({ reserveBytes: -1 }), isKexecError('EINVAL'));
  assert.equal(loaded.length, 1);
  throws = true;
  const second = k.kexec.load();
  assert.equal(k.kexec.loaded, second);
  assert.equal(loaded.length, 2);
  assert.equal(k.kexec.exec().generation, 2);
});

test('panic boots the crash kernel: only its area is memory, the rest is read-only, nothing kexecs', () => {
  const m = Machine.create({ size: 64 * MiB });
  const k = m.boot('crashkernel=8M');
  const f = k.allocPages(0);
  assert.ok(f);
  k.folioBytes(f).fill(0x5a);
  const crash = k.panic('oops');
  assert.equal(crash.boot.kind, 'crash');
  assert.equal(m.kernel, crash);
  assert.throws(() => k.allocPages(0), isKexecError('ESRCH'));
  const area = k.crashArea!;
  const pfns = allocateAll(crash);
  assert.equal(pfns.length, area.size / PAGE_SIZE);
  assert.ok(pfns.every((p) => p * PAGE_SIZE >= area.base && p * PAGE_SIZE < area.base + area.size));
  // The dead generation's memory reads back, and writes through the crash kernel do not land.
  const old = crash.device.bytes(f.pfn * PAGE_SIZE, PAGE_SIZE);
  assert.equal(old[0], 0x5a);
  old[0] = 0;
  assert.equal(m.device.bytes(f.pfn * PAGE_SIZE, 1)[0], 0x5a);
  assert.throws(() => crash.kexec.load(), isKexecError('ESRCH'));
  assert.throws(() => crash.panic(), isKexecError('ENOENT'));
});

test('a subsystem that cannot make room for the placed segment refuses the load: nothing stays loaded or held', () => {
  const m = Machine.create({ size: 8 * MiB });
  const k = m.boot();
  const free = k.pages.stats().freePages;
  k.addSubsystem({
    name: 'cramped',
    freeze: () => ({}),
    segmentsPlaced: () => {
      throw new Error('no room');
    },
  });
  assert.throws(() => k.kexec.load(), /no room/);
  assert.equal(k.kexec.loaded, null);
  assert.equal(k.pages.stats().freePages, free, 'the segment is given back');
  assert.throws(() => k.kexec.exec(), isKexecError('ENOENT'));
  k.subsystems.pop();
  k.kexec.load();
  assert.equal(k.kexec.exec().generation, 2);
});

test('exec hands over a map with every preserved extent marked, in as many sweeps for 40 extents as for 2', () => {
  const handOver = (extents: number): { sweeps: number; marked: number } => {
    const m = Machine.create({ size: 64 * MiB });
    const k = m.boot();
    const pages: number[] = [];
    for (let i = 0; i < 2 * extents; i++) {
      const f = k.allocPages(0);
      assert.ok(f);
      pages.push(f.pfn);
    }
    pages.sort((a, b) => a - b);
    const kept = pages.filter((_, i) => i % 2 === 0);
    for (const pfn of kept) k.kho.preservePages(pfn, 1);
    k.kexec.load();
    k.kho.finalize();
    // Every sweep of a map, and the most preserved extents a swept map held.
    const proto = MemoryMap.prototype;
    const sanitize = proto.sanitize;
    let sweeps = 0;
    let marked = 0;
    proto.sanitize = function (this: MemoryMap) {
      sweeps++;
      sanitize.call(this);
      const n = this.entries().filter((r) => r.type === E820.PRESERVED).length;
      marked = Math.max(marked, n);
      return this;
    };
    let next: Kernel;
    try {
      next = k.kexec.exec();
    } finally {
      proto.sanitize = sanitize;
    }
    for (const pfn of kept) next.kho.restorePages(pfn * PAGE_SIZE, 1);
    assert.equal(next.kho.status().in?.unclaimed.blocks, 0);
    return { sweeps, marked };
  };
  const few = handOver(2);
  const many = handOver(40);
  // Beside the kept pages, KHO's own pages (its tree) are marked too.
  assert.equal(many.marked - few.marked, 38);
  assert.equal(many.sweeps, few.sweeps);
});
