/**
 * u64 fields of on-device structures as JS numbers: the one reader and
 * writer every layer uses. Little-endian unless told (FDT cells are
 * big-endian). A number is exact below 2^53, which bounds every address and
 * size a device can hold; callers range-check what they read.
 */

const TWO_POW_32 = 2 ** 32;

/** The u64 at `off`; from 2^53 on it comes back inexact, but still past any device. */
export function getU64(view: DataView, off: number, littleEndian = true): number {
  const lo = view.getUint32(littleEndian ? off : off + 4, littleEndian);
  const hi = view.getUint32(littleEndian ? off + 4 : off, littleEndian);
  return hi * TWO_POW_32 + lo;
}

/** The u64 at `off`, or undefined when a number cannot hold it exactly (2^53 or more). */
export function getSafeU64(view: DataView, off: number, littleEndian = true): number | undefined {
  const v = getU64(view, off, littleEndian);
  return v <= Number.MAX_SAFE_INTEGER ? v : undefined;
}

/** Stores `value`, a non-negative integer below 2^64 (a number below 2^53, or a bigint). */
export function setU64(
  view: DataView,
  off: number,
  value: number | bigint,
  littleEndian = true,
): void {
  if (typeof value === 'bigint') {
    view.setBigUint64(off, value, littleEndian);
    return;
  }
  view.setUint32(littleEndian ? off : off + 4, value % TWO_POW_32, littleEndian);
  view.setUint32(littleEndian ? off + 4 : off, Math.floor(value / TWO_POW_32), littleEndian);
}
