/**
 * The memory layer: memory devices (a mapped file, an ArrayBuffer), the
 * device header and the memory map. The header's on-device layout
 * (src/memory/abi.ts) is not exported: `livekexec device info|check` read it.
 * @module livekexec/memory
 */

export type { DeviceShrink } from './_truncation.js';
export { crc32c } from './crc32c.js';
export { type MemoryDevice, PAGE_SHIFT, PAGE_SIZE } from './device.js';
export { DeviceError, type DeviceErrorCode, GeneralProtectionFault } from './errors.js';
export {
  type DeviceHeader,
  type FormatOptions,
  formatDevice,
  readDeviceHeader,
} from './header.js';
export { type GuardedRange, HeapDevice } from './heap.js';
export { type DevicePeek, MappedDevice, type MappedOpenOptions } from './mapped.js';
export { MemoryMap } from './memmap.js';
export { E820, type E820Type, e820TypeName, type MemoryRange } from './memmap-types.js';
