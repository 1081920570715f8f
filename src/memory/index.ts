/** The memory layer: devices, the device header, the memory map. */
export {
  DEVICE_FORMAT_VERSION,
  DEVICE_LAST_COMPAT_VERSION,
  DEVICE_MAGIC,
  DEVICE_MAP_MAX,
} from './abi.js';
export { crc32c } from './crc32c.js';
export {
  checkDeviceViews,
  isPageAligned,
  type MemoryDevice,
  PAGE_SHIFT,
  PAGE_SIZE,
  pageAlignDown,
  pageAlignUp,
  pfnToPhys,
  physToPfn,
} from './device.js';
export { DeviceError, type DeviceErrorCode, GeneralProtectionFault } from './errors.js';
export {
  type DeviceHeader,
  decodeDeviceHeader,
  encodeDeviceHeader,
  type FormatOptions,
  formatDevice,
  readDeviceHeader,
  writeDeviceHeader,
} from './header.js';
export { describeSize, type GuardedRange, HeapDevice } from './heap.js';
export { type DevicePeek, flockOwner, MappedDevice, type MappedOpenOptions } from './mapped.js';
export { MemoryMap } from './memmap.js';
export {
  E820,
  type E820Type,
  e820TypeName,
  isUsableType,
  type MemoryRange,
} from './memmap-types.js';
