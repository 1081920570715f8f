import type { PfnRange } from '../base/range.js';
import { MEMBLOCK_KHO_SCRATCH, Memblock } from '../boot/memblock.js';
import type { MemmapValue } from '../boot/params.js';
import { PAGE_SIZE } from '../memory/device.js';
import { MemoryMap } from '../memory/memmap.js';
import { E820, isUsableType, type MemoryRange } from '../memory/memmap-types.js';

/**
 * The memory map this boot runs on: the one handed over (or the device's
 * own), edited by `memmap=` like the kernel's parse_memmap_opt(), clipped to
 * the device, with page 0 (the device header) always reserved.
 */
export function buildMemoryMap(
  base: readonly MemoryRange[],
  memmap: readonly MemmapValue[],
  deviceSize: number,
): MemoryMap {
  const exact = memmap.some((m) => m.exactmap);
  const map = MemoryMap.from(exact ? [] : base);
  for (const m of memmap) {
    for (const e of m.entries) {
      if (e.kind === 'add') {
        // A user range may retype memory but never uncover what was kept for a successor.
        map.add(e.base, e.size, e.type);
      } else if (e.size < deviceSize) {
        map.remove(e.size, deviceSize - e.size, E820.USABLE);
      }
    }
  }
  if (exact) keepKeptRanges(map, base);
  if (map.entries().some((r) => r.base + r.size > deviceSize)) {
    map.remove(deviceSize, Number.MAX_SAFE_INTEGER - deviceSize);
  }
  map.add(0, PAGE_SIZE, E820.RESERVED);
  return pageGranular(map);
}

/**
 * Rounds every range to whole pages, as the page allocator and the device
 * header need: usable memory shrinks inwards, anything kept grows outwards
 * (so a partial reserved page is never handed out).
 */
function pageGranular(map: MemoryMap): MemoryMap {
  const out: MemoryRange[] = [];
  for (const r of map.entries()) {
    const usable = isUsableType(r.type);
    const start = usable ? Math.ceil(r.base / PAGE_SIZE) : Math.floor(r.base / PAGE_SIZE);
    const end = usable
      ? Math.floor((r.base + r.size) / PAGE_SIZE)
      : Math.ceil((r.base + r.size) / PAGE_SIZE);
    if (end > start)
      out.push({ base: start * PAGE_SIZE, size: (end - start) * PAGE_SIZE, type: r.type });
  }
  return MemoryMap.from(out);
}

/** With exactmap the user's ranges replace the map, but preserved and kernel-kept ranges stay. */
function keepKeptRanges(map: MemoryMap, base: readonly MemoryRange[]): void {
  for (const r of base) {
    if (r.type !== E820.USABLE && r.type !== E820.RESERVED) map.add(r.base, r.size, r.type);
  }
}

/** memblock's view of the map: usable and scratch ranges are memory, scratch flagged. */
export function memblockFromMap(map: MemoryMap): Memblock {
  const mb = new Memblock();
  for (const r of map.entries()) {
    if (r.type === E820.USABLE) mb.addMemory(r.base, r.size);
    else if (r.type === E820.SCRATCH) mb.addMemory(r.base, r.size, MEMBLOCK_KHO_SCRATCH);
  }
  return mb;
}

/** The free pages memblock leaves, as whole pages (partial pages at the edges are dropped). */
export function* freePageRanges(mb: Memblock): IterableIterator<PfnRange> {
  for (const r of mb.freeRanges()) {
    const first = Math.ceil(r.base / PAGE_SIZE);
    const end = Math.floor((r.base + r.size) / PAGE_SIZE);
    if (end > first) yield { pfn: first, count: end - first };
  }
}
