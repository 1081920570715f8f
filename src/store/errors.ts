/**
 * The one error type of the preserved store. `code` is an errno name; a
 * damaged store is EFAULT and its message names the page, so a bad table or
 * record is refused, never read as a value.
 */
import { LivekexecError } from '../base/errors.js';
import { hex } from '../base/hex.js';

export type StoreErrorCode =
  /** A bad argument: a key or value over the store's limits, a bad option or name. */
  | 'EINVAL'
  /** A value over the store's value limit. */
  | 'E2BIG'
  /** No memory: the device (or pool) is full and the store does not evict. */
  | 'ENOMEM'
  /** The store's memory budget is spent and it does not evict. */
  | 'ENOSPC'
  /** Damaged store memory: a bad super block, directory, table slot or record (the page is named). */
  | 'EFAULT'
  /** No such store to open. */
  | 'ENOENT'
  /** A store of that name exists already. */
  | 'EEXIST'
  /** Another generation (or handle) has the store open, or it is handed over and frozen. */
  | 'EBUSY'
  /** The store's layout version is unknown to this build. */
  | 'EPROTO'
  /** The store was not closed or handed over cleanly and is not crash-safe: it may be torn. */
  | 'EIO'
  /** The handle was closed, or its generation replaced. */
  | 'ESRCH';

export class StoreError extends LivekexecError<StoreErrorCode> {
  override name = 'StoreError';
}

/** An EFAULT naming the page at `phys` (wrapping `cause`, when a lower layer found it). */
export function damaged(phys: number, what: string, cause?: unknown): StoreError {
  const pfn = Math.floor(phys / 4096);
  return new StoreError('EFAULT', `${what} (page ${pfn}, address ${hex(phys)})`, {
    cause,
  });
}
