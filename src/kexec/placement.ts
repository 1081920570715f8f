import { PAGE_SIZE } from '../memory/device.js';

/** A physical range [base, base + size). */
export interface PhysRange {
  readonly base: number;
  readonly size: number;
}

/**
 * kexec_locate_mem_hole(): the highest `align`-aligned address at which
 * `size` bytes fit entirely inside one of the `free` ranges and inside one of
 * the `windows` (all memory when absent). Ranges may come in any order;
 * adjacent ones are joined first, so a hole may span two free blocks.
 * @returns the address, or null when nothing fits.
 */
export function locateMemHole(
  free: Iterable<PhysRange>,
  size: number,
  align: number,
  windows?: readonly PhysRange[],
): number | null {
  const runs = joinAdjacent(free);
  const clips = windows ? joinAdjacent(windows) : [{ base: 0, size: Number.MAX_SAFE_INTEGER }];
  let best: number | null = null;
  for (const r of runs) {
    for (const w of clips) {
      const s = Math.max(r.base, w.base);
      const e = Math.min(r.base + r.size, w.base + w.size);
      if (e - s < size) continue;
      const cand = Math.floor((e - size) / align) * align;
      if (cand >= s && (best === null || cand > best)) best = cand;
    }
  }
  return best;
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
