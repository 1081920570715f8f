/**
 * Kexec HandOver: preserve folios, page lists and named subtrees for the
 * next generation, and restore them in it. The handover's on-device format
 * (Linux's KHO ABI: the root FDT's properties, the preserved-memory radix
 * tree, page lists, blobs) is under `livekexec/kho/abi`.
 * @module livekexec/kho
 */
export type { KhoBlob } from './blob.js';
export {
  type CompatReport,
  checkHandover,
  knownCompatibles,
  registerCompatible,
  type SuccessorConfig,
} from './compat.js';
export { KhoError, type KhoErrorCode } from './errors.js';
export { Kho, type KhoNotifier, type SubtreeOptions } from './kho.js';
export type { PageListEntries } from './page-list.js';
export { PageListView } from './page-list-view.js';
export type { ReserveMemRegion } from './reserve-mem.js';
export type { ScratchArea } from './scratch.js';
export {
  type DeviceHandoverStatus,
  inspectDeviceHandover,
  type KhoInStatus,
  type KhoOutStatus,
  type KhoStatus,
  type SubtreeStatus,
} from './status.js';
