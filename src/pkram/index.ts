/** PKRAM: named nodes of folios and bytes preserved over kexec. */
export * from './abi.js';
export { PkramError, type PkramErrorCode, type PkramStaleReason } from './errors.js';
export { checkHandover, type HandoverCheck, preservedRanges, readRegionList } from './handover.js';
export { type NodeState, PkramNode } from './node.js';
export { type Folio, type LoadedFolio, PkramObject } from './object.js';
export {
  type AvoidRange,
  Pkram,
  type PkramAttachOptions,
  type PkramNodeInfo,
  type PkramObjectInfo,
  type PkramOptions,
  type PkramPageSource,
  type RelocateResult,
} from './pkram.js';
export type { PkramExpect } from './super.js';
