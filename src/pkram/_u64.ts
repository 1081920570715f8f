/** Little-endian u64 fields as JS numbers (exact below 2^53; callers range-check). */

const TWO_POW_32 = 2 ** 32;

/** The u64 at `off`; values past 2^53 come back inexact but still past any device. */
export function getU64(view: DataView, off: number): number {
  return view.getUint32(off + 4, true) * TWO_POW_32 + view.getUint32(off, true);
}

/** Stores a non-negative integer below 2^53. */
export function setU64(view: DataView, off: number, value: number): void {
  view.setUint32(off, value % TWO_POW_32, true);
  view.setUint32(off + 4, Math.floor(value / TWO_POW_32), true);
}
