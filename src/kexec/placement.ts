import type { PhysRange } from '../base/range.js';
import { PAGE_SIZE } from '../memory/device.js';

/**
 * kexec_locate_mem_hole(): the highest `align`-aligned address at which
 * `size` bytes fit entirely inside the `free` ranges. Ranges may come in any
 * order; adjacent ones are joined first, so a hole may span two free blocks.
 * @returns the address, or null when nothing fits.
 */
export function locateMemHole(
  free: Iterable<PhysRange>,
  size: number,
  align: number,
): number | null {
  const runs = joinAdjacent(free);
  for (let i = runs.length - 1; i >= 0; i--) {
    const r = runs[i];
    if (r.size < size) continue;
    const cand = Math.floor((r.base + r.size - size) / align) * align;
    if (cand >= r.base) return cand;
  }
  return null;
}

function joinAdjacent(ranges: Iterable<PhysRange>): PhysRange[] {
  const sorted = [...ranges].filter((r) => r.size > 0).sort((a, b) => a.base - b.base);
  const out: { base: number; size: number }[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.base <= last.base + last.size) {
      last.size = Math.max(last.size, r.base + r.size - last.base);
    } else {
      out.push({ base: r.base, size: r.size });
    }
  }
  return out;
}

/** Page-granular size of `bytes`. */
export function pagesFor(bytes: number): number {
  return Math.ceil(bytes / PAGE_SIZE);
}
