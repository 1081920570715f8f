/**
 * Memory hotplug, after the kernel's: a device can grow between generations
 * (its file extended, never shrunk), and the range added comes online as
 * usable memory. Everything kept stays where it is: only the header's size
 * and map change, so a successor (or a cold boot) finds the old memory at
 * the same addresses and the new memory free.
 */

import { fstatSync } from 'node:fs';
import { getU64 } from '../base/u64.js';
import { errnoName, getLibc } from '../sys/libc.js';
import { DEVICE_MAGIC, HDR_DEVICE_SIZE, HDR_MAGIC } from './abi.js';
import { type MemoryDevice, PAGE_SIZE, type PhysRange } from './device.js';
import { DeviceError } from './errors.js';
import { decodeDeviceHeader, writeDeviceHeader } from './header.js';
import { MemoryMap } from './memmap.js';
import { E820 } from './memmap-types.js';

/**
 * Extends the device file open at `fd` to `size` bytes, allocated (so no
 * access can SIGBUS), when it is smaller; a larger file is left as it is.
 * @returns the bytes added (0 when none).
 * @throws DeviceError EINVAL for a size that is not whole pages; ENOSPC (or
 *   another errno) when the file system cannot hold it.
 */
export function growDeviceFile(fd: number, path: string, size: number): number {
  if (!Number.isSafeInteger(size) || size <= 0 || size % PAGE_SIZE !== 0) {
    throw new DeviceError('EINVAL', `${path}: a device grows to whole pages, not ${size} bytes`);
  }
  const now = fstatSync(fd).size;
  if (now >= size) return 0;
  const rc = getLibc().posixFallocate(fd, now, size - now);
  if (rc !== 0) {
    const name = errnoName(rc);
    throw new DeviceError(
      name === 'ENOSPC' ? 'ENOSPC' : 'EIO',
      `${path}: growing to ${size} bytes: ${name}`,
    );
  }
  return size - now;
}

/**
 * Brings a grown device's new memory online: when the device is larger
 * than its header records, the header is rewritten with the device's size
 * and the range added as usable memory.
 * @returns the range added, or null when the device did not grow.
 * @throws DeviceError ENODEV when page 0 holds no valid header at the size it
 *   records; EINVAL when the device is smaller than that (devices never shrink).
 */
export function hotplugMemory(device: MemoryDevice): PhysRange | null {
  const page0 = device.bytes(0, Math.min(device.size, PAGE_SIZE));
  if (page0.length < HDR_DEVICE_SIZE + 8) return null;
  const v = new DataView(page0.buffer, page0.byteOffset, page0.length);
  const recorded = getU64(v, HDR_DEVICE_SIZE);
  // Not a header, or not grown: readDeviceHeader says what is wrong, if anything.
  if (v.getUint32(HDR_MAGIC, true) !== DEVICE_MAGIC || recorded === device.size) return null;
  const header = decodeDeviceHeader(page0.slice(), recorded, device.name);
  if (recorded > device.size) {
    throw new DeviceError(
      'EINVAL',
      `${device.name} is ${device.size} bytes, its header says ${recorded}: a device never shrinks`,
    );
  }
  const added = { base: recorded, size: device.size - recorded };
  const map = MemoryMap.from(header.memmap);
  map.add(added.base, added.size, E820.USABLE);
  writeDeviceHeader(device, { ...header, size: device.size, memmap: map.entries() });
  return added;
}
