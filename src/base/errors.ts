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
    const label =
      typeof code === 'string' ? (new.target as typeof LivekexecError).label(code) : show(code);
    super(`${label}: ${text(detail)}`, options);
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

/**
 * A value as an error message shows it, whatever it is: a template literal
 * throws for an object without a prototype or with a broken toString, and a
 * refusal must never turn into a TypeError of its own.
 */
export function show(v: unknown): string {
  try {
    switch (typeof v) {
      case 'number':
      case 'boolean':
      case 'undefined':
        return String(v);
      case 'bigint':
        return `${v}n`;
      case 'string':
        return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}...` : v);
      case 'symbol':
        return v.toString();
      case 'function':
        return 'a function';
      default:
        if (v === null) return 'null';
        if (Array.isArray(v)) return `an array of ${v.length}`;
        return `an object (${Object.prototype.toString.call(v).slice(8, -1)})`;
    }
  } catch {
    return 'an unprintable value';
  }
}

/** A string as it is, anything else as show() prints it: for text that should be a string. */
export function text(v: unknown): string {
  return typeof v === 'string' ? v : show(v);
}
