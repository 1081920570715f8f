import { LivekexecError } from '../base/errors.js';

/**
 * The one error type of PKRAM. `code` is the errno the RFC's pkram_* calls
 * return for the same cause; `reason` names which check refused a super block
 * or metadata, so callers and tests can tell stale from corrupt without
 * matching message text.
 */
export type PkramErrorCode =
  /** PKRAM is off (crash kernel, not configured), or no super block at the given pfn. */
  | 'ENODEV'
  /** A node name longer than PKRAM_NAME_MAX bytes of UTF-8. */
  | 'ENAMETOOLONG'
  /** No page could be had for metadata, data or a relocated copy. */
  | 'ENOMEM'
  /** A node of that name is already saved or being saved; a page another owner (KHO, a pool) preserves. */
  | 'EEXIST'
  /** No saved node of that name. */
  | 'ENOENT'
  /** A bad argument or a call in the wrong state; a stale super block (generation, boot id, already loaded). */
  | 'EINVAL'
  /** Corrupt metadata: bad checksum, a pointer out of range or unaligned, a count out of bounds, a cycle. */
  | 'EFAULT';

/** Which check refused a super block or handed-over metadata. */
export type PkramStaleReason =
  | 'magic'
  | 'version'
  | 'crc'
  | 'generation'
  | 'boot-id'
  | 'consumed'
  | 'table'
  | 'metadata';

export class PkramError extends LivekexecError<PkramErrorCode> {
  override name = 'PkramError';

  /**
   * @param code the cause.
   * @param detail what was found and what was expected.
   * @param reason for refused handovers, the check that failed.
   */
  constructor(
    code: PkramErrorCode,
    detail: string,
    readonly reason?: PkramStaleReason,
    options?: { cause?: unknown },
  ) {
    super(code, detail, options);
  }
}
