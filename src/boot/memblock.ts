import { show } from '../base/errors.js';
import { hex } from '../base/hex.js';
import { BootError } from './errors.js';
import { type MemblockRegion, RegionList } from './memblock-regions.js';

export type { MemblockRegion } from './memblock-regions.js';

/**
 * memblock, the early boot allocator (mm/memblock.c): a `memory` list of what
 * exists and a `reserved` list of what is taken. Allocation is top-down by
 * default and looks only at memory minus reserved; in scratch-only mode (a KHO
 * successor before it has read the handover) only memory marked KHO scratch.
 *
 * Differences from the kernel, on purpose: free extents are maximal (adjacent
 * memory regions with different flags are one extent), so an allocation may
 * span them; there are no NUMA nodes; allocation failure throws ENOMEM
 * (allocRange, alloc) or returns null (tryAllocRange, tryAlloc).
 */

// enum memblock_flags: the kernel's values.
export const MEMBLOCK_NONE = 0x0;
export const MEMBLOCK_HOTPLUG = 0x1;
export const MEMBLOCK_MIRROR = 0x2;
export const MEMBLOCK_NOMAP = 0x4;
export const MEMBLOCK_DRIVER_MANAGED = 0x8;
/** On reserved regions: the memmap of these pages is not initialised (preserved pages). */
export const MEMBLOCK_RSRV_NOINIT = 0x10;
export const MEMBLOCK_RSRV_KERN = 0x20;
/** On memory regions: KHO scratch, the only memory used in scratch-only mode. */
export const MEMBLOCK_KHO_SCRATCH = 0x40;

/** `end` meaning "up to the current limit" (the kernel's MEMBLOCK_ALLOC_ACCESSIBLE). */
export const MEMBLOCK_ALLOC_ACCESSIBLE = 0;
/** `end` meaning "anywhere" (the kernel's MEMBLOCK_ALLOC_ANYWHERE). */
export const MEMBLOCK_ALLOC_ANYWHERE = 2 ** 53;

/** Nothing is ever allocated below this: the first page (here it holds the device header). */
export const MEMBLOCK_LOW_LIMIT = 4096;

const ADDR_LIMIT = 2 ** 53;

export interface FreeRange {
  readonly base: number;
  readonly size: number;
}

function checkRange(base: number, size: number, what: string): void {
  if (
    !Number.isSafeInteger(base) ||
    base < 0 ||
    !Number.isSafeInteger(size) ||
    size < 0 ||
    base + size > ADDR_LIMIT
  ) {
    throw new BootError(
      'EINVAL',
      `memblock ${what}: bad range base ${show(base)} size ${show(size)}`,
    );
  }
}

function checkFlags(flags: number): void {
  if (!Number.isInteger(flags) || flags < 0 || flags > 0xffffffff)
    throw new BootError('EINVAL', `memblock: bad flags ${show(flags)}`);
}

export class Memblock {
  readonly memory = new RegionList('memory');
  readonly reserved = new RegionList('reserved');
  #bottomUp = false;
  #scratchOnly = false;
  #currentLimit = MEMBLOCK_ALLOC_ANYWHERE;

  /** memblock_add(). @throws BootError EINVAL for a bad range. */
  addMemory(base: number, size: number, flags = MEMBLOCK_NONE): void {
    checkRange(base, size, 'add');
    checkFlags(flags);
    if (size > 0) this.memory.add(base, size, flags);
  }

  /** memblock_remove(): the range no longer exists. @throws BootError EINVAL for a bad range. */
  removeMemory(base: number, size: number): void {
    checkRange(base, size, 'remove');
    if (size > 0) this.memory.remove(base, size);
  }

  /** memblock_mark_kho_scratch(). @throws BootError EINVAL for a bad range. */
  markScratch(base: number, size: number): void {
    checkRange(base, size, 'mark scratch');
    if (size > 0) this.memory.setClearFlag(base, size, MEMBLOCK_KHO_SCRATCH, true);
  }

  /** memblock_clear_kho_scratch(). @throws BootError EINVAL for a bad range. */
  clearScratch(base: number, size: number): void {
    checkRange(base, size, 'clear scratch');
    if (size > 0) this.memory.setClearFlag(base, size, MEMBLOCK_KHO_SCRATCH, false);
  }

  /**
   * memblock_reserve(): merges with touching reservations of equal flags;
   * parts already reserved keep their flags. Appending in ascending order is
   * amortised O(log n). @throws BootError EINVAL for a bad range.
   */
  reserve(base: number, size: number, flags = MEMBLOCK_NONE): void {
    checkRange(base, size, 'reserve');
    checkFlags(flags);
    if (size > 0) this.reserved.add(base, size, flags);
  }

  /** memblock_phys_free(): the range is no longer reserved. @throws BootError EINVAL for a bad range. */
  free(base: number, size: number): void {
    checkRange(base, size, 'free');
    if (size > 0) this.reserved.remove(base, size);
  }

