/** Kexec HandOver: `livekexec/kho`. */
export * from './abi.js';
export type { KhoBlob } from './blob.js';
export {
  type CompatReport,
  checkHandover,
  knownCompatibles,
  registerCompatible,
  type SuccessorConfig,
} from './compat.js';
export type { KhoEarly, KhoIncoming } from './early.js';
export { KhoError, type KhoErrorCode } from './errors.js';
export type { KhoIncomingState } from './incoming.js';
export { alignedBlocks, Kho, type KhoNotifier, type SubtreeOptions } from './kho.js';
export type { PageListEntries } from './page-list.js';
export { PageListView } from './page-list-view.js';
export {
  coalescedExtents,
  type KhoExtent,
  type KhoPageSource,
  KhoRadixTree,
  type KhoWalkLimits,
  type KhoWalkResult,
} from './radix.js';
export type { ReserveMemRegion } from './reserve-mem.js';
export { buildRootFdt, type KhoRoot, parseRootFdt } from './root-fdt.js';
export type { ScratchArea } from './scratch.js';
export {
  type DeviceHandoverStatus,
  inspectDeviceHandover,
  type KhoInStatus,
  type KhoOutStatus,
  type KhoStatus,
  pendingKhoSetupData,
  type SubtreeStatus,
} from './status.js';
