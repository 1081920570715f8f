import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import * as abi from '../../src/memory/abi.js';
import { crc32c } from '../../src/memory/crc32c.js';
import { PAGE_SIZE } from '../../src/memory/device.js';
import { DeviceError } from '../../src/memory/errors.js';
import {
  decodeDeviceHeader,
  formatDevice,
  readDeviceHeader,
  writeDeviceHeader,
} from '../../src/memory/header.js';
import { HeapDevice } from '../../src/memory/heap.js';
import { E820 } from '../../src/memory/memmap-types.js';

const UUID = '0123abcd-4567-89ef-0011-223344556677';

function formatted(pages = 16) {
  const d = new HeapDevice(pages * PAGE_SIZE);
  formatDevice(d, { uuid: UUID, now: 1_700_000_000_000, ownerPid: 4242 });
  return d;
}

/** Applies `edit` to page 0, then (unless told not to) recomputes the crc so later checks are reached. */
function corrupt(d: HeapDevice, edit: (v: DataView) => void, fixCrc = true): void {
  const v = d.view(0, PAGE_SIZE);
  edit(v);
  if (!fixCrc) return;
  const size = Math.min(Math.max(v.getUint32(abi.HDR_HEADER_SIZE, true), 0), PAGE_SIZE);
  v.setUint32(abi.HDR_CRC, 0, true);
  v.setUint32(abi.HDR_CRC, crc32c(d.bytes(0, size)), true);
}

function refused(d: HeapDevice, reason: RegExp): void {
  assert.throws(
    () => readDeviceHeader(d),
    (e: unknown) => e instanceof DeviceError && e.code === 'ENODEV' && reason.test(e.message),
  );
}

test('header: format then read round-trips every field', () => {
  const d = formatted();
  const h = readDeviceHeader(d);
  assert.deepEqual(h, {
    version: 2,
    lastCompatVersion: 1,
    size: 16 * PAGE_SIZE,
    pageSize: PAGE_SIZE,
    uuid: UUID,
    created: 1_700_000_000_000,
    generation: 0,
    bootBlock: 0,
    bootId: '0'.repeat(32),
    ownerPid: 4242,
    memmap: [
      { addr: 0, size: PAGE_SIZE, type: E820.RESERVED },
      { addr: PAGE_SIZE, size: 15 * PAGE_SIZE, type: E820.USABLE },
    ],
    record: { kexecCount: 0, release: '', trial: null, last: null },
  });
  assert.equal(d.view(0, 4).getUint32(0, true), abi.DEVICE_MAGIC);
  assert.equal(new TextDecoder().decode(d.bytes(0, 4)), 'LKXD');
  const bootId = '0123456789abcdef'.repeat(2);
  writeDeviceHeader(d, {
    ...h,
    generation: 2 ** 40,
    bootBlock: 3 * PAGE_SIZE,
    ownerPid: 7,
    bootId,
  });
  const h2 = readDeviceHeader(d);
  assert.equal(h2.bootId, bootId);
  assert.throws(() => writeDeviceHeader(d, { ...h, bootId: 'xyz' }), DeviceError);
  assert.equal(h2.generation, 2 ** 40);
  assert.equal(h2.bootBlock, 3 * PAGE_SIZE);
  assert.equal(h2.ownerPid, 7);
  assert.match(formatDevice(new HeapDevice(2 * PAGE_SIZE)).uuid, /^[0-9a-f-]{36}$/);
});

test('header: too-small devices and bad headers are refused at format/write time', () => {
  assert.throws(
    () => formatDevice(new HeapDevice(PAGE_SIZE)),
    (e: unknown) => e instanceof DeviceError && e.code === 'ENOSPC',
  );
  const d = formatted();
  const h = readDeviceHeader(d);
  const inval = (f: () => unknown) =>
    assert.throws(f, (e: unknown) => e instanceof DeviceError && e.code === 'EINVAL');
  inval(() => writeDeviceHeader(d, { ...h, uuid: 'nope' }));
  inval(() => writeDeviceHeader(d, { ...h, size: 8 * PAGE_SIZE }));
  inval(() => writeDeviceHeader(d, { ...h, generation: -1 }));
  inval(() => writeDeviceHeader(d, { ...h, bootBlock: 5 }));
  inval(() => writeDeviceHeader(d, { ...h, memmap: [{ addr: 0, size: 17 * PAGE_SIZE, type: 1 }] }));
  const many = Array.from({ length: abi.DEVICE_MAP_MAX + 1 }, (_, i) => ({
    addr: i * PAGE_SIZE,
    size: PAGE_SIZE,
    type: 1,
  }));
  assert.throws(
    () =>
      writeDeviceHeader(new HeapDevice(256 * PAGE_SIZE), {
        ...h,
        size: 256 * PAGE_SIZE,
        memmap: many,
      }),
    (e: unknown) => e instanceof DeviceError && e.code === 'ENOSPC',
  );
  assert.deepEqual(readDeviceHeader(d), h, 'a refused write changes nothing');
});

