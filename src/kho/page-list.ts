import { hex } from '../base/hex.js';
import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import type { Folio } from '../mm/folio.js';
import {
  KHO_PAGE_LIST_ENTRIES_PER_CHUNK,
  KHO_PAGE_LIST_MAGIC,
  KHO_PAGE_LIST_OFF_COUNT,
  KHO_PAGE_LIST_OFF_ENTRIES,
  KHO_PAGE_LIST_OFF_MAGIC,
  KHO_PAGE_LIST_OFF_NEXT,
} from './abi.js';
import { KhoError } from './errors.js';

/** What preservePageList needs from KHO. */
export interface PageListHost {
  readonly device: MemoryDevice;
  preserveFolio(f: Folio): void;
  unpreserveFolio(f: Folio): void;
  allocPreserve(size: number): Folio;
  unpreserveFree(f: Folio): void;
}

/** The folios of a page list in list order, as typed arrays (no object per folio). */
export interface PageListEntries {
  /** Head pfn of each folio. */
  readonly pfn: Float64Array;
  /** Order of each folio. */
  readonly order: Uint8Array;
}

/** Whether a value is a page list's entries (equal-length pfn and order arrays). */
export function isPageListEntries(v: unknown): v is PageListEntries {
  if (typeof v !== 'object' || v === null) return false;
  const { pfn, order } = v as { pfn?: unknown; order?: unknown };
  return pfn instanceof Float64Array && order instanceof Uint8Array && pfn.length === order.length;
}

// Entries and links are u64 (abi.ts), read and written as two little-endian
// u32 words: a BigInt per entry cost more than the rest of a restore.
/** Word index of a chunk's first entry (low word: pfn low bits << 12 | order; high word: pfn >> 20). */
export const PAGE_LIST_WORD_ENTRIES = KHO_PAGE_LIST_OFF_ENTRIES / 4;
const WORD_NEXT = KHO_PAGE_LIST_OFF_NEXT / 4;
const TWO_32 = 2 ** 32;
/** An entry is phys | order, order in bits 0..11: pfn = hi * 2^20 + (lo >>> 12). */
export const PAGE_LIST_PFN_HI = 2 ** 20;

function chunkWords(device: MemoryDevice, phys: number): Uint32Array {
  const b = device.bytes(phys, PAGE_SIZE);
  return new Uint32Array(b.buffer, b.byteOffset, PAGE_SIZE / 4);
}

/**
 * Preserves the folios of `list` (objects, or typed arrays as a restored
 * list gives them) and a chain of chunk pages listing them (layout in
 * abi.ts); all or nothing.
 * @returns the physical address of the first chunk (0 for an empty list).
 */
export function preservePageList(
  host: PageListHost,
  list: readonly Folio[] | PageListEntries,
): number {
  const count = Array.isArray(list) ? list.length : (list as PageListEntries).pfn.length;
  const folio = Array.isArray(list)
    ? (i: number): Folio => (list as readonly Folio[])[i]
    : (i: number): Folio => ({
        pfn: (list as PageListEntries).pfn[i],
        order: (list as PageListEntries).order[i],
      });
  let done = 0;
  const chunks: Folio[] = [];
  try {
    for (; done < count; done++) host.preserveFolio(folio(done));
    let next = 0;
    for (
      let start =
        Math.floor((count - 1) / KHO_PAGE_LIST_ENTRIES_PER_CHUNK) * KHO_PAGE_LIST_ENTRIES_PER_CHUNK;
      start >= 0;
      start -= KHO_PAGE_LIST_ENTRIES_PER_CHUNK
    ) {
      const chunk = host.allocPreserve(PAGE_SIZE);
      chunks.push(chunk);
      const n = Math.min(KHO_PAGE_LIST_ENTRIES_PER_CHUNK, count - start);
      const w = chunkWords(host.device, chunk.pfn * PAGE_SIZE);
      w[KHO_PAGE_LIST_OFF_MAGIC / 4] = KHO_PAGE_LIST_MAGIC;
      w[KHO_PAGE_LIST_OFF_COUNT / 4] = n;
      w[WORD_NEXT] = next % TWO_32;
      w[WORD_NEXT + 1] = Math.floor(next / TWO_32);
      for (let i = 0; i < n; i++) {
        const f = folio(start + i);
        w[PAGE_LIST_WORD_ENTRIES + 2 * i] =
          ((f.pfn % PAGE_LIST_PFN_HI) * PAGE_SIZE + f.order) >>> 0;
        w[PAGE_LIST_WORD_ENTRIES + 2 * i + 1] = Math.floor(f.pfn / PAGE_LIST_PFN_HI);
      }
      next = chunk.pfn * PAGE_SIZE;
    }
    return next;
  } catch (err) {
    for (const c of chunks) host.unpreserveFree(c);
    for (let i = 0; i < done; i++) host.unpreserveFolio(folio(i));
    throw err;
  }
}

/** Undoes preservePageList for a list this generation made. */
export function unpreservePageList(
  host: PageListHost,
  phys: number,
  orderAt: (pfn: number) => number,
): void {
  const list = readPageList(host.device, phys, orderAt);
  for (let i = 0; i < list.pfn.length; i++) {
    host.unpreserveFolio({ pfn: list.pfn[i], order: list.order[i] });
  }
  for (const c of list.chunks) host.unpreserveFree({ pfn: c, order: 0 });
}

