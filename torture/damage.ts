/**
 * Faults in a region's bytes: bit flips, a zeroed run, or a torn tail (the
 * region truncated: everything past a cut reads as zeros, as after a short
 * write). Positions favour the first 64 bytes of a range, where the fields
 * that matter most (magics, counts, pointers) sit, then its first 512 (the
 * first entries of a link page, the first words of a bitmap).
 */
import type { MemoryDevice } from '../src/memory/device.js';
import type { Region } from './regions.js';
import type { Rng } from './rng.js';

export type DamageKind = 'flip' | 'zero' | 'truncate';
export const DAMAGE_KINDS: readonly DamageKind[] = ['flip', 'zero', 'truncate'];

/** Applies one fault to `region` on `device`; returns what it did, in words. */
export function damage(device: MemoryDevice, region: Region, rng: Rng): string {
  const range = rng.pick(region.ranges);
  // Fields sit at the start of a structure; entries (link pages, bitmaps) right after it.
  const offset = () => {
    const p = rng.below(10);
    return rng.below(Math.min(p < 4 ? 64 : p < 7 ? 512 : range.size, range.size));
  };
  const kind = rng.pick(DAMAGE_KINDS);
  const where = `${region.name} [0x${range.at.toString(16)}, +${range.size})`;
  const bytes = device.bytes(range.at, range.size);
  switch (kind) {
    case 'flip': {
      const flips: string[] = [];
      for (let n = rng.int(1, 3); n > 0; n--) {
        const at = offset();
        const bit = rng.below(8);
        bytes[at] ^= 1 << bit;
        flips.push(`+${at}.${bit}`);
      }
      return `${where}: bits flipped at ${flips.join(' ')}`;
    }
    case 'zero': {
      const at = offset();
      const len = Math.min(
        range.size - at,
        rng.chance(0.7) ? rng.int(1, 8) : rng.int(1, range.size),
      );
      bytes.fill(0, at, at + len);
      return `${where}: ${len} bytes zeroed at +${at}`;
    }
    case 'truncate': {
      const at = rng.below(range.size);
      bytes.fill(0, at);
      return `${where}: truncated at +${at}`;
    }
  }
}
