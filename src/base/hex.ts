/**
 * Addresses and values in messages and listings, as the kernel prints them:
 * the one hex helper every layer uses.
 */

/** `0x` and the hex digits of `n`, zero-padded to `digits` (16 for a physical address in a listing). */
export function hex(n: number | bigint, digits = 0): string {
  return `0x${n.toString(16).padStart(digits, '0')}`;
}
