/**
 * KHO scratch given back to the page allocator, as the kernel does after
 * boot (kho_release_scratch() makes scratch pageblocks MIGRATE_CMA, so that
 * only movable allocations use them). Here nothing migrates, so scratch
 * serves only allocations that are never preserved ("transient"), and a
 * window at its top stays for kexec segments: the next boot block goes
 * there, or into any free scratch a kexec load claims.
 *
 * One buddy allocator per scratch area, over the pfns from the area's start
 * rounded down to MAX_PAGE_ORDER (so its blocks are naturally aligned in the
 * device too), with only the area itself free. The kernel's main allocator
 * never sees scratch: its pages stay reserved there.
 */
import type { PhysRange } from '../memory/device.js';
import { PAGE_SIZE } from '../memory/device.js';
import { BuddyAllocator, type BuddyOptions, MAX_PAGE_ORDER } from './buddy.js';
import { PageAllocError } from './errors.js';

/** One scratch area and its allocator; `first` is the pfn of the allocator's pfn 0. */
interface Zone {
  readonly first: number;
  readonly start: number;
  readonly end: number;
  readonly buddy: BuddyAllocator;
}

export interface ScratchPagesStats {
  /** Pages of every scratch area. */
  totalPages: number;
  /** Pages transient allocations may use (all but the kexec window). */
  transientPages: number;
  /** Of those, free now. */
  freePages: number;
  /** Pages held by kexec segments. */
  segmentPages: number;
}

export class ScratchPages {
  readonly #zones: Zone[] = [];
  /** The kexec window [start, end) in pfns, empty when there is no scratch. */
  readonly #window: { start: number; end: number };
  /** Segments held, in pfns [start, end). */
  #held: { start: number; end: number }[] = [];

  /**
   * @param areas the scratch areas (byte ranges, whole pages).
   * @param windowBytes kept at the top of the highest area for kexec segments
   *   (the whole of it when scratch is smaller).
   */
  constructor(areas: readonly PhysRange[], windowBytes: number, options: BuddyOptions = {}) {
    const sorted = [...areas].filter((a) => a.size > 0).sort((a, b) => a.base - b.base);
    const top = sorted[sorted.length - 1];
    const windowPages = Math.ceil(windowBytes / PAGE_SIZE);
    this.#window = top
      ? {
          start: Math.max(top.base / PAGE_SIZE, (top.base + top.size) / PAGE_SIZE - windowPages),
          end: (top.base + top.size) / PAGE_SIZE,
        }
      : { start: 0, end: 0 };
    for (const a of sorted) {
      const start = a.base / PAGE_SIZE;
      const end = Math.min(
        (a.base + a.size) / PAGE_SIZE,
        a === top ? this.#window.start : Infinity,
      );
      if (end <= start) continue;
      const first = Math.floor(start / 2 ** MAX_PAGE_ORDER) * 2 ** MAX_PAGE_ORDER;
      const buddy = BuddyAllocator.fromFreeRanges(
        end - first,
        [{ base: start - first, count: end - start }],
        options,
      );
      this.#zones.push({ first, start, end, buddy });
    }
  }

  /**
   * A transient folio of 2^order pages from scratch, or null when none is free.
   * @throws PageAllocError EINVAL for a bad order.
   */
  allocPages(order: number): number | null {
    for (const z of this.#zones) {
      const p = z.buddy.allocPages(order);
      if (p !== null) return p + z.first;
    }
    if (!Number.isInteger(order) || order < 0 || order > MAX_PAGE_ORDER) {
      throw new PageAllocError('EINVAL', `order ${order} is not in 0..${MAX_PAGE_ORDER}`);
    }
    return null;
  }

  /** Whether `pfn` lies in scratch that transient allocations use. */
  owns(pfn: number): boolean {
    return this.#zoneOf(pfn) !== undefined;
  }

  /** @throws PageAllocError as BuddyAllocator.freePages (ENOENT double free, ...). */
  freePages(pfn: number, order: number): void {
    const z = this.#zoneOf(pfn);
    if (!z) throw new PageAllocError('EINVAL', `pfn ${pfn} is not transient scratch memory`, pfn);
    z.buddy.freePages(pfn - z.first, order);
  }