test('header: every corrupt field is refused with its reason', () => {
  const cases: [string, (v: DataView) => void, RegExp, boolean?][] = [
    ['magic', (v) => v.setUint32(abi.HDR_MAGIC, 0x12345678, true), /bad magic 0x12345678/],
    [
      'zero page',
      (v) => new Uint8Array(v.buffer, v.byteOffset, 64).fill(0),
      /bad magic 0x0/,
      false,
    ],
    ['version 0', (v) => v.setUint32(abi.HDR_VERSION, 0, true), /bad format version 0/],
    [
      'boot record trial state',
      (v) => v.setUint32(abi.HDR_RECORD + abi.REC_TRIAL_STATE, 7, true),
      /unknown trial state 7/,
    ],
    [
      'boot record size',
      (v) => v.setUint32(abi.HDR_RECORD + abi.REC_SIZE, 8, true),
      /boot record is truncated/,
    ],
    [
      'last comp > version',
      (v) => v.setUint32(abi.HDR_LAST_COMP, 3, true),
      /bad format version 2 \(last compatible 3\)/,
    ],
    [
      'newer format',
      (v) => {
        v.setUint32(abi.HDR_VERSION, 4, true);
        v.setUint32(abi.HDR_LAST_COMP, 3, true);
      },
      /needs a reader of version 3/,
    ],
    ['header size small', (v) => v.setUint32(abi.HDR_HEADER_SIZE, 8, true), /header size 8/],
    [
      'header size big',
      (v) => v.setUint32(abi.HDR_HEADER_SIZE, PAGE_SIZE + 1, true),
      /header size 4097/,
      false,
    ],
    ['checksum', (v) => v.setUint32(abi.HDR_GENERATION, 5, true), /checksum mismatch/, false],
    [
      'device size',
      (v) => v.setBigUint64(abi.HDR_DEVICE_SIZE, BigInt(32 * PAGE_SIZE), true),
      /header says 131072 bytes, the device has 65536/,
    ],
    ['huge u64', (v) => v.setBigUint64(abi.HDR_GENERATION, 2n ** 60n, true), /above 2\^53/],
    ['page size', (v) => v.setUint32(abi.HDR_PAGE_SIZE, 8192, true), /page size 8192/],
    [
      'uuid',
      (v) => new Uint8Array(v.buffer, v.byteOffset + abi.HDR_UUID, 16).fill(0),
      /uuid is zero/,
    ],
    [
      'boot block in page 0',
      (v) => v.setBigUint64(abi.HDR_BOOT_BLOCK, 8n, true),
      /boot block address 0x8/,
    ],
    [
      'boot block outside',
      (v) => v.setBigUint64(abi.HDR_BOOT_BLOCK, BigInt(16 * PAGE_SIZE), true),
      /boot block address 0x10000/,
    ],
    [
      'boot block unaligned',
      (v) => v.setBigUint64(abi.HDR_BOOT_BLOCK, BigInt(PAGE_SIZE + 3), true),
      /boot block address 0x1003/,
    ],
    ['map count', (v) => v.setUint32(abi.HDR_MAP_COUNT, 1000, true), /1000 entries \(max 128\)/],
    [
      'map count past header',
      (v) => {
        v.setUint32(abi.HDR_HEADER_SIZE, abi.HDR_MAP + 2 * abi.MAP_ENTRY_SIZE, true);
        v.setUint32(abi.HDR_MAP_COUNT, 3, true);
      },
      /overruns the header size/,
    ],
    [
      'entry type 0',
      (v) => v.setUint32(abi.HDR_MAP + abi.MAP_ENTRY_SIZE + abi.MAP_ENTRY_TYPE, 0, true),
      /entry 1 has type 0/,
    ],
    [
      'entry size 0',
      (v) => v.setBigUint64(abi.HDR_MAP + abi.MAP_ENTRY_SIZE_FIELD, 0n, true),
      /entry 0 .* not whole pages/,
    ],
    [
      'entry unaligned',
      (v) => v.setBigUint64(abi.HDR_MAP + abi.MAP_ENTRY_ADDR, 1n, true),
      /entry 0 .* not whole pages/,
    ],
    [
      'entry past end',
      (v) =>
        v.setBigUint64(
          abi.HDR_MAP + abi.MAP_ENTRY_SIZE + abi.MAP_ENTRY_SIZE_FIELD,
          BigInt(16 * PAGE_SIZE),
          true,
        ),
      /entry 1 ends past the device/,
    ],
    [
      'entries overlap',
      (v) => v.setBigUint64(abi.HDR_MAP + abi.MAP_ENTRY_SIZE_FIELD, BigInt(2 * PAGE_SIZE), true),
      /entry 1 is out of order or overlaps/,
    ],
  ];
  for (const [what, edit, reason, fixCrc] of cases) {
    const d = formatted();
    corrupt(d, edit, fixCrc ?? true);
    assert.throws(
      () => readDeviceHeader(d),
      (e: unknown) => e instanceof DeviceError && e.code === 'ENODEV' && reason.test(e.message),
      what,
    );
  }
});