  /** memblock_reserved_mark_noinit(). @throws BootError EINVAL for a bad range. */
  markNoinit(base: number, size: number): void {
    checkRange(base, size, 'mark noinit');
    if (size > 0) this.reserved.setClearFlag(base, size, MEMBLOCK_RSRV_NOINIT, true);
  }

  /** memblock_is_region_reserved(): true when any byte of the range is reserved. */
  isReserved(base: number, size: number): boolean {
    checkRange(base, size, 'is reserved');
    return size > 0 && this.reserved.overlaps(base, size);
  }

  /** True when any byte of the range is memory. */
  isMemory(base: number, size: number): boolean {
    checkRange(base, size, 'is memory');
    return size > 0 && this.memory.overlaps(base, size);
  }

  /** memblock_set_bottom_up(). */
  setBottomUp(on: boolean): void {
    this.#bottomUp = on;
  }

  get bottomUp(): boolean {
    return this.#bottomUp;
  }

  /** memblock_set_kho_scratch_only() / memblock_clear_kho_scratch_only(). */
  setScratchOnly(on: boolean): void {
    this.#scratchOnly = on;
  }

  get scratchOnly(): boolean {
    return this.#scratchOnly;
  }

  /** memblock_set_current_limit(): the `end` of MEMBLOCK_ALLOC_ACCESSIBLE. */
  setCurrentLimit(limit: number): void {
    if (!Number.isSafeInteger(limit) && limit !== ADDR_LIMIT)
      throw new BootError('EINVAL', `memblock: bad limit ${show(limit)}`);
    this.#currentLimit = limit;
  }

  get currentLimit(): number {
    return this.#currentLimit;
  }

  /**
   * memblock_phys_alloc_range(): finds `size` bytes aligned to `align` inside
   * [start, end) (end MEMBLOCK_ALLOC_ACCESSIBLE = the current limit), top-down
   * unless bottom-up is set, never below MEMBLOCK_LOW_LIMIT, and reserves them.
   * Returns the base address, or null when nothing fits.
   *
   * @throws BootError EINVAL when size is not a positive safe integer or align
   *   not a power of two.
   */
  tryAllocRange(
    size: number,
    align: number,
    start = 0,
    end = MEMBLOCK_ALLOC_ACCESSIBLE,
  ): number | null {
    if (!Number.isSafeInteger(size) || size <= 0)
      throw new BootError('EINVAL', `memblock alloc: bad size ${show(size)}`);
    if (!Number.isSafeInteger(align) || align <= 0 || 2 ** Math.round(Math.log2(align)) !== align) {
      throw new BootError(
        'EINVAL',
        `memblock alloc: alignment ${show(align)} is not a power of two`,
      );
    }
    if (
      typeof start !== 'number' ||
      typeof end !== 'number' ||
      Number.isNaN(start) ||
      Number.isNaN(end)
    )
      throw new BootError('EINVAL', `memblock alloc: bad range ${show(start)}..${show(end)}`);
    const lo = Math.max(start, MEMBLOCK_LOW_LIMIT);
    const hi = Math.min(end === MEMBLOCK_ALLOC_ACCESSIBLE ? this.#currentLimit : end, ADDR_LIMIT);
    const found = this.#bottomUp
      ? this.#findBottomUp(size, align, lo, hi)
      : this.#findTopDown(size, align, lo, hi);
    if (found === null) return null;
    this.reserved.add(found, size, MEMBLOCK_NONE);
    return found;
  }

  /**
   * tryAllocRange() that throws when nothing fits.
   * @throws BootError ENOMEM when no free range fits; EINVAL for bad arguments.
   */
  allocRange(size: number, align: number, start = 0, end = MEMBLOCK_ALLOC_ACCESSIBLE): number {
    const found = this.tryAllocRange(size, align, start, end);
    if (found === null) {
      const where = this.#scratchOnly ? ' in scratch memory' : '';
      throw new BootError(
        'ENOMEM',
        `memblock: cannot allocate ${hex(size, 16)} bytes aligned to ${hex(align, 16)}${where} in [${hex(start, 16)}-${hex(end, 16)}]`,
      );
    }
    return found;
  }

  /** memblock_phys_alloc(): anywhere below the current limit. @throws BootError ENOMEM, EINVAL. */
  alloc(size: number, align: number): number {
    return this.allocRange(size, align);
  }

  /** alloc() returning null instead of throwing ENOMEM. @throws BootError EINVAL. */
  tryAlloc(size: number, align: number): number | null {
    return this.tryAllocRange(size, align);
  }

  #findTopDown(size: number, align: number, lo: number, hi: number): number | null {
    for (const r of this.#freeReverse(this.#scratchOnly, hi)) {
      const s = Math.max(r.base, lo);
      const e = Math.min(r.base + r.size, hi);
      if (r.base + r.size <= lo) return null;
      if (e - s < size) continue;
      const cand = Math.floor((e - size) / align) * align;
      if (cand >= s) return cand;
    }
    return null;
  }

