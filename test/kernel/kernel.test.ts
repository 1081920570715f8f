import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BootError } from '../../src/boot/errors.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { KhoRadixTree } from '../../src/kho/radix.js';
import { Machine } from '../../src/machine.js';
import { PAGE_SIZE } from '../../src/memory/device.js';
import { DeviceError } from '../../src/memory/errors.js';
import { formatDevice, readDeviceHeader } from '../../src/memory/header.js';
import { E820 } from '../../src/memory/memmap-types.js';
import { CmaPool } from '../../src/pmpool/cma.js';
import { externalGrowth, srcUrl } from '../mm/_external.js';
import { allocateAll, MiB } from './_helpers.js';

test('a cold boot brings up every page but the header page, and prints the map like the kernel', () => {
  const m = Machine.create({ size: 16 * MiB });
  // KHO off: these tests count every page, and KHO would set scratch memory aside.
  const k = m.boot('kho=off');
  assert.equal(k.boot.kind, 'cold');
  assert.equal(k.generation, 1);
  const st = k.status();
  assert.deepEqual(st.memoryMap.lines, [
    'BIOS-e820: [mem 0x0000000000000000-0x0000000000000fff] reserved',
    'BIOS-e820: [mem 0x0000000000001000-0x0000000000ffffff] usable',
  ]);
  assert.equal(st.pages.totalPages, 4096);
  assert.equal(st.pages.freePages, 4095);
  assert.equal(st.pages.reservedPages, 1);
  const pfns = allocateAll(k);
  assert.equal(pfns.length, 4095);
  assert.ok(!pfns.includes(0), 'page 0 (the device header) is never handed out');
  assert.equal(new Set(pfns).size, pfns.length);
  assert.doesNotThrow(() => JSON.stringify(st));
});

test('memmap= carves a reserved range that is never allocated', () => {
  const m = Machine.create({ size: 16 * MiB });
  const k = m.boot('kho=off memmap=1M$4M memmap=2M!8M');
  const map = k.memoryMap.entries();
  assert.ok(map.some((r) => r.base === 4 * MiB && r.size === MiB && r.type === E820.RESERVED));
  assert.ok(
    map.some((r) => r.base === 8 * MiB && r.size === 2 * MiB && r.type === E820.RESERVED_KERN),
  );
  const pfns = allocateAll(k);
  const inside = (pfn: number, base: number, size: number) =>
    pfn * PAGE_SIZE >= base && pfn * PAGE_SIZE < base + size;
  assert.ok(!pfns.some((p) => inside(p, 4 * MiB, MiB) || inside(p, 8 * MiB, 2 * MiB)));
  assert.equal(pfns.length, 4096 - 1 - 256 - 512);
});

test('memmap=nn limits usable memory', () => {
  const k = Machine.create({ size: 16 * MiB }).boot('kho=off memmap=8M');
  assert.equal(k.pages.stats().freePages, 2048 - 1);
});

test('a bad command-line value is a BootError naming the parameter, and changes nothing', () => {
  const m = Machine.create({ size: 16 * MiB });
  const before = readDeviceHeader(m.device);
  for (const bad of ['memmap=1Q$4M', 'crashkernel=', 'kho=maybe', 'reserve_mem=1M:96:x']) {
    assert.throws(
      () => m.boot(bad),
      (e: unknown) =>
        e instanceof BootError && e.code === 'EINVAL' && e.param === bad.split('=')[0],
      bad,
    );
  }
  assert.deepEqual(readDeviceHeader(m.device), before);
  assert.equal(m.boot('quiet').generation, before.generation + 1);
});

test('unknown parameters and everything after -- stay available to the program', () => {
  const k = Machine.create({ size: 8 * MiB }).boot(
    'memmap=1M$4M app.mode=fast debug -- --port 8080',
  );
  assert.deepEqual(k.params && k.cmdline.unknown(['memmap']).map((p) => p.name), [
    'app.mode',
    'debug',
  ]);
  assert.deepEqual(k.cmdline.programArgs, ['--port', '8080']);
});

test('crashkernel= reserves an area top-down that the page allocator never hands out', () => {
  const k = Machine.create({ size: 64 * MiB }).boot('kho=off crashkernel=8M');
  assert.ok(k.crashArea);
  assert.equal(k.crashArea.size, 8 * MiB);
  assert.equal(k.crashArea.base + k.crashArea.size, 64 * MiB, 'placed at the top');
  const pfns = allocateAll(k);
  assert.ok(pfns.every((p) => p * PAGE_SIZE < k.crashArea!.base));
});