test('header: short page-0 bytes and an unformatted device are refused', () => {
  refused(new HeapDevice(4 * PAGE_SIZE), /bad magic 0x0/);
  assert.throws(
    () => decodeDeviceHeader(new Uint8Array(10), 2 * PAGE_SIZE),
    (e: unknown) =>
      e instanceof DeviceError && e.code === 'ENODEV' && /only 10 bytes/.test(e.message),
  );
});

test('header: random damage never throws anything but DeviceError', () => {
  const good = formatted();
  const page = good.bytes(0, PAGE_SIZE).slice();
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          at: fc.integer({ min: 0, max: 0x50 + 3 * 24 }),
          value: fc.integer({ min: 0, max: 255 }),
        }),
        { minLength: 1, maxLength: 8 },
      ),
      fc.boolean(),
      (edits, fixCrc) => {
        const d = new HeapDevice(16 * PAGE_SIZE);
        d.bytes(0, PAGE_SIZE).set(page);
        corrupt(
          d,
          (v) => {
            for (const { at, value } of edits) v.setUint8(at, value);
          },
          fixCrc,
        );
        try {
          const h = readDeviceHeader(d);
          // What is accepted is self-consistent.
          assert.equal(h.size, d.size);
        } catch (e) {
          assert.ok(e instanceof DeviceError, String(e));
          assert.equal(e.code, 'ENODEV');
        }
      },
    ),
    { numRuns: 500 },
  );
});

test('header: a creation time past what a Date holds is refused, so no reader meets a RangeError', () => {
  const d = formatted();
  // The largest creation time a Date accepts still reads, and prints.
  corrupt(d, (v) => v.setBigUint64(abi.HDR_CREATED, 8_640_000_000_000_000n, true));
  assert.equal(new Date(readDeviceHeader(d).created).toISOString(), '+275760-09-13T00:00:00.000Z');
  // One ms later, `device info`'s toISOString() would throw RangeError: the header is refused instead.
  corrupt(d, (v) => v.setBigUint64(abi.HDR_CREATED, 8_640_000_000_000_001n, true));
  refused(d, /creation time 8640000000000001 ms/);
  assert.throws(
    () => formatDevice(new HeapDevice(4 * PAGE_SIZE), { uuid: UUID, now: 2 ** 53 - 1 }),
    (e: unknown) => e instanceof DeviceError && e.code === 'EINVAL',
  );
});

test('header: the boot record round-trips, a long release is cut at a character boundary, and a version 1 header reads as no record', () => {
  const d = formatted();
  const h = readDeviceHeader(d);
  const record = {
    kexecCount: 7,
    release: `svc@${'é'.repeat(40)}`,
    trial: {
      state: 'falling-back' as const,
      bootBlock: 0x3000,
      baseGeneration: 4,
      baseBootId: 'ab'.repeat(16),
      tries: 2,
      maxTries: 2,
      pid: 99,
      deadlineMs: 5000,
      started: 1_700_000_000_123,
      release: 'svc@2.0.0',
      reason: 'exited with status 1',
    },
    last: {
      outcome: 'good' as const,
      successor: 'svc@1.9',
      tries: 1,
      reason: '',
      at: 1_700_000_000_000,
    },
  };
  writeDeviceHeader(d, { ...h, record });
  const back = readDeviceHeader(d).record!;
  assert.deepEqual({ ...back, release: '' }, { ...record, release: '' });
  assert.ok(Buffer.byteLength(back.release) <= 64 && record.release.startsWith(back.release));
  assert.equal(back.release.length, 34, 'svc@ and 30 two-byte characters');
  // A version 1 writer's header: header_size ends at the map, so no record is read.
  corrupt(d, (v) => {
    v.setUint32(abi.HDR_VERSION, 1, true);
    v.setUint32(abi.HDR_HEADER_SIZE, abi.HDR_MAP + 2 * abi.MAP_ENTRY_SIZE, true);
  });
  assert.deepEqual(readDeviceHeader(d).record, {
    kexecCount: 0,
    release: '',
    trial: null,
    last: null,
  });
});
