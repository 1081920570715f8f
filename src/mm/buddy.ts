import { show } from '../base/errors.js';
/**
 * The buddy page allocator, after the kernel's mm/page_alloc.c: free memory is
 * kept as naturally aligned blocks of 2^order pages, order 0..MAX_PAGE_ORDER,
 * on one free list per order. Allocation splits a larger block ("expand"),
 * freeing merges a block with its free buddy as far as it can.
 *
 * The allocator deals only in page frame numbers; it never touches device
 * bytes. All per-page state lives in typed arrays indexed by pfn (the
 * memmap), and the free lists are threaded through two Int32Arrays, so there
 * is no object per page and list insert/remove are O(1).
 */
import type { PfnRange } from '../base/range.js';
import { PageAllocError } from './errors.js';
import { pageBytes, pageInts } from './page-array.js';
import {
  CENSUS_ALLOCATED,
  CENSUS_FREE,
  CENSUS_PRESERVED,
  CENSUS_RESERVED,
  type CensusView,
  PageCensus,
} from './page-census.js';

/** Largest block order, as the kernel's MAX_PAGE_ORDER (a 4 MiB block of 4 KiB pages). */
export const MAX_PAGE_ORDER = 10;
/** Number of orders, 0..MAX_PAGE_ORDER. */
export const NR_PAGE_ORDERS = MAX_PAGE_ORDER + 1;
/** Options of an allocator. */
export interface BuddyOptions {
  /**
   * Keep the memmap out of V8's external-memory accounting, for an allocator
   * that lives as long as the process (mm/page-array.ts). Default false.
   */
  shared?: boolean;
}

/** Largest page count: pfns and free-list links are int32 (8 TiB of 4 KiB pages). */
export const MAX_PAGES = 0x7fff_ffff;

/** What a page is used for, as `pageState()` reports it for any page of a block. */
export type PageState = 'free' | 'allocated' | 'reserved' | 'preserved';

/** One free block, as the free lists hold it. */
export interface FreeBlock {
  pfn: number;
  order: number;
}

export interface BuddyStats {
  totalPages: number;
  freePages: number;
  allocatedPages: number;
  reservedPages: number;
  preservedPages: number;
  /** Free blocks per order, like /proc/buddyinfo. */
  freeByOrder: number[];
}

// Raw page states in the memmap (the census counts them by the same values). RESERVED is 0 so a fresh memmap is all reserved.
const PG_RESERVED = CENSUS_RESERVED;
const PG_FREE = CENSUS_FREE;
const PG_ALLOCATED = CENSUS_ALLOCATED;
const PG_PRESERVED = CENSUS_PRESERVED;
/** Any page of a block other than its head; the head holds the block's state and order. */
const PG_TAIL = 4;

const NIL = -1;

const STATE_NAMES: readonly PageState[] = ['reserved', 'free', 'allocated', 'preserved'];

export class BuddyAllocator {
  readonly npages: number;

  /** Raw state per pfn (PG_*). */
  private readonly state: Uint8Array;
  /** Order of the block whose head is this pfn; meaningless for tails and reserved pages. */
  private readonly order: Uint8Array;
  /** Free-list links, valid only for heads of free blocks. */
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  private readonly freeHead = new Int32Array(NR_PAGE_ORDERS).fill(NIL);
  private readonly freeTail = new Int32Array(NR_PAGE_ORDERS).fill(NIL);
  private readonly nrFreeBlocks = new Float64Array(NR_PAGE_ORDERS);

  private nrFree = 0;
  /** Pages by state per cell, for memory layouts. */
  private readonly pageCensus: PageCensus;
  private nrAllocated = 0;
  /**
   * Sorted [start, end) pfn pairs whose freed blocks are held back (see
   * holdFreesIn), then [Infinity, Infinity): a last range every search ends
   * in, so that holds() runs the same operations on every call.
   */
  private holdRanges: Float64Array | null = null;
  /** Held blocks: pfn, then the order (>= 0, from freePages) or -count (from releaseRange). */
  private held: number[] = [];
  private nrPreserved = 0;
  private nrReserved: number;

