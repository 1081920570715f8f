/**
 * The persistent memory pool: the CMA-style bitmap allocator, the pools a
 * kernel brings up from `pmpool=`, and their status. The pool's on-device
 * layout (src/pmpool/abi.ts) is not exported: CmaPool reads and checks it.
 * @module livekexec/pmpool
 */
export type { PfnRange } from '../base/range.js';
export {
  type AttachOptions,
  type CheckReport,
  CmaPool,
  type PendingIntent,
  type PoolFormatOptions,
  type PoolOptions,
  type PoolStats,
} from './cma.js';
export { PmpoolError, type PmpoolErrorCode } from './errors.js';
export type { PmpoolRange } from './pool-early.js';
export { Pmpool, Pmpools } from './pools.js';
export {
  type InspectedPool,
  inspectPools,
  type PmpoolOrigin,
  type PmpoolStatus,
  type PmpoolsStatus,
} from './status.js';
