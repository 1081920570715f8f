/**
 * PKRAM: named nodes of folios and bytes preserved over kexec. Its on-device
 * layout (src/pkram/abi.ts) is not exported: Pkram.attach reads and checks it.
 * @module livekexec/pkram
 */
export { PKRAM_NAME_MAX } from './abi.js';
export { PkramError, type PkramErrorCode, type PkramStaleReason } from './errors.js';
export type { PkramVia } from './kernel-early.js';
export type { KernelPkram, KernelPkramStatus } from './kernel-pkram.js';
export { type NodeState, PkramNode } from './node.js';
export { type LoadedFolio, PkramObject } from './object.js';
export {
  Pkram,
  type PkramAttachOptions,
  type PkramNodeInfo,
  type PkramObjectInfo,
  type PkramOptions,
  type PkramPageSource,
  type RelocateResult,
} from './pkram.js';
export type { PkramExpect } from './super.js';