  /**
   * An allocator for pfns 0..npages-1 with every page reserved; give it memory
   * with `releaseRange()`, or build one with `fromFreeRanges()`.
   * @throws PageAllocError EINVAL when npages is not an integer in 0..MAX_PAGES.
   */
  constructor(npages: number, options: BuddyOptions = {}) {
    if (!Number.isInteger(npages) || npages < 0 || npages > MAX_PAGES) {
      throw new PageAllocError(
        'EINVAL',
        `page count ${npages} is not an integer in 0..${MAX_PAGES}`,
      );
    }
    this.npages = npages;
    const shared = options.shared === true;
    this.state = pageBytes(npages, shared);
    this.order = pageBytes(npages, shared);
    this.next = pageInts(npages, shared);
    this.prev = pageInts(npages, shared);
    this.nrReserved = npages;
    this.pageCensus = new PageCensus(npages);
  }

  /**
   * Bring-up: every page outside `ranges` is reserved; the ranges (in any
   * order, overlapping or adjacent ones merged) are carved into maximal
   * naturally aligned blocks. The work is proportional to the number of
   * ranges and blocks plus a native fill of the memmap, not to pages.
   * @throws PageAllocError EINVAL for a bad npages or a non-integer/negative range,
   *   EFAULT for a range that runs past npages.
   */
  static fromFreeRanges(
    npages: number,
    ranges: Iterable<PfnRange>,
    options: BuddyOptions = {},
  ): BuddyAllocator {
    const buddy = new BuddyAllocator(npages, options);
    const list: PfnRange[] = [];
    for (const r of ranges) {
      if (typeof r !== 'object' || r === null) {
        throw new PageAllocError('EINVAL', `free range ${show(r)} is not a {pfn, count}`);
      }
      buddy.checkRange(r.pfn, r.count, 'free range');
      if (r.count > 0) list.push({ pfn: r.pfn, count: r.count });
    }
    list.sort((a, b) => a.pfn - b.pfn);
    let i = 0;
    while (i < list.length) {
      const base = list[i].pfn;
      let end = base + list[i].count;
      for (i++; i < list.length && list[i].pfn <= end; i++) {
        end = Math.max(end, list[i].pfn + list[i].count);
      }
      // Merged ranges are separated by reserved gaps, so no block can merge across them.
      buddy.state.fill(PG_TAIL, base, end);
      buddy.carveFree(base, end);
      buddy.nrReserved -= end - base;
      buddy.nrFree += end - base;
      buddy.pageCensus.move(base, end - base, PG_RESERVED, PG_FREE);
    }
    return buddy;
  }

  /**
   * Takes a free block of 2^order pages, splitting a larger one if needed.
   * @returns the pfn of the block's head (aligned to 2^order), or null when no block fits.
   * @throws PageAllocError EINVAL when order is not in 0..MAX_PAGE_ORDER.
   */
  allocPages(order: number): number | null {
    this.checkOrder(order);
    for (let o = order; o <= MAX_PAGE_ORDER; o++) {
      const head = this.freeHead[o];
      if (head === NIL) continue;
      this.listDel(head, o);
      const pfn = this.expand(head, o, order, head);
      this.state[pfn] = PG_ALLOCATED;
      this.order[pfn] = order;
      const n = 2 ** order;
      this.nrFree -= n;
      this.nrAllocated += n;
      this.pageCensus.move(pfn, n, PG_FREE, PG_ALLOCATED);
      return pfn;
    }
    return null;
  }

  /**
   * Takes the specific free block [pfn, pfn + 2^order) out of the free lists
   * and returns it allocated.
   * @throws PageAllocError EINVAL (order), EFAULT (outside the pages),
   *   EINVAL (pfn not aligned to 2^order), EBUSY (some of the pages are not free).
   */
  allocPagesAt(pfn: number, order: number): void {
    this.checkBlock(pfn, order);
    this.unholdRange(pfn, 2 ** order);
    const head = this.freeBlockContaining(pfn);
    if (head === NIL || this.order[head] < order) {
      throw new PageAllocError(
        'EBUSY',
        `pages ${fmtRange(pfn, 2 ** order)} are not all free (pfn ${pfn} is ${this.pageState(pfn)})`,
        pfn,
      );
    }
    const o = this.order[head];
    this.listDel(head, o);
    this.expand(head, o, order, pfn);
    this.state[pfn] = PG_ALLOCATED;
    this.order[pfn] = order;
    const n = 2 ** order;
    this.nrFree -= n;
    this.nrAllocated += n;
    this.pageCensus.move(pfn, n, PG_FREE, PG_ALLOCATED);
  }

