import { BootError } from './errors.js';

/** Suffix shifts, as the kernel's memparse() applies them (case-insensitive). */
const SHIFTS: Record<string, bigint> = { k: 10n, m: 20n, g: 30n, t: 40n, p: 50n, e: 60n };

export interface MemparseResult {
  /** The parsed size or address in bytes. */
  value: number;
  /** What follows the number and its suffix (`memparse('64M@1G')` leaves `'@1G'`). */
  rest: string;
}

/**
 * Parses a size or address as the kernel's memparse() does: a number in base
 * 16 (`0x`), 8 (leading `0`) or 10, then an optional K, M, G, T, P or E suffix.
 * Parsing stops at the first character that does not belong, which is
 * returned in `rest`.
 *
 * @throws BootError EINVAL when there is no number, or the value is not exact
 *   as a JS number (above 2^53 - 1); `param` names the parameter in the message.
 */
export function memparse(text: string, param?: string): MemparseResult {
  const m = /^(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)([kKmMgGtTpPeE]?)/.exec(text);
  if (!m) throw new BootError('EINVAL', `expected a size or address, got '${text}'`, param);
  const digits = m[1];
  let value: bigint;
  if (/^0[xX]/.test(digits)) value = BigInt(digits);
  else if (digits.length > 1 && digits[0] === '0') value = BigInt(`0o${digits.slice(1)}`);
  else value = BigInt(digits);
  const suffix = m[2].toLowerCase();
  if (suffix) value <<= SHIFTS[suffix];
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new BootError('EINVAL', `'${m[0]}' is too large (limit 2^53 - 1 bytes)`, param);
  }
  return { value: Number(value), rest: text.slice(m[0].length) };
}

/** memparse() of a whole value: anything left over is an error. */
export function memparseExact(text: string, param?: string): number {
  const { value, rest } = memparse(text, param);
  if (rest !== '')
    throw new BootError(
      'EINVAL',
      `unexpected '${rest}' after '${text.slice(0, text.length - rest.length)}'`,
      param,
    );
  return value;
}