/** Where one chunk's entries are: its words and its count. */
export interface PageListChunk {
  readonly pfn: number;
  readonly words: Uint32Array;
  readonly count: number;
}

/**
 * Walks a page list's chain of chunks: each a page inside the device with the
 * magic and a count in range, and accepted by `take(pfn)`, which returns why
 * not (a chunk that is not a preserved page, or seen before: a cycle).
 * O(chunks); the entries are not read.
 * @throws KhoError EFAULT with the reason.
 */
export function readPageListChain(
  device: MemoryDevice,
  phys: number,
  take: (pfn: number) => string | null,
): { chunks: PageListChunk[]; total: number } {
  const chunks: PageListChunk[] = [];
  let total = 0;
  for (let at = phys; at !== 0; ) {
    if (!Number.isSafeInteger(at) || at % PAGE_SIZE !== 0 || at < 0 || at >= device.size) {
      throw new KhoError('EFAULT', `${chunkName(at)} is not a page inside the device`);
    }
    const pfn = at / PAGE_SIZE;
    const refused = take(pfn);
    if (refused !== null) throw new KhoError('EFAULT', `${chunkName(at)} ${refused}`);
    const words = chunkWords(device, at);
    if (words[KHO_PAGE_LIST_OFF_MAGIC / 4] !== KHO_PAGE_LIST_MAGIC) {
      throw new KhoError('EFAULT', `${chunkName(at)} has a bad magic`);
    }
    const count = words[KHO_PAGE_LIST_OFF_COUNT / 4];
    if (count > KHO_PAGE_LIST_ENTRIES_PER_CHUNK) {
      throw new KhoError('EFAULT', `${chunkName(at)} claims ${count} entries`);
    }
    total += count;
    chunks.push({ pfn, words, count });
    const hi = words[WORD_NEXT + 1];
    if (hi >= PAGE_LIST_PFN_HI * 2) throw new KhoError('EFAULT', 'page list link is past 2^53');
    at = hi * TWO_32 + words[WORD_NEXT];
  }
  return { chunks, total };
}

/** A chunk's name for an error, made only then: a list of a million entries has ~2,000 chunks. */
function chunkName(at: number): string {
  return `page list chunk ${hex(at)}`;
}

/** Entry `i` of a chunk: its pfn and order (order in the low 12 bits of the u64). */
function entryPfn(words: Uint32Array, i: number): number {
  return (
    words[PAGE_LIST_WORD_ENTRIES + 2 * i + 1] * PAGE_LIST_PFN_HI +
    (words[PAGE_LIST_WORD_ENTRIES + 2 * i] >>> 12)
  );
}

function entryOrder(words: Uint32Array, i: number): number {
  return words[PAGE_LIST_WORD_ENTRIES + 2 * i] & 0xfff;
}

/** Why entry `n` (pfn, order) cannot be restored: the EFAULT to throw. */
export function badEntry(n: number, pfn: number, order: number, twice: boolean): KhoError {
  return new KhoError(
    'EFAULT',
    twice
      ? `page list entry ${n} (pfn ${pfn}) is named twice or is a chunk of the list`
      : `page list entry ${n} (pfn ${pfn}, order ${order}) is not a preserved block`,
  );
}

/**
 * Reads and validates a page list: every chunk a preserved order-0 block with
 * the magic, counts in range, no cycle, every entry a preserved block of its
 * order, named once and not a chunk of the list (so restoring the entries
 * one by one cannot fail halfway). `orderAt(pfn)` says which blocks are
 * preserved (-1 for none). O(entries + device pages / 8): one bit per device
 * page finds a block named twice. (A successor's restore checks the same
 * with its markers, in one pass: KhoIncomingState.restorePageList.)
 * @throws KhoError EFAULT with the reason; nothing is changed.
 */
export function readPageList(
  device: MemoryDevice,
  phys: number,
  orderAt: (pfn: number) => number,
): PageListEntries & { chunks: number[] } {
  const seen = new Uint32Array(Math.ceil(device.pages / 32));
  /** Marks `pfn` (inside the device) seen; false when it was already. */
  const mark = (pfn: number): boolean => {
    const bit = 1 << (pfn & 31);
    const w = Math.floor(pfn / 32);
    if ((seen[w] & bit) !== 0) return false;
    seen[w] |= bit;
    return true;
  };
  const { chunks, total } = readPageListChain(device, phys, (pfn) =>
    orderAt(pfn) !== 0 ? 'is not a preserved page' : mark(pfn) ? null : 'appears twice (a cycle)',
  );
  const pfns = new Float64Array(total);
  const orders = new Uint8Array(total);
  let n = 0;
  for (const { words, count } of chunks) {
    for (let i = 0; i < count; i++, n++) {
      const order = entryOrder(words, i);
      const pfn = entryPfn(words, i);
      // orderAt is -1 outside the device, so a pfn it accepts can be marked.
      if (orderAt(pfn) !== order) throw badEntry(n, pfn, order, false);
      if (!mark(pfn)) throw badEntry(n, pfn, order, true);
      pfns[n] = pfn;
      orders[n] = order;
    }
  }
  return { chunks: chunks.map((c) => c.pfn), pfn: pfns, order: orders };
}