  /**
   * Returns an allocated block to the free lists and merges it with its free
   * buddies up to MAX_PAGE_ORDER. Nothing changes when it throws.
   * @throws PageAllocError EINVAL (order out of range, or not the order the block
   *   was allocated with), EFAULT (pfn outside the pages), ENOENT (already free), EINVAL (a tail page),
   *   EPERM (reserved), EBUSY (the block is preserved).
   */
  freePages(pfn: number, order: number): void {
    this.checkOrder(order);
    this.checkPfn(pfn);
    if (
      this.holds(pfn, 2 ** order) &&
      this.state[pfn] === PG_ALLOCATED &&
      this.order[pfn] === order
    ) {
      this.held.push(pfn, order);
      return;
    }
    const st = this.state[pfn];
    if (st !== PG_ALLOCATED) this.refuseFree(pfn, st);
    if (this.order[pfn] !== order) {
      throw new PageAllocError(
        'EINVAL',
        `pfn ${pfn} was allocated with order ${this.order[pfn]}, freed with order ${order}`,
        pfn,
      );
    }
    const n = 2 ** order;
    this.nrAllocated -= n;
    this.nrFree += n;
    this.pageCensus.move(pfn, n, PG_ALLOCATED, PG_FREE);
    this.mergeFree(pfn, order);
  }

  /**
   * Marks a block as preserved for the next kernel, so that it cannot be
   * freed. The block is either allocated with this order, or made entirely of
   * reserved pages (memory a predecessor preserved, seen at bring-up).
   * @throws PageAllocError EFAULT, EINVAL (bad order, misaligned, a tail page),
   *   ENOENT (free pages, or reserved pages mixed with others), EBUSY (already preserved).
   */
  markPreserved(pfn: number, order: number): void {
    this.checkBlock(pfn, order);
    const n = 2 ** order;
    const st = this.state[pfn] as number;
    if (st === PG_ALLOCATED) {
      this.checkHeadOrder(pfn, order);
      this.state[pfn] = PG_PRESERVED;
      this.nrAllocated -= n;
    } else if (st === PG_RESERVED) {
      if (!this.allReserved(pfn, pfn + n)) {
        throw new PageAllocError(
          'ENOENT',
          `pages ${fmtRange(pfn, n)} are not one allocated block nor all reserved`,
          pfn,
        );
      }
      this.state.fill(PG_TAIL, pfn + 1, pfn + n);
      this.state[pfn] = PG_PRESERVED;
      this.order[pfn] = order;
      this.nrReserved -= n;
    } else if (st === PG_PRESERVED) {
      throw new PageAllocError('EBUSY', `pfn ${pfn} is already preserved`, pfn);
    } else if (st === PG_TAIL) {
      throw new PageAllocError('EINVAL', `pfn ${pfn} is a tail page of a block`, pfn);
    } else {
      throw new PageAllocError('ENOENT', `pfn ${pfn} is free, cannot preserve it`, pfn);
    }
    this.nrPreserved += n;
    this.pageCensus.move(pfn, n, st, PG_PRESERVED);
  }

  /**
   * Makes reserved pages (memory a predecessor preserved, taken back) one
   * allocated block in place, without a trip through the free lists: what
   * markPreserved then clearPreserved do, in one step.
   * @throws PageAllocError EFAULT, EINVAL (bad order, misaligned), ENOENT (not all reserved).
   */
  allocReserved(pfn: number, order: number): void {
    this.checkBlock(pfn, order);
    const n = 2 ** order;
    if (this.state[pfn] !== PG_RESERVED || !this.allReserved(pfn, pfn + n)) {
      throw new PageAllocError('ENOENT', `pages ${fmtRange(pfn, n)} are not all reserved`, pfn);
    }
    if (n > 1) this.state.fill(PG_TAIL, pfn + 1, pfn + n);
    this.state[pfn] = PG_ALLOCATED;
    this.order[pfn] = order;
    this.nrReserved -= n;
    this.nrAllocated += n;
  }

