import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mapWhole } from '../../src/kexec/process-platform.js';
import type { MappedDevice } from '../../src/memory/mapped.js';

const GiB = 2 ** 30;

/** A device that records what is accessed (MappedDevice maps a window on the first access in it). */
function recorder(size: number): { device: MappedDevice; touched: [number, number][] } {
  const touched: [number, number][] = [];
  const device = {
    size,
    bytes(phys: number, length: number) {
      touched.push([phys, length]);
      return new Uint8Array(length);
    },
  } as unknown as MappedDevice;
  return { device, touched };
}

test('mapWhole touches a page in every GiB of the device, up to its last page', () => {
  const big = recorder(5 * GiB + 4096);
  mapWhole(big.device);
  assert.deepEqual(big.touched, [
    [0, 4096],
    [GiB, 4096],
    [2 * GiB, 4096],
    [3 * GiB, 4096],
    [4 * GiB, 4096],
    [5 * GiB, 4096],
  ]);
  const small = recorder(1 << 20);
  mapWhole(small.device);
  assert.deepEqual(small.touched, [[0, 4096]]);
});
