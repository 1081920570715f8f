/**
 * Link-page streams: a singly linked chain of link pages, each holding up to
 * PKRAM_LINK_ENTRIES entries `phys | flags | order` plus an index (abi.ts).
 * The folio stream and the byte stream of an object are both such chains.
 * Counts are written as each entry is appended, so the chain in the device is
 * walkable at any moment (discard, relocation, a crash of the program); each
 * page is sealed (seal.ts) once the next one is linked or the writer is sealed.
 */

import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import { getU64, setU64 } from './_u64.js';
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
} from './abi.js';
import { PkramError } from './errors.js';
import { sealPage } from './seal.js';

/** One decoded link entry. */
export interface LinkEntry {
  pfn: number;
  order: number;
  flags: number;
  index: number;
}

/** Formats a fresh link page at pfn. */
export function initLinkPage(device: MemoryDevice, pfn: number): void {
  const view = device.view(pfn * PAGE_SIZE, LINK_OFF_ENTRIES);
  view.setUint32(LINK_OFF_MAGIC, PKRAM_LINK_MAGIC, true);
  view.setUint32(LINK_OFF_COUNT, 0, true);
  setU64(view, LINK_OFF_NEXT, 0);
}

/** Reads entry i of a link page without validation (the walker validates). */
export function readEntry(view: DataView, i: number, out: LinkEntry): LinkEntry {
  const off = LINK_OFF_ENTRIES + i * LINK_ENTRY_SIZE;
  const lo = view.getUint32(off, true);
  const hi = view.getUint32(off + 4, true);
  out.order = lo & PKRAM_ENTRY_ORDER_MASK;
  out.flags = lo & PKRAM_ENTRY_FLAGS_MASK;
  out.pfn = hi * 2 ** 20 + ((lo >>> 12) >>> 0);
  out.index = getU64(view, off + LINK_ENTRY_OFF_INDEX);
  return out;
}

/**
 * Appends entries to a chain, allocating link pages on demand. The chain's
 * head pointer lives in the owner's page; `onNewHead` stores it there.
 */
export class LinkWriter {
  head = 0;
  #tail = 0;
  #count = 0;
  /**
   * The tail link page's words, kept while it is the tail: PKRAM's own page,
   * never lent out, so the view stays valid; an append then allocates
   * nothing (a DataView per entry was most of a save's garbage collections).
   */
  #words: Uint32Array | null = null;

  constructor(
    private readonly device: MemoryDevice,
    private readonly allocPage: () => number,
    private readonly onNewHead: (pfn: number) => void,
  ) {}

  /**
   * Appends one entry.
   * @throws PkramError ENOMEM when a new link page is needed and none is left (nothing appended).
   */
  append(pfn: number, order: number, flags: number, index: number): void {
    if (this.#tail === 0 || this.#count === PKRAM_LINK_ENTRIES) {
      const page = this.allocPage();
      initLinkPage(this.device, page);
      if (this.#tail === 0) {
        this.head = page;
        this.onNewHead(page);
      } else {
        setU64(this.device.view(this.#tail * PAGE_SIZE, LINK_OFF_ENTRIES), LINK_OFF_NEXT, page);
        sealPage(this.device, this.#tail, 'link');
      }
      this.#tail = page;
      this.#count = 0;
      const bytes = this.device.bytes(page * PAGE_SIZE, PAGE_SIZE);
      this.#words = new Uint32Array(bytes.buffer, bytes.byteOffset, PAGE_SIZE / 4);
    }
    const w = this.#words as Uint32Array;
    const at = (LINK_OFF_ENTRIES + this.#count * LINK_ENTRY_SIZE) / 4;
    // Little-endian words (the project's hosts): pfn * 4096 as lo/hi without a 64-bit integer.
    w[at] = ((pfn % 2 ** 20) * PAGE_SIZE + flags + order) >>> 0;
    w[at + 1] = Math.floor(pfn / 2 ** 20);
    w[at + LINK_ENTRY_OFF_INDEX / 4] = index % 2 ** 32;
    w[at + LINK_ENTRY_OFF_INDEX / 4 + 1] = Math.floor(index / 2 ** 32);
    this.#count++;
    w[LINK_OFF_COUNT / 4] = this.#count;
  }

  /** Seals the last link page (the others were sealed as the chain grew). */
  seal(): void {
    if (this.#tail !== 0) sealPage(this.device, this.#tail, 'link');
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
  #view: DataView | null = null;
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
    while (this.#view === null || this.#idx >= this.#count) {
      if (this.#view !== null) this.#pfn = getU64(this.#view, LINK_OFF_NEXT);
      if (this.#pfn === 0) return null;
      if (!Number.isSafeInteger(this.#pfn) || this.#pfn >= this.device.pages) {
        throw new PkramError('EFAULT', `link page pfn ${this.#pfn} is outside the device`);
      }
      this.#view = this.device.view(this.#pfn * PAGE_SIZE, PAGE_SIZE);
      if (this.#view.getUint32(LINK_OFF_MAGIC, true) !== PKRAM_LINK_MAGIC) {
        throw new PkramError('EFAULT', `pfn ${this.#pfn} is not a link page`, 'metadata');
      }
      this.#count = Math.min(this.#view.getUint32(LINK_OFF_COUNT, true), PKRAM_LINK_ENTRIES);
      this.#idx = 0;
    }
    return readEntry(this.#view, this.#idx++, this.#entry);
  }
}