  /**
   * allocReserved for many blocks in one loop (a restored page list): all
   * or nothing (a bad block, or one named twice, undoes the blocks taken
   * before it). Returns the pages taken.
   * @throws PageAllocError as allocReserved, for the first bad block.
   */
  allocReservedBlocks(pfns: Float64Array, orders: Uint8Array): number {
    if (
      !(pfns instanceof Float64Array) ||
      !(orders instanceof Uint8Array) ||
      pfns.length !== orders.length
    )
      throw new PageAllocError(
        'EINVAL',
        `allocReservedBlocks takes a Float64Array of pfns and a Uint8Array of orders of one length, got ${show(pfns)} and ${show(orders)}`,
      );
    // One pass, checking and taking each block: it runs cold in a successor, before V8 has
    // optimized it, where each pass over a large list costs ~100 ns per block.
    const state = this.state;
    const orderOf = this.order;
    let pages = 0;
    let i = 0;
    for (; i < pfns.length; i++) {
      const pfn = pfns[i];
      const o = orders[i];
      // One page: reserved or not (a pfn outside reads undefined).
      if (o === 0 && state[pfn] === PG_RESERVED) {
        state[pfn] = PG_ALLOCATED;
        orderOf[pfn] = 0;
        pages++;
        continue;
      }
      const n = 2 ** o;
      if (
        o === 0 ||
        o > MAX_PAGE_ORDER ||
        pfn % n !== 0 ||
        !(pfn >= 0 && pfn + n <= this.npages) ||
        !this.allReserved(pfn, pfn + n)
      )
        break;
      state.fill(PG_TAIL, pfn + 1, pfn + n);
      state[pfn] = PG_ALLOCATED;
      orderOf[pfn] = o;
      pages += n;
    }
    if (i < pfns.length) this.undoReservedBlocks(pfns, orders, i);
    this.nrReserved -= pages;
    this.nrAllocated += pages;
    return pages;
  }

  /** Block `bad` of allocReservedBlocks failed: its precise error, thrown once the blocks before it are reserved again. */
  private undoReservedBlocks(pfns: Float64Array, orders: Uint8Array, bad: number): never {
    let err: unknown = null;
    let taken = bad;
    try {
      // Throws for a bad block as allocReserved does, in the state that refused it.
      this.allocReserved(pfns[bad], orders[bad]);
      taken = bad + 1;
    } catch (e) {
      err = e;
    }
    for (let j = 0; j < taken; j++) this.state.fill(PG_RESERVED, pfns[j], pfns[j] + 2 ** orders[j]);
    if (taken > bad) {
      this.nrReserved += 2 ** orders[bad];
      this.nrAllocated -= 2 ** orders[bad];
    }
    throw err ?? new PageAllocError('EINVAL', `block ${bad} of the list was refused`, pfns[bad]);
  }

  /**
   * Ends the preservation of a block: it is allocated again (unpreserved, or
   * restored by the next kernel) and can be freed.
   * @throws PageAllocError EFAULT, EINVAL (bad order, misaligned), ENOENT (not preserved).
   */
  clearPreserved(pfn: number, order: number): void {
    this.checkBlock(pfn, order);
    if (this.state[pfn] !== PG_PRESERVED) {
      throw new PageAllocError('ENOENT', `pfn ${pfn} is not the head of a preserved block`, pfn);
    }
    this.checkHeadOrder(pfn, order);
    const n = 2 ** order;
    this.state[pfn] = PG_ALLOCATED;
    this.nrPreserved -= n;
    this.nrAllocated += n;
    this.pageCensus.move(pfn, n, PG_PRESERVED, PG_ALLOCATED);
  }

