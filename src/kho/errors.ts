import { LivekexecError, show } from '../base/errors.js';

/**
 * The one error type of the KHO layer. `code` is the errno the kernel's KHO
 * returns for the same cause, so messages read like the kernel's.
 */
export type KhoErrorCode =
  /** Preservation is frozen: the handover was finalized (abort first). */
  | 'EBUSY'
  /** A bad argument: unaligned pfn, order out of range, memory inside scratch. */
  | 'EINVAL'
  /** Nothing there: block not preserved, subtree unknown, abort without finalize. */
  | 'ENOENT'
  /** Already there: block already preserved, subtree name taken, finalize twice. */
  | 'EEXIST'
  /** No page could be had for the tracker's own metadata. */
  | 'ENOMEM'
  /** Bad handover data: a corrupt radix tree, bitmap, magic or FDT from the predecessor. */
  | 'EFAULT'
  /** The handover uses an ABI (root compatible) this build does not know. */
  | 'EPROTO'
  /** KHO is off (`kho=off`) or this is a crash kernel. */
  | 'EOPNOTSUPP';

const DESCRIPTIONS: Record<KhoErrorCode, string> = {
  EBUSY: 'KHO is finalized; abort before changing preserved memory',
  EINVAL: 'invalid argument',
  ENOENT: 'not found',
  EEXIST: 'already exists',
  ENOMEM: 'out of memory for KHO metadata',
  EFAULT: 'corrupt handover data',
  EPROTO: 'unknown KHO ABI',
  EOPNOTSUPP: 'kexec handover is disabled',
};

/** Whether `code` is one of KhoError's codes. */
export function isKhoErrorCode(code: string): code is KhoErrorCode {
  return Object.hasOwn(DESCRIPTIONS, code);
}

/** Raised by every KHO function for every expected failure; nothing else escapes on bad input. */
export class KhoError extends LivekexecError<KhoErrorCode> {
  override name = 'KhoError';

  constructor(code: KhoErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(
      code,
      detail ??
        (typeof code === 'string' && Object.hasOwn(DESCRIPTIONS, code)
          ? DESCRIPTIONS[code]
          : 'error'),
      options,
    );
  }

  /** A short description of a code. */
  static describe(code: KhoErrorCode): string {
    return typeof code === 'string' && Object.hasOwn(DESCRIPTIONS, code)
      ? DESCRIPTIONS[code]
      : `unknown error ${show(code)}`;
  }
}
