/**
 * Link-page streams: a singly linked chain of link pages, each holding up to
 * PKRAM_LINK_ENTRIES entries `phys | flags | order` plus an index (abi.ts).
 * The folio stream and the byte stream of an object are both such chains.
 * Counts are written as each entry is appended, so the chain in the device is
 * walkable at any moment (discard, relocation, a crash of the program); each
 * page is sealed (seal.ts) once the next one is linked or the writer is sealed.
 *
 * Pages are read and written as 32-bit words (the project's hosts are
 * little-endian, and Pkram checks the device's views are 4-byte aligned): an
 * entry costs a few typed-array loads or stores, no object and no DataView.
 */

import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import {
  LINK_ENTRY_OFF_INDEX,
  LINK_ENTRY_SIZE,
  LINK_OFF_COUNT,
  LINK_OFF_ENTRIES,
  LINK_OFF_MAGIC,
  LINK_OFF_NEXT,
  PKRAM_ENTRY_FLAGS_MASK,
  PKRAM_ENTRY_ORDER_MASK,
  PKRAM_LINK_ENTRIES,
  PKRAM_LINK_MAGIC,
  PKRAM_MAX_ORDER,
} from './abi.js';
import { PkramError } from './errors.js';
import type { RunList } from './runs.js';
import { sealLink } from './seal.js';

const PAGE_WORDS = PAGE_SIZE / 4;
const W_MAGIC = LINK_OFF_MAGIC / 4;
const W_COUNT = LINK_OFF_COUNT / 4;
const W_NEXT = LINK_OFF_NEXT / 4;
const W_ENTRIES = LINK_OFF_ENTRIES / 4;
const W_ENTRY = LINK_ENTRY_SIZE / 4;
const W_INDEX = LINK_ENTRY_OFF_INDEX / 4;
const TWO_POW_20 = 2 ** 20;
const TWO_POW_32 = 2 ** 32;

/**
 * Stand-ins for "no page yet": a field that goes from null to a typed array
 * changes its object's hidden class, and V8 then throws away the code it
 * optimized for the old one (a second PKRAM, or the next node, pays again).
 */
export const NO_WORDS = new Uint32Array(0);
export const NO_BYTES = new Uint8Array(0);

/** One decoded link entry. */
export interface LinkEntry {
  pfn: number;
  order: number;
  flags: number;
  index: number;
}

/** The 32-bit words of page pfn (a view: no copy). */
export function pageWords(device: MemoryDevice, pfn: number): Uint32Array {
  const b = device.bytes(pfn * PAGE_SIZE, PAGE_SIZE);
  return new Uint32Array(b.buffer, b.byteOffset, PAGE_WORDS);
}

/** The u64 at word w as a number (exact below 2^53). */
export function wordsU64(w: Uint32Array, at: number): number {
  return w[at + 1] * TWO_POW_32 + w[at];
}

/** Stores a non-negative integer below 2^53 at word w. */
export function setWordsU64(w: Uint32Array, at: number, value: number): void {
  // `>>> 0` is the value modulo 2^32 (ToUint32), without a libm fmod call as `%` on doubles.
  const lo = value >>> 0;
  w[at] = lo;
  w[at + 1] = (value - lo) / TWO_POW_32;
}

/** A link page's entry count as stored (callers bound it). */
export function linkCount(w: Uint32Array): number {
  return w[W_COUNT];
}

/** A link page's next pointer. */
export function linkNext(w: Uint32Array): number {
  return wordsU64(w, W_NEXT);
}

/** Whether the page carries the link magic. */
export function isLinkPage(w: Uint32Array): boolean {
  return w[W_MAGIC] === PKRAM_LINK_MAGIC;
}

/** Word of entry i's low half (`phys | flags | order`, low 32 bits). */
export function entryLo(w: Uint32Array, i: number): number {
  return w[W_ENTRIES + i * W_ENTRY];
}

/** Entry i's pfn: phys / 4096 from the two halves, without a 64-bit integer. */
export function entryPfn(w: Uint32Array, i: number): number {
  const at = W_ENTRIES + i * W_ENTRY;
  return w[at + 1] * TWO_POW_20 + (w[at] >>> 12);
}

/** Entry i's mapping index (or data page number). */
export function entryIndex(w: Uint32Array, i: number): number {
  return wordsU64(w, W_ENTRIES + i * W_ENTRY + W_INDEX);
}

/**
 * Decodes entries [from, to) of a link page into the arrays from position
 * n on; returns the next position. A leaf function, so the per-folio loop
 * is optimized on its own, early.
 */