  /**
   * Late reservation (memblock-style): takes the free pages [pfn, pfn + count)
   * out of the free lists, splitting blocks at the edges, and marks them
   * reserved. All or nothing: nothing changes when it throws.
   * @throws PageAllocError EINVAL (bad count), EFAULT (outside the pages),
   *   EBUSY (some page in the range is not free, named).
   */
  claimRange(pfn: number, count: number): void {
    this.checkRange(pfn, count, 'range');
    const end = pfn + count;
    for (let p = pfn; p < end; ) {
      const head = this.freeBlockContaining(p);
      if (head === NIL) {
        throw new PageAllocError(
          'EBUSY',
          `cannot claim ${fmtRange(pfn, count)}: pfn ${p} is ${this.pageState(p)}`,
          p,
        );
      }
      p = head + 2 ** this.order[head];
    }
    for (let p = pfn; p < end; ) {
      const head = this.freeBlockContaining(p);
      let o = this.order[head];
      this.listDel(head, o);
      const size = 2 ** o;
      if (head >= pfn && head + size <= end) {
        p = head + size;
        continue;
      }
      // Straddles an edge: put both halves back and look again at the smaller block.
      o--;
      this.pushFree(head, o);
      this.pushFree(head + 2 ** o, o);
    }
    this.state.fill(PG_RESERVED, pfn, end);
    this.nrFree -= count;
    this.nrReserved += count;
    this.pageCensus.move(pfn, count, PG_FREE, PG_RESERVED);
  }

  /**
   * Gives reserved pages [pfn, pfn + count) to the allocator, like the
   * kernel's free_reserved_area(): they are carved into aligned blocks and
   * merged with free neighbours.
   * @throws PageAllocError EINVAL (bad count), EFAULT (outside the pages),
   *   EBUSY (some page in the range is not reserved).
   */
  releaseRange(pfn: number, count: number): void {
    this.checkRange(pfn, count, 'range');
    if (this.holds(pfn, count) && this.allReserved(pfn, pfn + count)) {
      this.held.push(pfn, -count);
      return;
    }
    const end = pfn + count;
    if (!this.allReserved(pfn, end)) {
      throw new PageAllocError(
        'EBUSY',
        `cannot release ${fmtRange(pfn, count)}: not every page in it is reserved`,
        pfn,
      );
    }
    this.state.fill(PG_TAIL, pfn, end);
    for (let p = pfn; p < end; ) {
      const o = maxBlockOrder(p, end);
      this.mergeFree(p, o);
      p += 2 ** o;
    }
    this.nrReserved -= count;
    this.nrFree += count;
    this.pageCensus.move(pfn, count, PG_RESERVED, PG_FREE);
  }

  /**
   * A successor on trial must leave its predecessor's handover as it found
   * it, so that a retry or the fallback boots it again: blocks freed (or
   * released) inside `ranges` from now on stay out of the free lists, and
   * nothing else hands them out, until releaseHeld(). The pages count as
   * they were (allocated or reserved) meanwhile.
   * @throws PageAllocError EINVAL (not an array of {pfn, count}), EFAULT (a range past the pages).
   */
  holdFreesIn(ranges: readonly PfnRange[]): void {
    if (!Array.isArray(ranges))
      throw new PageAllocError('EINVAL', `held ranges must be an array, got ${show(ranges)}`);
    for (const r of ranges) {
      if (typeof r !== 'object' || r === null)
        throw new PageAllocError('EINVAL', `held range ${show(r)} is not a {pfn, count}`);
      this.checkRange(r.pfn, r.count, 'held range');
    }
    const sorted = [...ranges].filter((r) => r.count > 0).sort((a, b) => a.pfn - b.pfn);
    const out = new Float64Array(sorted.length * 2 + 2).fill(Number.POSITIVE_INFINITY);
    sorted.forEach((r, i) => {
      out[2 * i] = r.pfn;
      out[2 * i + 1] = r.pfn + r.count;
    });
    this.holdRanges = out;
  }

  /** Frees every held block and stops holding. @returns the pages given back. */
  releaseHeld(): number {
    this.holdRanges = null;
    const held = this.held;
    this.held = [];
    let pages = 0;
    for (let i = 0; i < held.length; i += 2) {
      const x = held[i + 1];
      if (x >= 0) {
        this.freePages(held[i], x);
        pages += 2 ** x;
      } else {
        this.releaseRange(held[i], -x);
        pages -= x;
      }
    }
    return pages;
  }

  /** Pages held back by holdFreesIn. */
  get heldPages(): number {
    let pages = 0;
    for (let i = 1; i < this.held.length; i += 2) {
      const x = this.held[i];
      pages += x >= 0 ? 2 ** x : -x;
    }
    return pages;
  }