  /** What a kexec segment may take: the window not held, and free transient scratch. */
  segmentFree(): PhysRange[] {
    const out: PhysRange[] = [];
    let at = this.#window.start;
    for (const h of [...this.#held].sort((a, b) => a.start - b.start)) {
      const s = Math.max(h.start, this.#window.start);
      const e = Math.min(h.end, this.#window.end);
      if (e <= s) continue;
      if (s > at) out.push(range(at, s));
      at = Math.max(at, e);
    }
    if (this.#window.end > at) out.push(range(at, this.#window.end));
    for (const z of this.#zones) {
      for (const e of z.buddy.freeExtents())
        out.push(range(e.base + z.first, e.base + e.count + z.first));
    }
    return out;
  }

  /**
   * Takes whole pages [seg.base, seg.base + seg.size) for a kexec segment:
   * free transient scratch and window pages no segment holds. All or nothing.
   * @throws PageAllocError EBUSY when some page is not free for it; EINVAL outside scratch.
   */
  claimSegment(seg: PhysRange): void {
    const { start, end } = pfns(seg);
    for (const h of this.#held) {
      if (start < h.end && h.start < end) {
        throw new PageAllocError('EBUSY', `pfns [${start}, ${end}) overlap a held segment`, start);
      }
    }
    const parts = this.#split(start, end);
    const done: [Zone, number, number][] = [];
    try {
      for (const [z, s, e] of parts) {
        if (z) {
          z.buddy.claimRange(s - z.first, e - s);
          done.push([z, s, e]);
        }
      }
    } catch (err) {
      for (const [z, s, e] of done) z.buddy.releaseRange(s - z.first, e - s);
      throw err;
    }
    this.#held.push({ start, end });
  }

  /** Gives back a segment claimSegment took. @throws PageAllocError ENOENT when it holds no such segment. */
  releaseSegment(seg: PhysRange): void {
    const { start, end } = pfns(seg);
    const i = this.#held.findIndex((h) => h.start === start && h.end === end);
    if (i < 0)
      throw new PageAllocError('ENOENT', `no segment holds pfns [${start}, ${end})`, start);
    this.#held.splice(i, 1);
    for (const [z, s, e] of this.#split(start, end))
      if (z) z.buddy.releaseRange(s - z.first, e - s);
  }

  stats(): ScratchPagesStats {
    let transientPages = 0;
    let freePages = 0;
    for (const z of this.#zones) {
      transientPages += z.end - z.start;
      freePages += z.buddy.stats().freePages;
    }
    const windowPages = this.#window.end - this.#window.start;
    return {
      totalPages: transientPages + windowPages,
      transientPages,
      freePages,
      segmentPages: this.#held.reduce((n, h) => n + h.end - h.start, 0),
    };
  }

  #zoneOf(pfn: number): Zone | undefined {
    return this.#zones.find((z) => pfn >= z.start && pfn < z.end);
  }

  /**
   * [start, end) cut at zone edges: [zone, s, e] for zone pages, [null, s, e]
   * for window pages. @throws PageAllocError EINVAL for a page outside scratch.
   */
  #split(start: number, end: number): [Zone | null, number, number][] {
    const out: [Zone | null, number, number][] = [];
    for (let p = start; p < end; ) {
      const z = this.#zoneOf(p);
      if (z) {
        const e = Math.min(end, z.end);
        out.push([z, p, e]);
        p = e;
      } else if (p >= this.#window.start && p < this.#window.end) {
        const e = Math.min(end, this.#window.end);
        out.push([null, p, e]);
        p = e;
      } else {
        throw new PageAllocError('EINVAL', `pfn ${p} is not KHO scratch`, p);
      }
    }
    return out;
  }
}

function range(start: number, end: number): PhysRange {
  return { base: start * PAGE_SIZE, size: (end - start) * PAGE_SIZE };
}

function pfns(seg: PhysRange): { start: number; end: number } {
  const start = Math.floor(seg.base / PAGE_SIZE);
  return { start, end: Math.ceil((seg.base + seg.size) / PAGE_SIZE) };
}
