/**
 * Numbers in hex, as the kernel prints them: the one hex helper every layer
 * uses, for messages and listings (`hex`) and for names, unit addresses and
 * encodings that have no prefix (`hexDigits`).
 */

/** The hex digits of `n`, zero-padded to `digits`, no prefix: `region@1f000`, `%2f`, `0000c0de`. */
export function hexDigits(n: number | bigint, digits = 0): string {
  return n.toString(16).padStart(digits, '0');
}

/** `0x` and the hex digits of `n`, zero-padded to `digits` (16 for a physical address in a listing). */
export function hex(n: number | bigint, digits = 0): string {
  return `0x${hexDigits(n, digits)}`;
}