  /**
   * The caller takes held pages it released itself (PKRAM's takeFolio
   * releases a loaded folio, then allocates it at its place): a held release
   * covering [pfn, pfn + count) is made for real, the rest of it held still.
   */
  private unholdRange(pfn: number, count: number): void {
    if (this.held.length === 0) return;
    for (let i = 0; i < this.held.length; i += 2) {
      const at = this.held[i];
      const n = -this.held[i + 1];
      if (n <= 0 || pfn < at || pfn + count > at + n) continue;
      this.held.splice(i, 2);
      const ranges = this.holdRanges;
      this.holdRanges = null;
      try {
        this.releaseRange(at, n);
      } finally {
        this.holdRanges = ranges;
      }
      // Whatever of the entry the caller does not take stays out of use.
      if (pfn > at) this.claimHeld(at, pfn - at);
      if (at + n > pfn + count) this.claimHeld(pfn + count, at + n - pfn - count);
      return;
    }
  }

  private claimHeld(pfn: number, count: number): void {
    this.claimRange(pfn, count);
    this.held.push(pfn, -count);
  }

  /**
   * Whether [pfn, pfn + count) meets a held range: a binary search for the
   * first range that ends after pfn (the last, endless, one if none). Every
   * operation runs whatever the answer: V8 throws optimized code away at
   * an operation it never saw run, and a preloaded successor's rehearsals
   * (their frees below or past the held ranges) had not run all of them;
   * the first free that did, inside its boot, had it compiled again there.
   */
  private holds(pfn: number, count: number): boolean {
    const r = this.holdRanges;
    if (r === null) return false;
    let lo = 0;
    let hi = r.length / 2 - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const above = mid + 1;
      if (r[2 * mid + 1] <= pfn) lo = above;
      else hi = mid;
    }
    return r[2 * lo] < pfn + count;
  }

  /**
   * What the page is used for; a tail page reports its block's state.
   * @throws PageAllocError EFAULT when pfn is outside the pages.
   */
  pageState(pfn: number): PageState {
    this.checkPfn(pfn);
    return STATE_NAMES[this.state[this.compoundHead(pfn)]];
  }

  /** @throws PageAllocError EFAULT when pfn is outside the pages. */
  isFree(pfn: number): boolean {
    return this.pageState(pfn) === 'free';
  }

  /**
   * The first free page of [pfn, pfn + count), or -1 when none is free: a
   * range query in place of `isFree` per page. A free page is either in the
   * free block holding `pfn` or in a free block whose head lies in the
   * range, so one head lookup and one native scan of the memmap answer it.
   * @throws PageAllocError EINVAL (bad count), EFAULT (outside the pages).
   */
  firstFreeIn(pfn: number, count: number): number {
    this.checkRange(pfn, count, 'range');
    if (count === 0) return -1;
    if (this.freeBlockContaining(pfn) !== NIL) return pfn;
    const i = this.state.subarray(pfn, pfn + count).indexOf(PG_FREE);
    return i < 0 ? -1 : pfn + i;
  }

  /**
   * The order of the block whose head is pfn, or -1 when pfn is a tail page or
   * a reserved page (which belongs to no block).
   * @throws PageAllocError EFAULT when pfn is outside the pages.
   */
  headOrder(pfn: number): number {
    this.checkPfn(pfn);
    const st = this.state[pfn];
    return st === PG_TAIL || st === PG_RESERVED ? -1 : this.order[pfn];
  }

  /**
   * The head pfn of the block holding pfn (pfn itself for a head or a reserved page).
   * @throws PageAllocError EFAULT when pfn is outside the pages.
   */
  compoundHead(pfn: number): number {
    this.checkPfn(pfn);
    if (this.state[pfn] !== PG_TAIL) return pfn;
    // The head is the first aligned-down pfn that is not a tail; at most MAX_PAGE_ORDER steps.
    for (let o = 1; o <= MAX_PAGE_ORDER; o++) {
      const h = pfn & ~((1 << o) - 1);
      if (this.state[h] !== PG_TAIL) return h;
    }
    throw new Error(`buddy: memmap corrupt, no head for tail pfn ${pfn}`);
  }

  stats(): BuddyStats {
    return {
      totalPages: this.npages,
      freePages: this.nrFree,
      allocatedPages: this.nrAllocated,
      reservedPages: this.nrReserved,
      preservedPages: this.nrPreserved,
      freeByOrder: Array.from(this.nrFreeBlocks),
    };
  }

  /** Pages by state per cell, kept as pages change state: what memory layouts are drawn from. */
  get census(): CensusView {
    return this.pageCensus;
  }

  /** The free blocks, in free-list order; do not change the allocator while iterating. */
  *freeBlocks(): Generator<FreeBlock> {
    for (let o = 0; o <= MAX_PAGE_ORDER; o++) {
      for (let p = this.freeHead[o]; p !== NIL; p = this.next[p]) yield { pfn: p, order: o };
    }
  }

  /** Free memory as sorted, coalesced page ranges (for status and tests). */
  freeExtents(): PfnRange[] {
    const blocks = Array.from(this.freeBlocks()).sort((a, b) => a.pfn - b.pfn);
    const out: { pfn: number; count: number }[] = [];
    for (const b of blocks) {
      const last = out[out.length - 1];
      const size = 2 ** b.order;
      if (last !== undefined && last.pfn + last.count === b.pfn) last.count += size;
      else out.push({ pfn: b.pfn, count: size });
    }
    return out;
  }

  // --- internals ---

  /**
   * Carves [base, end) (already marked TAIL) into maximal aligned free blocks,
   * each put at the tail of its list, as the kernel's __free_pages_core()
   * does at boot (FPI_TO_TAIL): allocations then go up from the lowest
   * address, so blocks taken one after another are neighbours (a save of
   * them is a few runs), where head insertion handed out the last carved first.
   */
  private carveFree(base: number, end: number): void {
    for (let p = base; p < end; ) {
      const o = maxBlockOrder(p, end);
      this.pushFreeTail(p, o);
      p += 2 ** o;
    }
  }

  /**
   * Splits the free block [head, head + 2^high) down to order `low`, keeping
   * the half that holds `want` and putting the other halves on the free lists.
   * Returns the head of the kept block.
   */
  private expand(head: number, high: number, low: number, want: number): number {
    let h = head;
    for (let o = high - 1; o >= low; o--) {
      const upper = h + 2 ** o;
      if (want >= upper) {
        this.pushFree(h, o);
        h = upper;
      } else {
        this.pushFree(upper, o);
      }
    }
    return h;
  }

  /** Puts the block at pfn (its tails already marked) on the free lists, merging buddies. */
  private mergeFree(pfn: number, order: number): void {
    let p = pfn;
    let o = order;
    while (o < MAX_PAGE_ORDER) {
      const buddy = p ^ (1 << o);
      if (buddy >= this.npages || this.state[buddy] !== PG_FREE || this.order[buddy] !== o) break;
      this.listDel(buddy, o);
      // The pair becomes one block headed by the lower of the two; the upper head is now a tail.
      p &= buddy;
      this.state[p | (1 << o)] = PG_TAIL;
      o++;
    }
    this.pushFree(p, o);
  }

  private pushFree(pfn: number, order: number): void {
    this.state[pfn] = PG_FREE;
    this.order[pfn] = order;
    const first = this.freeHead[order];
    this.next[pfn] = first;
    this.prev[pfn] = NIL;
    if (first !== NIL) this.prev[first] = pfn;
    else this.freeTail[order] = pfn;
    this.freeHead[order] = pfn;
    this.nrFreeBlocks[order]++;
  }

  private pushFreeTail(pfn: number, order: number): void {
    this.state[pfn] = PG_FREE;
    this.order[pfn] = order;
    const last = this.freeTail[order];
    this.prev[pfn] = last;
    this.next[pfn] = NIL;
    if (last !== NIL) this.next[last] = pfn;
    else this.freeHead[order] = pfn;
    this.freeTail[order] = pfn;
    this.nrFreeBlocks[order]++;
  }

  private listDel(pfn: number, order: number): void {
    const n = this.next[pfn];
    const p = this.prev[pfn];
    if (p === NIL) this.freeHead[order] = n;
    else this.next[p] = n;
    if (n !== NIL) this.prev[n] = p;
    else this.freeTail[order] = p;
    this.nrFreeBlocks[order]--;
  }

  /** Head of the free block holding pfn, or NIL when pfn is not free. */
  private freeBlockContaining(pfn: number): number {
    const h = this.compoundHead(pfn);
    return this.state[h] === PG_FREE ? h : NIL;
  }

  /** Whether every page of [start, end) is reserved, using native scans only. */
  private allReserved(start: number, end: number): boolean {
    // Small blocks (a restore of a million order-0 folios) are checked in
    // place: a subarray and four scans per page cost 1 us.
    if (end - start <= 64) {
      for (let p = start; p < end; p++) if (this.state[p] !== PG_RESERVED) return false;
      return true;
    }
    const span = this.state.subarray(start, end);
    return (
      span.indexOf(PG_FREE) < 0 &&
      span.indexOf(PG_ALLOCATED) < 0 &&
      span.indexOf(PG_PRESERVED) < 0 &&
      span.indexOf(PG_TAIL) < 0
    );
  }

  private refuseFree(pfn: number, st: number): never {
    switch (st) {
      case PG_FREE:
        throw new PageAllocError('ENOENT', `pfn ${pfn} is already free`, pfn);
      case PG_TAIL:
        throw new PageAllocError(
          'EINVAL',
          `pfn ${pfn} is a tail page of the block at pfn ${this.compoundHead(pfn)}, not its head`,
          pfn,
        );
      case PG_PRESERVED:
        throw new PageAllocError(
          'EBUSY',
          `pfn ${pfn} is preserved for the next kernel; clear the preservation first`,
          pfn,
        );
      default:
        throw new PageAllocError('EPERM', `pfn ${pfn} is reserved, not allocated`, pfn);
    }
  }

  private checkHeadOrder(pfn: number, order: number): void {
    if (this.order[pfn] !== order) {
      throw new PageAllocError(
        'EINVAL',
        `the block at pfn ${pfn} has order ${this.order[pfn]}, not ${order}`,
        pfn,
      );
    }
  }

  private checkOrder(order: number): void {
    if (!Number.isInteger(order) || order < 0 || order > MAX_PAGE_ORDER) {
      throw new PageAllocError('EINVAL', `order ${show(order)} is not in 0..${MAX_PAGE_ORDER}`);
    }
  }

  private checkPfn(pfn: number): void {
    if (!Number.isInteger(pfn) || pfn < 0 || pfn >= this.npages) {
      throw new PageAllocError(
        'EFAULT',
        `pfn ${show(pfn)} is outside the allocator's pages 0..${this.npages - 1}`,
      );
    }
  }

  private checkBlock(pfn: number, order: number): void {
    this.checkOrder(order);
    this.checkPfn(pfn);
    const n = 2 ** order;
    if (pfn % n !== 0) {
      throw new PageAllocError('EINVAL', `pfn ${pfn} is not aligned to order ${order}`, pfn);
    }
    if (pfn + n > this.npages) {
      throw new PageAllocError(
        'EFAULT',
        `block ${fmtRange(pfn, n)} runs past the last pfn ${this.npages - 1}`,
        pfn,
      );
    }
  }

  private checkRange(base: number, count: number, what: string): void {
    if (!Number.isInteger(base) || !Number.isInteger(count) || base < 0 || count < 0) {
      throw new PageAllocError(
        'EINVAL',
        `${what} base ${show(base)} count ${show(count)} is not valid`,
      );
    }
    if (base + count > this.npages) {
      throw new PageAllocError(
        'EFAULT',
        `${what} ${fmtRange(base, count)} runs past the allocator's ${this.npages} pages`,
        base,
      );
    }
  }
}

/** Order of the largest naturally aligned block starting at p that fits before end. */
function maxBlockOrder(p: number, end: number): number {
  const align = p === 0 ? MAX_PAGE_ORDER : 31 - Math.clz32(p & -p);
  const fit = 31 - Math.clz32(end - p);
  return Math.min(align, fit, MAX_PAGE_ORDER);
}

function fmtRange(base: number, count: number): string {
  return `[pfn ${base}..${base + count - 1}]`;
}