test('crashkernel=size@offset honours the offset, and refuses memory that is not free', () => {
  const m = Machine.create({ size: 64 * MiB });
  assert.deepEqual(m.boot('crashkernel=4M@16M').crashArea, { base: 16 * MiB, size: 4 * MiB });
  assert.throws(
    () => m.boot('memmap=1M$16M crashkernel=4M@16M'),
    (e: unknown) => e instanceof BootError && e.param === 'crashkernel',
  );
  assert.throws(
    () => m.boot('crashkernel=128M'),
    (e: unknown) => e instanceof BootError && e.code === 'ENOMEM',
  );
});

test('free pages coalesce back completely after freeing everything', () => {
  const k = Machine.create({ size: 16 * MiB }).boot();
  const before = k.pages.freeExtents();
  const folios = [];
  for (let i = 0; i < 200; i++) {
    const f = k.allocPages(i % 5);
    if (f) folios.push(f);
  }
  for (const f of folios.reverse()) k.freePages(f);
  assert.deepEqual(k.pages.freeExtents(), before);
});

test('NUMA nodes split memory equally', () => {
  const m = Machine.create({ size: 16 * MiB, nodes: 4 });
  assert.deepEqual(
    m.boot().nodes.map((n) => n.size),
    [4 * MiB, 4 * MiB, 4 * MiB, 4 * MiB],
  );
});

test('memmap= ranges that are not whole pages are rounded: kept ranges outwards, usable inwards', () => {
  const m = Machine.create({ size: 8 * MiB });
  const k = m.boot('memmap=1K$4K memmap=6K$1M');
  const reserved = k.memoryMap.entries().filter((r) => r.type === E820.RESERVED);
  assert.deepEqual(
    reserved.map((r) => [r.base, r.size]),
    [
      [0, 2 * PAGE_SIZE],
      [MiB, 2 * PAGE_SIZE],
    ],
  );
  k.kexec.load();
  assert.equal(k.kexec.exec().boot.kind, 'kexec', 'the rounded map is a valid handover');
});

test("the memmap is kept out of V8's accounting only on a device owned for the process's life", () => {
  const prelude = `import { Kernel } from ${JSON.stringify(srcUrl('kernel/kernel.js'))};
    import { formatDevice } from ${JSON.stringify(srcUrl('memory/header.js'))};
    import { HeapDevice } from ${JSON.stringify(srcUrl('memory/heap.js'))};
    // As a mapped device says: one process owns it for life.
    class OwnedHeapDevice extends HeapDevice { ownedForLife = true; }
    const platform = { execute() { throw new Error('never'); } };
    const boot = (device) => (formatDevice(device), Kernel.boot({ device, cmdline: 'kho=off', platform }));`;
  // 256 Ki pages: a memmap of 2.5 MiB.
  const owned = externalGrowth(prelude, 'boot(new OwnedHeapDevice(2 ** 30))');
  assert.ok(owned < 2 ** 30 + MiB, `owned: ${owned - 2 ** 30} bytes over the device`);
  // Emulated machines boot many generations in one process: dead ones' memmaps must count.
  // Against the owned boot, not a fixed figure: the import and the boot also free some
  // external memory of their own (0.4-0.5 MiB here, more or less from run to run).
  const counted = externalGrowth(prelude, 'boot(new HeapDevice(2 ** 30))');
  assert.ok(counted - owned >= 2 * MiB, `counted: ${counted - owned} bytes over the owned boot`);
});

test('a device whose page views are not 4-byte aligned (a third-party MemoryDevice) is refused with EINVAL, not a RangeError later', () => {
  const size = 8 * MiB;
  // Device byte 0 sits at byte 2 of the buffer: no page view can be read as 32-bit words.
  const buffer = new ArrayBuffer(size + 8);
  const device = {
    size,
    pageSize: PAGE_SIZE,
    pages: size / PAGE_SIZE,
    name: 'offset device',
    bytes: (phys: number, length: number) => new Uint8Array(buffer, 2 + phys, length),
    view: (phys: number, length: number) => new DataView(buffer, 2 + phys, length),
    flush: () => {},
    close: () => {},
  };
  formatDevice(device);
  const einval = (err: unknown) =>
    err instanceof DeviceError && err.code === 'EINVAL' && /4-byte boundary/.test(err.message);
  const platform = {
    execute(): never {
      throw new Error('never');
    },
  };
  assert.throws(() => Kernel.boot({ device, platform }), einval);
  assert.throws(() => CmaPool.format(device, 1 * MiB, 1 * MiB), einval);
  assert.throws(() => CmaPool.attach(device, 1 * MiB, 1 * MiB), einval);
  // The walk tools use on a device from outside a kernel (kho status, pkram checks).
  assert.throws(() => KhoRadixTree.walk(device, 16 * PAGE_SIZE, () => {}), einval);
});
