/**
 * Finds the pages a store's extents have handed out that nothing in the
 * store refers to any more (a span a killed update was taking or freeing),
 * and gives them back: the store's fsck. O(entries + pages), for after a
 * crash, never on a handover.
 */
import {
  CL_PARTIAL,
  CLASS_LARGE,
  CLASS_SHIFT,
  CLASS_WORDS,
  EXT_NEXT,
  KEY_MASK,
  R_META,
  R_VLEN,
  REC_HEADER,
  S_NEXT,
  SB_CLASSES,
  SB_EXT_DIR,
  SLAB_PAGES,
  SLAB_REF_MASK,
} from './abi.js';
import { CLASS_COUNT } from './classes.js';
import type { StoreMemory } from './memory.js';
import type { Table } from './table.js';

const PAGE = 4096;

/**
 * Marks every page the store uses, then releases each run of handed-out
 * pages left unmarked.
 * @returns the pages released.
 */
export function reclaimLeaks(
  mem: StoreMemory,
  tables: readonly Table[],
  refs: Iterable<number>,
): number {
  const used = new Map<number, Uint8Array>();
  for (const e of mem.extents) used.set(e.basePfn, new Uint8Array(e.pages));
  const mark = (pfn: number, count: number): void => {
    const e = mem.extentAt(pfn);
    if (e === undefined) return;
    used.get(e.basePfn)?.fill(1, pfn - e.basePfn, Math.min(e.pages, pfn - e.basePfn + count));
  };
  mark((mem.sb * 16) / PAGE, 1);
  for (let dir = mem.sbGet(SB_EXT_DIR), hops = 0; dir !== 0 && hops <= mem.extents.length; hops++) {
    mark(dir, 1);
    dir = mem.get((dir * PAGE) / 16, EXT_NEXT);
  }
  for (const t of tables) {
    mark(t.dirPfn, 1);
    for (const ref of t.segRef) mark((ref * 16) / PAGE, t.segmentBytes / PAGE);
  }
  for (let c = 0; c < CLASS_COUNT; c++) {
    let slab = mem.sbGet(SB_CLASSES + c * CLASS_WORDS + CL_PARTIAL);
    for (let hops = 0; slab !== 0 && hops < 1 << 24; hops++) {
      mark((slab * 16) / PAGE, SLAB_PAGES);
      slab = mem.get(slab, S_NEXT);
    }
  }
  for (const ref of refs) {
    const meta = mem.get(ref, R_META);
    if (((meta >>> CLASS_SHIFT) & 0xff) === CLASS_LARGE) {
      const bytes = REC_HEADER + (meta & KEY_MASK) + mem.get(ref, R_VLEN);
      mark((ref * 16) / PAGE, Math.ceil(bytes / PAGE));
    } else {
      mark((((ref & ~SLAB_REF_MASK) >>> 0) * 16) / PAGE, SLAB_PAGES);
    }
  }
  let released = 0;
  for (const e of mem.extents) {
    const pool = mem.poolOf(e);
    const marks = used.get(e.basePfn) as Uint8Array;
    for (let i = pool.metadataPages; i < e.pages; ) {
      if (marks[i] !== 0 || !pool.isAllocated(e.basePfn + i)) {
        i++;
        continue;
      }
      let j = i + 1;
      while (j < e.pages && marks[j] === 0 && pool.isAllocated(e.basePfn + j)) j++;
      mem.releaseSpan((e.basePfn + i) * PAGE, j - i);
      released += j - i;
      i = j;
    }
  }
  return released;
}