  #findBottomUp(size: number, align: number, lo: number, hi: number): number | null {
    for (const r of this.#free(this.#scratchOnly, lo)) {
      const s = Math.max(r.base, lo);
      const e = Math.min(r.base + r.size, hi);
      if (r.base >= hi) return null;
      const cand = Math.ceil(s / align) * align;
      if (cand + size <= e) return cand;
    }
    return null;
  }

  /**
   * The free extents, memory minus reserved, ascending: what the page
   * allocator is built from. Looks at all memory, whatever scratch-only says
   * (as memblock_free_all()); pass `{ scratchOnly: true }` for scratch alone.
   */
  freeRanges(opts: { scratchOnly?: boolean } = {}): IterableIterator<FreeRange> {
    return this.#free(opts?.scratchOnly === true, 0);
  }

  /** Reserved regions flagged MEMBLOCK_RSRV_NOINIT. */
  *reservedNoinit(): IterableIterator<MemblockRegion> {
    for (const r of this.reserved) if (r.flags & MEMBLOCK_RSRV_NOINIT) yield r;
  }

  /** Maximal runs of memory regions that qualify, ascending, starting with the one holding `from`. */
  *#extents(scratchOnly: boolean, from: number): IterableIterator<[number, number]> {
    const m = this.memory;
    const ok = (i: number) => !scratchOnly || (m.flags(i) & MEMBLOCK_KHO_SCRATCH) !== 0;
    for (let i = m.firstEndAbove(from); i < m.cnt; i++) {
      if (!ok(i)) continue;
      const s = m.base(i);
      while (i + 1 < m.cnt && m.base(i + 1) === m.end(i) && ok(i + 1)) i++;
      yield [s, m.end(i)];
    }
  }

  /** Like #extents, descending, clipped to end at or below `to`. */
  *#extentsReverse(scratchOnly: boolean, to: number): IterableIterator<[number, number]> {
    const m = this.memory;
    const ok = (i: number) => !scratchOnly || (m.flags(i) & MEMBLOCK_KHO_SCRATCH) !== 0;
    for (let i = m.firstBaseAtOrAbove(to) - 1; i >= 0; i--) {
      if (!ok(i)) continue;
      const e = Math.min(m.end(i), to);
      while (i > 0 && m.end(i - 1) === m.base(i) && ok(i - 1)) i--;
      yield [m.base(i), e];
    }
  }

  *#free(scratchOnly: boolean, from: number): IterableIterator<FreeRange> {
    const r = this.reserved;
    for (const [s, e] of this.#extents(scratchOnly, from)) {
      let cur = s;
      for (let j = r.firstEndAbove(s); j < r.cnt && r.base(j) < e; j++) {
        if (r.base(j) > cur) yield { base: cur, size: r.base(j) - cur };
        cur = Math.max(cur, r.end(j));
      }
      if (cur < e) yield { base: cur, size: e - cur };
    }
  }

  *#freeReverse(scratchOnly: boolean, to: number): IterableIterator<FreeRange> {
    const r = this.reserved;
    for (const [s, e] of this.#extentsReverse(scratchOnly, to)) {
      let cur = e;
      for (let j = r.firstBaseAtOrAbove(e) - 1; j >= 0 && r.end(j) > s; j--) {
        if (r.end(j) < cur) yield { base: r.end(j), size: cur - r.end(j) };
        cur = Math.min(cur, r.base(j));
      }
      if (cur > s) yield { base: s, size: cur - s };
    }
  }

  /** The `memblock=debug` dump, as __memblock_dump_all() prints it. */
  dump(): string {
    const lines = [
      'MEMBLOCK configuration:',
      ` memory size = ${hex(this.memory.totalSize, 16)} reserved size = ${hex(this.reserved.totalSize, 16)}`,
    ];
    for (const type of [this.memory, this.reserved]) {
      lines.push(` ${type.name}.cnt  = ${hex(type.cnt)}`);
      for (let i = 0; i < type.cnt; i++) {
        const r = type.region(i);
        lines.push(
          ` ${type.name}[${hex(i)}]\t[${hex(r.base, 16)}-${hex(r.base + r.size - 1, 16)}], ${hex(r.size, 16)} bytes flags: ${hex(r.flags)}`,
        );
      }
    }
    return `${lines.join('\n')}\n`;
  }

  /** A plain snapshot for kernel.status() and tests. */
  status(): {
    memory: MemblockRegion[];
    reserved: MemblockRegion[];
    bottomUp: boolean;
    scratchOnly: boolean;
  } {
    return {
      memory: [...this.memory],
      reserved: [...this.reserved],
      bottomUp: this.#bottomUp,
      scratchOnly: this.#scratchOnly,
    };
  }
}
