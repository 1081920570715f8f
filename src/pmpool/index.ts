/** The persistent memory pool: the allocator, its early and late boot, status. */
export * from './abi.js';
export {
  type AttachOptions,
  type CheckReport,
  CmaPool,
  type FormatOptions,
  type PageRange,
  type PendingIntent,
  type PoolOptions,
  type PoolStats,
} from './cma.js';
export { PmpoolError, type PmpoolErrorCode } from './errors.js';
export { type PmpoolEarly, type PmpoolRange, pmpoolEarly } from './pool-early.js';
export {
  type BringUpPlan,
  fdtNodeName,
  Pmpool,
  type PmpoolNode,
  Pmpools,
  type PmpoolsDeps,
  planBringUp,
} from './pools.js';
export {
  formatInspectedPools,
  formatPmpoolsStatus,
  type InspectedPool,
  inspectPoolAt,
  inspectPools,
  type PmpoolOrigin,
  type PmpoolStatus,
  type PmpoolsStatus,
} from './status.js';
