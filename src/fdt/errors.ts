import { LivekexecError, show, text } from '../base/errors.js';

/**
 * The one error type of the FDT layer. `code` carries libfdt's name for the
 * cause (libfdt returns the same numbers negated), so a message can be matched
 * against what `fdt_strerror()` and the dtc tools say.
 */

/** libfdt's error numbers, grouped by cause as in libfdt.h. */
export const FDT_ERR = {
  // Lookup results that a caller may expect.
  NOTFOUND: 1,
  EXISTS: 2,
  NOSPACE: 3,
  // Bad arguments from the caller.
  BADOFFSET: 4,
  BADPATH: 5,
  BADPHANDLE: 6,
  BADSTATE: 7,
  // Bad blob.
  TRUNCATED: 8,
  BADMAGIC: 9,
  BADVERSION: 10,
  BADSTRUCTURE: 11,
  BADLAYOUT: 12,
  // Should never happen.
  INTERNAL: 13,
  // Bad values in the tree.
  BADNCELLS: 14,
  BADVALUE: 15,
  BADOVERLAY: 16,
  NOPHANDLES: 17,
  BADFLAGS: 18,
  ALIGNMENT: 19,
} as const;

export type FdtErrorCode = keyof typeof FDT_ERR;

const DESCRIPTIONS: Record<FdtErrorCode, string> = {
  NOTFOUND: 'node or property not found',
  EXISTS: 'node or property already exists',
  NOSPACE: 'not enough space in the buffer',
  BADOFFSET: 'offset does not point to the expected tag',
  BADPATH: 'badly formatted path',
  BADPHANDLE: 'invalid phandle',
  BADSTATE: 'call not allowed in the current state',
  TRUNCATED: 'blob is truncated or a name is unterminated',
  BADMAGIC: 'not a flattened device tree (bad magic)',
  BADVERSION: 'unsupported version',
  BADSTRUCTURE: 'malformed structure block',
  BADLAYOUT: 'blocks are not in the order this operation needs',
  INTERNAL: 'internal error',
  BADNCELLS: 'bad #address-cells or #size-cells',
  BADVALUE: 'unexpected property value',
  BADOVERLAY: 'bad overlay',
  NOPHANDLES: 'no phandles left',
  BADFLAGS: 'bad flags',
  ALIGNMENT: 'blob is not properly aligned',
};

/** Raised by every FDT function; nothing else escapes the codec on any input. */
export class FdtError extends LivekexecError<FdtErrorCode> {
  override name = 'FdtError';
  /** libfdt's error number (positive). */
  readonly errno: number;

  constructor(code: FdtErrorCode, detail?: string, options?: { cause?: unknown }) {
    const known = typeof code === 'string' && Object.hasOwn(FDT_ERR, code);
    super(code, detail ?? (known ? DESCRIPTIONS[code] : 'unknown error'), options);
    this.errno = known ? FDT_ERR[code] : FDT_ERR.INTERNAL;
  }

  /** libfdt's spelling, which fdtget and fdt_strerror() print. */
  static override label(code: string): string {
    return `FDT_ERR_${text(code)}`;
  }

  /** What libfdt's `fdt_strerror()` says, in short. */
  static describe(code: FdtErrorCode): string {
    return typeof code === 'string' && Object.hasOwn(DESCRIPTIONS, code)
      ? DESCRIPTIONS[code]
      : `unknown error ${show(code)}`;
  }
}
