/**
 * decodeBootBlock's steps, each alone: the frame, the version, the command
 * line, the memory map, the setup_data chain, the expected generation and
 * writer; and readBootBlockAt, which reads a block out of device memory.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  BB_CMDLINE_LEN,
  BB_CMDLINE_OFF,
  BB_FLAGS,
  BB_MEMMAP_OFF,
  BB_SETUP_DATA_OFF,
  BB_TOTAL_SIZE,
  BOOT_BLOCK_HEADER_SIZE,
  MEMMAP_ENTRY_SIZE,
  MEMMAP_RESERVED,
  MEMMAP_SIZE,
  SETUP,
  SETUP_DATA_NEXT,
  SETUP_DATA_TYPE,
} from '../../src/boot/abi.js';
import {
  checkExpected,
  checkFrame,
  checkVersion,
  encodeBootBlock,
  readBootBlockAt,
  readCmdline,
  readMemoryMap,
  readSetupData,
} from '../../src/boot/bootblock.js';
import { BootError } from '../../src/boot/errors.js';
import { HeapDevice } from '../../src/memory/heap.js';
import { E820 } from '../../src/memory/memmap-types.js';

const id = (seed: number) => new Uint8Array(16).fill(seed);

function block(): Uint8Array {
  return encodeBootBlock({
    generation: 3,
    bootId: id(2),
    predecessorBootId: id(1),
    cmdline: 'kho=on',
    memoryMap: [
      { addr: 0, size: 0x1000, type: E820.RESERVED },
      { addr: 0x1000, size: 0x3000, type: E820.USABLE },
    ],
    setupData: [
      { type: SETUP.KHO_FDT, data: Uint8Array.from([1, 2, 3]) },
      { type: SETUP.PKRAM, data: Uint8Array.from([4]) },
    ],
  });
}

/** The frame of `bytes` after `fn` edits it, without a checksum check (the steps after the frame trust it). */
function frameOf(fn: (dv: DataView) => void = () => {}) {
  const bytes = block();
  const dv = new DataView(bytes.buffer);
  fn(dv);
  return { bytes, dv, totalSize: dv.getUint32(BB_TOTAL_SIZE, true) };
}

function efault(fn: () => unknown, pattern: RegExp): void {
  assert.throws(
    fn,
    (e: unknown) => e instanceof BootError && e.code === 'EFAULT' && pattern.test(e.message),
  );
}

test('checkFrame: the bytes hold a whole block whose checksum holds', () => {
  const bytes = block();
  assert.equal(checkFrame(bytes).totalSize, bytes.length);
  efault(() => checkFrame(bytes.subarray(0, BOOT_BLOCK_HEADER_SIZE - 1)), /truncated/);
  efault(() => checkFrame(bytes.subarray(0, bytes.length - 1)), /truncated: total size/);
  const flipped = bytes.slice();
  flipped[BOOT_BLOCK_HEADER_SIZE] ^= 1;
  efault(() => checkFrame(flipped), /checksum/);
});

test('checkVersion: flags or a longer header in a version-1 block are refused', () => {
  assert.deepEqual(checkVersion(frameOf()), {
    version: 1,
    lastCompVersion: 1,
    headerSize: BOOT_BLOCK_HEADER_SIZE,
  });
  efault(() => checkVersion(frameOf((dv) => dv.setUint32(BB_FLAGS, 1, true))), /flags/);
});

test('readCmdline: the command line stays inside the block, after the header', () => {
  assert.equal(readCmdline(frameOf(), BOOT_BLOCK_HEADER_SIZE), 'kho=on');
  efault(
    () =>
      readCmdline(
        frameOf((dv) => dv.setUint32(BB_CMDLINE_OFF, 8, true)),
        BOOT_BLOCK_HEADER_SIZE,
      ),
    /outside the block/,
  );
  efault(
    () =>
      readCmdline(
        frameOf((dv) => dv.setUint32(BB_CMDLINE_LEN, 1 << 12, true)),
        BOOT_BLOCK_HEADER_SIZE,
      ),
    /outside the block/,
  );
});

test('readMemoryMap: entries are exact, reserved fields zero, ranges apart', () => {
  assert.equal(readMemoryMap(frameOf(), BOOT_BLOCK_HEADER_SIZE).length, 2);
  const at = (dv: DataView) => dv.getUint32(BB_MEMMAP_OFF, true);
  efault(
    () =>
      readMemoryMap(
        frameOf((dv) => dv.setUint32(at(dv) + MEMMAP_RESERVED, 1, true)),
        BOOT_BLOCK_HEADER_SIZE,
      ),
    /reserved field/,
  );
  efault(
    () =>
      readMemoryMap(
        frameOf((dv) => dv.setUint32(at(dv) + MEMMAP_SIZE + 4, 1 << 21, true)),
        BOOT_BLOCK_HEADER_SIZE,
      ),
    /past 2\^53/,
  );
  efault(
    () =>
      readMemoryMap(
        frameOf((dv) => dv.setUint32(at(dv) + MEMMAP_SIZE, 0x2000, true)),
        BOOT_BLOCK_HEADER_SIZE,
      ),
    /overlaps/,
  );
  assert.equal(MEMMAP_ENTRY_SIZE, 24);
});

test('readSetupData: the chain is read in order and cannot loop', () => {
  const types = readSetupData(frameOf(), BOOT_BLOCK_HEADER_SIZE).map((s) => s.type);
  assert.deepEqual(types, [SETUP.KHO_FDT, SETUP.PKRAM]);
  const first = (dv: DataView) => dv.getUint32(BB_SETUP_DATA_OFF, true);
  efault(
    () =>
      readSetupData(
        frameOf((dv) => dv.setUint32(first(dv) + SETUP_DATA_NEXT, first(dv), true)),
        BOOT_BLOCK_HEADER_SIZE,
      ),
    /bad next/,
  );
  efault(
    () =>
      readSetupData(
        frameOf((dv) => dv.setUint32(first(dv) + SETUP_DATA_TYPE, SETUP.NONE, true)),
        BOOT_BLOCK_HEADER_SIZE,
      ),
    /type 0/,
  );
});

test('checkExpected: another generation or another writer is ESTALE; nothing expected passes', () => {
  const stale = (fn: () => void) =>
    assert.throws(fn, (e: unknown) => e instanceof BootError && e.code === 'ESTALE');
  checkExpected(3, id(1), {});
  checkExpected(3, id(1), { generation: 3, predecessorBootId: id(1) });
  stale(() => checkExpected(3, id(1), { generation: 4 }));
  stale(() => checkExpected(3, id(1), { predecessorBootId: id(9) }));
});

test('readBootBlockAt: reads the block its header sizes, from device memory; outside the device is EFAULT', () => {
  const device = new HeapDevice(64 * 1024);
  const bytes = block();
  device.bytes(0x2000, bytes.length).set(bytes);
  const bb = readBootBlockAt(device, 0x2000, { generation: 3 });
  assert.equal(bb.cmdline, 'kho=on');
  assert.equal(bb.totalSize, bytes.length);
  efault(() => readBootBlockAt(device, device.size - 8), /outside the device/);
  efault(() => readBootBlockAt(device, -1), /outside the device/);
  // A block whose end lies past the device is read as far as the device goes: truncated.
  device
    .bytes(device.size - BOOT_BLOCK_HEADER_SIZE, BOOT_BLOCK_HEADER_SIZE)
    .set(bytes.subarray(0, BOOT_BLOCK_HEADER_SIZE));
  efault(() => readBootBlockAt(device, device.size - BOOT_BLOCK_HEADER_SIZE), /truncated/);
});
