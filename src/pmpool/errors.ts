import { LivekexecError } from '../base/errors.js';

/**
 * The one error type of the persistent memory pool. `code` is an errno name,
 * so the kernel side can tell "rebuild the pool, keeping what may be held"
 * (ENODEV, EPROTO, EFAULT), "reinitialise it" (ESTALE: its base or size
 * changed) and a caller's mistake (EINVAL).
 */
export type PmpoolErrorCode =
  /** A bad argument: a count, order or alignment that is not one, an unaligned range. */
  | 'EINVAL'
  /** The range is too small to hold the pool's own header and bitmap plus one data page. */
  | 'ENOMEM'
  /** The pool's metadata is corrupt: header crc, a bitmap chunk's check word, metadata bits, intent record. */
  | 'EFAULT'
  /** No pool at this address: the header magic is absent (never formatted, or wiped). */
  | 'ENODEV'
  /** The header names a layout version this build does not know. */
  | 'EPROTO'
  /** A valid pool, but made for another base or size than the one configured now. */
  | 'ESTALE';

export class PmpoolError extends LivekexecError<PmpoolErrorCode> {
  override name = 'PmpoolError';
}
