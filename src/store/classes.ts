/**
 * Size classes of records in slabs: 16-byte steps up to 256 bytes, then
 * eight per doubling up to SMALL_MAX, so a record wastes at most 1/8 of its
 * size (a 16-byte key and a 1 KiB value, 1056 bytes, take 1152). Records
 * above SMALL_MAX get a page span of their own.
 */
import { SLAB_BYTES, SLAB_HEADER } from './abi.js';

export const SMALL_MAX = 8192;

function build(): number[] {
  const out: number[] = [];
  for (let s = 32; s <= 256; s += 16) out.push(s);
  for (let base = 256; base < SMALL_MAX; base *= 2) {
    for (let k = 1; k <= 8; k++) out.push(base + (base / 8) * k);
  }
  return out;
}

/** Object size of each class. */
export const CLASS_SIZES: readonly number[] = build();
export const CLASS_COUNT = CLASS_SIZES.length;
/** Objects in one slab of each class. */
export const CLASS_CAPACITY: readonly number[] = CLASS_SIZES.map((s) =>
  Math.floor((SLAB_BYTES - SLAB_HEADER) / s),
);

/** Class index by ceil(size / 16), for sizes up to SMALL_MAX. */
const BY_UNITS = new Uint8Array(SMALL_MAX / 16 + 1);
{
  let c = 0;
  for (let u = 0; u <= SMALL_MAX / 16; u++) {
    while (CLASS_SIZES[c] < u * 16) c++;
    BY_UNITS[u] = c;
  }
}

/** The class of a record of `size` bytes, or -1 when it needs a page span. */
export function classOf(size: number): number {
  return size > SMALL_MAX ? -1 : BY_UNITS[(size + 15) >>> 4];
}
