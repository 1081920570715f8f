/**
 * The two ranges every layer speaks of: bytes of physical memory, and page
 * frames. One spelling each, so a range passes from one subsystem to another
 * as it is.
 */

/** A physical byte range [base, base + size). */
export interface PhysRange {
  readonly base: number;
  readonly size: number;
}

/** A run of page frames [pfn, pfn + count). */
export interface PfnRange {
  readonly pfn: number;
  readonly count: number;
}
