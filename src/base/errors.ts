/**
 * The base of every error livekexec throws on purpose. Each layer has its
 * own class (FdtError, DeviceError, BootError, PageAllocError, KhoError,
 * PmpoolError, PkramError, LuoError, KexecError); all of them extend this
 * one, so `err instanceof LivekexecError` tells livekexec's refusals from
 * anything else, and they read like Node's own system errors:
 *
 *   KhoError: EINVAL: pfn 0x12 is not aligned to order 3
 *
 * `code` is an errno name (the FDT layer keeps libfdt's names, spelled
 * `FDT_ERR_<NAME>` in the message as libfdt and the dtc tools print them).
 * A cause is wrapped, never replaced: it stays reachable as `err.cause`.
 */
export class LivekexecError<Code extends string = string> extends Error {
  override name = 'LivekexecError';
  /** Why, as an errno name (libfdt's name for FdtError). */
  readonly code: Code;

  /**
   * @param code the cause, an errno name.
   * @param detail what was attempted and what was found; the message is `CODE: detail`.
   * @param options `cause`: the error this one wraps.
   */
  constructor(code: Code, detail: string, options?: { cause?: unknown }) {
    super(`${(new.target as typeof LivekexecError).label(code)}: ${detail}`, options);
    this.code = code;
  }

  /** How a code is spelled at the start of a message; a subclass may prefix it. */
  static label(code: string): string {
    return code;
  }
}

/** The message of anything thrown, for wrapping it in a typed error. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