function readEntries(
  w: Uint32Array,
  from: number,
  to: number,
  pfns: Float64Array,
  orders: Uint8Array,
  indexes: Float64Array,
  n: number,
): number {
  for (let at = W_ENTRIES + from * W_ENTRY, i = from; i < to; i++, at += W_ENTRY, n++) {
    const lo = w[at];
    orders[n] = lo & PKRAM_ENTRY_ORDER_MASK;
    pfns[n] = w[at + 1] * TWO_POW_20 + (lo >>> 12);
    indexes[n] = w[at + W_INDEX + 1] * TWO_POW_32 + w[at + W_INDEX];
  }
  return n;
}

/**
 * Writes folios [from, to) of a batch as entries of a link page from entry
 * `count` on, checking each as it goes (order, alignment, inside `pages`,
 * index) and adding it to `runs`; returns where it stopped: `to`, or the
 * first folio refused (not added). `order` >= 0 is every folio's, else
 * orders[i]. The entries only count once the caller commits them. A leaf
 * function, called a link page at a time: V8 optimizes it after a few pages.
 * Runs are followed in locals and handed to `runs` as each ends: a call per
 * run, not per folio.
 */
function writeChecked(
  w: Uint32Array,
  count: number,
  pfns: ArrayLike<number>,
  order: number,
  orders: ArrayLike<number>,
  indexes: ArrayLike<number>,
  from: number,
  to: number,
  pages: number,
  runs: RunList,
): number {
  let runPfn = 0;
  let runBlocks = 0;
  let runOrder = -1;
  let next = -1;
  let i = from;
  for (let at = W_ENTRIES + count * W_ENTRY; i < to; i++, at += W_ENTRY) {
    const o = order >= 0 ? order : orders[i];
    if (!(o >= 0 && o <= PKRAM_MAX_ORDER && (o | 0) === o)) break;
    const pfn = pfns[i];
    const index = indexes[i];
    const size = 1 << o;
    // Comparisons first (NaN fails them all), so pfn and index are below 2^53 when `&` and
    // Math.floor test them: `&` reads pfn's low 32 bits, enough for an alignment of 2^18.
    if (
      !(
        pfn >= 0 &&
        pfn <= pages - size &&
        index >= 0 &&
        index <= Number.MAX_SAFE_INTEGER - size &&
        Math.floor(pfn) === pfn &&
        (pfn & (size - 1)) === 0 &&
        Math.floor(index) === index
      )
    ) {
      break;
    }
    const lo = index >>> 0;
    w[at] = ((pfn << 12) | o) >>> 0;
    w[at + 1] = Math.floor(pfn / TWO_POW_20);
    w[at + W_INDEX] = lo;
    w[at + W_INDEX + 1] = (index - lo) / TWO_POW_32;
    if (pfn === next && o === runOrder) runBlocks++;
    else {
      if (runBlocks > 0) runs.addRun(runPfn, runBlocks, runOrder);
      runPfn = pfn;
      runBlocks = 1;
      runOrder = o;
    }
    next = pfn + size;
  }
  if (runBlocks > 0) runs.addRun(runPfn, runBlocks, runOrder);
  return i;
}

/** Formats a fresh link page at pfn and returns its words. */
function initLinkPage(device: MemoryDevice, pfn: number): Uint32Array {
  const w = pageWords(device, pfn);
  w.fill(0, 0, W_ENTRIES);
  w[W_MAGIC] = PKRAM_LINK_MAGIC;
  return w;
}

/** Where a LinkWriter takes its link pages (a class, so every chain calls the same methods). */
export interface LinkPages {
  /** A page for the chain. @throws PkramError ENOMEM. */
  takeLinkPage(): number;
  /** The chain took page pfn (its first page when chain.head === pfn). */
  linkPageTaken(chain: LinkWriter, pfn: number): void;
}

/**
 * Appends entries to a chain, allocating link pages on demand. The chain's
 * head pointer lives in the owner's page, which the owner stores when told
 * the first page was taken.
 */
export class LinkWriter {
  head = 0;
  #tail = 0;
  #count = 0;
  /** The tail link page's words, kept while it is the tail: PKRAM's own page, never lent out. */
  #words: Uint32Array = NO_WORDS;

  constructor(
    private readonly device: MemoryDevice,
    private readonly pages: LinkPages,
  ) {}

