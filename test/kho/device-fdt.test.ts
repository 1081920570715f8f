import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FdtError } from '../../src/fdt/errors.js';
import { FdtWriter } from '../../src/fdt/write.js';
import { readFdtAt } from '../../src/kho/device-fdt.js';
import { HeapDevice } from '../../src/memory/heap.js';

function blob(): Uint8Array {
  const w = new FdtWriter();
  w.finishReservations();
  w.beginNode('');
  w.propertyString('compatible', 'test-v1');
  w.endNode();
  return w.finish();
}

const fdtErr = (code: string) => (e: unknown) => e instanceof FdtError && e.code === code;

test('readFdtAt reads the blob its header sizes, over a copy, validated', () => {
  const device = new HeapDevice(16 * 4096);
  const b = blob();
  device.bytes(0x3000, b.length).set(b);
  const fdt = readFdtAt(device, 0x3000, 4096);
  assert.equal(fdt.totalSize, b.length);
  assert.equal(fdt.getString(0, 'compatible'), 'test-v1');
  device.bytes(0x3000, 4).fill(0);
  assert.equal(
    fdt.getString(0, 'compatible'),
    'test-v1',
    'a copy: later writes to the device do not reach it',
  );
});

test('readFdtAt: a blob larger than the room it may have, past the device, or not a blob is FdtError', () => {
  const device = new HeapDevice(4 * 4096);
  const b = blob();
  device.bytes(0x1000, b.length).set(b);
  assert.throws(() => readFdtAt(device, 0x1000, b.length - 1), fdtErr('TRUNCATED'));
  device.bytes(device.size - 16, 16).set(b.subarray(0, 16));
  assert.throws(() => readFdtAt(device, device.size - 16, 4096), fdtErr('TRUNCATED'));
  assert.throws(() => readFdtAt(device, 0x2000, 4096), fdtErr('TRUNCATED'), 'zeros: totalsize 0');
  device.bytes(0x2000, b.length).set(b);
  device.bytes(0x2000, 1)[0] ^= 0xff;
  assert.throws(() => readFdtAt(device, 0x2000, 4096), fdtErr('BADMAGIC'));
  assert.throws(() => readFdtAt(device, device.size - 4, 4096), fdtErr('TRUNCATED'));
});
