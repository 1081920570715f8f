/**
 * Seeded randomness for the fault suite: every case is a pure function of
 * (run seed, family, case number), so one printed command reproduces it.
 */

/** A 32-bit hash of integers and strings (FNV-1a over their text, then a final mix). */
export function hash32(...parts: (number | string)[]): number {
  let h = 0x811c9dc5;
  for (const c of parts.join('/')) {
    h ^= c.charCodeAt(0);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

/** mulberry32: small, fast, and good enough to choose faults. */
export class Rng {
  #s: number;

  constructor(seed: number) {
    this.#s = seed >>> 0;
  }

  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    this.#s = (this.#s + 0x6d2b79f5) >>> 0;
    let t = this.#s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return n <= 1 ? 0 : Math.floor((this.u32() / 2 ** 32) * n);
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + this.below(max - min + 1);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)];
  }

  chance(p: number): boolean {
    return this.u32() / 2 ** 32 < p;
  }
}

/**
 * The bytes a preserved range is filled with: a function of its seed and
 * each byte's offset, so a check needs only the seed, never a copy.
 */
export function fillPattern(bytes: Uint8Array, seed: number): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const words = bytes.length >>> 2;
  for (let i = 0; i < words; i++) view.setUint32(i * 4, patternWord(seed, i), true);
  for (let i = words * 4; i < bytes.length; i++) bytes[i] = patternWord(seed, i >>> 2) & 0xff;
}

/** The offset of the first byte that is not the pattern, or -1 when all are. */
export function patternMismatch(bytes: Uint8Array, seed: number): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const words = bytes.length >>> 2;
  for (let i = 0; i < words; i++) {
    if (view.getUint32(i * 4, true) !== patternWord(seed, i)) return i * 4;
  }
  for (let i = words * 4; i < bytes.length; i++) {
    if (bytes[i] !== (patternWord(seed, i >>> 2) & 0xff)) return i;
  }
  return -1;
}

function patternWord(seed: number, i: number): number {
  let x = (Math.imul(i, 0x9e3779b1) ^ seed) >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  return x >>> 0;
}