  /**
   * Appends one entry.
   * @throws PkramError ENOMEM when a new link page is needed and none is left (nothing appended).
   */
  append(pfn: number, order: number, flags: number, index: number): void {
    if (this.#count === PKRAM_LINK_ENTRIES || this.#tail === 0) this.#newPage();
    const w = this.#words;
    const at = W_ENTRIES + this.#count * W_ENTRY;
    // pfn * 4096 as lo/hi words without a 64-bit integer: `<<` keeps pfn's low 20 bits.
    w[at] = ((pfn << 12) | flags | order) >>> 0;
    w[at + 1] = Math.floor(pfn / TWO_POW_20);
    setWordsU64(w, at + W_INDEX, index);
    w[W_COUNT] = ++this.#count;
  }

  /** Makes room for an entry: a new tail page when there is none or it is full. @throws PkramError ENOMEM. */
  ensureRoom(): void {
    if (this.#count === PKRAM_LINK_ENTRIES || this.#tail === 0) this.#newPage();
  }

  /**
   * Writes and checks folios [from, to) of a batch into the tail page, as
   * many as it has room for (see writeChecked; call ensureRoom first);
   * they count only once committed. Returns where it stopped.
   */
  writeChecked(
    pfns: ArrayLike<number>,
    order: number,
    orders: ArrayLike<number>,
    indexes: ArrayLike<number>,
    from: number,
    to: number,
    pages: number,
    runs: RunList,
  ): number {
    const stop = Math.min(to, from + PKRAM_LINK_ENTRIES - this.#count);
    return writeChecked(
      this.#words,
      this.#count,
      pfns,
      order,
      orders,
      indexes,
      from,
      stop,
      pages,
      runs,
    );
  }

  /** Counts the next n entries writeChecked wrote. */
  commit(n: number): void {
    this.#count += n;
    this.#words[W_COUNT] = this.#count;
  }

  #newPage(): void {
    const page = this.pages.takeLinkPage();
    const words = initLinkPage(this.device, page);
    if (this.#tail === 0) this.head = page;
    else {
      setWordsU64(this.#words, W_NEXT, page);
      sealLink(this.device, this.#tail);
    }
    this.#tail = page;
    this.#count = 0;
    this.#words = words;
    this.pages.linkPageTaken(this, page);
  }

  /** Seals the last link page (the others were sealed as the chain grew). */
  seal(): void {
    if (this.#tail !== 0) sealLink(this.device, this.#tail);
  }
}

/**
 * Reads a chain entry by entry. Used only on chains the walker validated (or
 * that this kernel wrote), so it checks just enough to stay in bounds.
 */
export class LinkCursor {
  #pfn: number;
  #idx = 0;
  #count = 0;
  #started = false;
  #words: Uint32Array = NO_WORDS;
  readonly #entry: LinkEntry = { pfn: 0, order: 0, flags: 0, index: 0 };

  constructor(
    private readonly device: MemoryDevice,
    head: number,
  ) {
    this.#pfn = head;
  }

  /**
   * The next entry (a shared object, overwritten by the next call), or null at the end.
   * @throws PkramError EFAULT when a link page is not one.
   */
  next(): LinkEntry | null {
    if (this.#idx >= this.#count && !this.#nextPage()) return null;
    const w = this.#words;
    const at = W_ENTRIES + this.#idx++ * W_ENTRY;
    const lo = w[at];
    const e = this.#entry;
    e.order = lo & PKRAM_ENTRY_ORDER_MASK;
    e.flags = lo & PKRAM_ENTRY_FLAGS_MASK;
    e.pfn = w[at + 1] * TWO_POW_20 + (lo >>> 12);
    e.index = w[at + W_INDEX + 1] * TWO_POW_32 + w[at + W_INDEX];
    return e;
  }

  /**
   * Reads up to pfns.length entries into the arrays, a page of entries at a
   * time; returns how many (0 at the end).
   * @throws PkramError EFAULT when a link page is not one.
   */
  nextInto(pfns: Float64Array, orders: Uint8Array, indexes: Float64Array): number {
    let n = 0;
    while (n < pfns.length && (this.#idx < this.#count || this.#nextPage())) {
      const stop = Math.min(this.#count, this.#idx + pfns.length - n);
      n = readEntries(this.#words, this.#idx, stop, pfns, orders, indexes, n);
      this.#idx = stop;
    }
    return n;
  }

  /** Moves to the next link page with entries; false at the end of the chain. */
  #nextPage(): boolean {
    while (this.#idx >= this.#count) {
      if (this.#started) this.#pfn = linkNext(this.#words);
      this.#started = true;
      if (this.#pfn === 0) return false;
      if (!Number.isSafeInteger(this.#pfn) || this.#pfn >= this.device.pages) {
        throw new PkramError('EFAULT', `link page pfn ${this.#pfn} is outside the device`);
      }
      this.#words = pageWords(this.device, this.#pfn);
      if (!isLinkPage(this.#words)) {
        throw new PkramError('EFAULT', `pfn ${this.#pfn} is not a link page`, 'metadata');
      }
      this.#count = Math.min(linkCount(this.#words), PKRAM_LINK_ENTRIES);
      this.#idx = 0;
    }
    return true;
  }
}
