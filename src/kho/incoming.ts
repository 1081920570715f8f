import { hex } from '../base/hex.js';
import type { PhysRange } from '../base/range.js';
import { FdtError } from '../fdt/errors.js';
import type { Fdt } from '../fdt/read.js';
import { crc32c } from '../memory/crc32c.js';
import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import type { BuddyAllocator } from '../mm/buddy.js';
import { MAX_PAGE_ORDER } from '../mm/buddy.js';
import type { Folio } from '../mm/folio.js';
import { pageBytes } from '../mm/page-array.js';
import { addToCells } from '../mm/page-census.js';
import {
  type BlobDescriptor,
  isBlobDescriptor,
  type KhoBlob,
  parseBlobDescriptor,
} from './blob.js';
import { readFdtAt } from './device-fdt.js';
import type { KhoIncoming } from './early.js';
import { KhoError } from './errors.js';
import {
  badEntry,
  PAGE_LIST_PFN_HI,
  PAGE_LIST_WORD_ENTRIES,
  readPageListChain,
} from './page-list.js';
import { PageListView } from './page-list-view.js';
import { forEachBlock, type KhoBlockRuns, type KhoRadixTree } from './radix.js';

/** A marker while a page list's restore claims the block (above any order + 1). */
const CLAIMING = 0xff;

/**
 * Takes a page-list chunk's `count` entries into pfns/orders from position
 * `n` on: each must name a preserved block of its order not taken yet (its
 * marker is order + 1; past the device's end the marker reads undefined),
 * and is marked taken (0). Returns the next position, or -(position + 1) of
 * the first entry refused (nothing of it taken). A leaf, so that V8 compiles
 * the per-entry loop on its own: it runs cold in an in-place successor, where
 * a 100,000-entry list had restorePageList's whole body compiled for it.
 */
function takeEntries(
  words: Uint32Array,
  count: number,
  marker: Uint8Array,
  pfns: Float64Array,
  orders: Uint8Array,
  n: number,
): number {
  const end = PAGE_LIST_WORD_ENTRIES + 2 * count;
  for (let w = PAGE_LIST_WORD_ENTRIES; w < end; w += 2, n++) {
    const lo = words[w];
    const order = lo & 0xfff;
    const pfn = words[w + 1] * PAGE_LIST_PFN_HI + (lo >>> 12);
    if (marker[pfn] !== order + 1 || order > MAX_PAGE_ORDER) return -(n + 1);
    marker[pfn] = 0;
    pfns[n] = pfn;
    orders[n] = order;
  }
  return n;
}

/**
 * What a KHO boot received and has not yet handed to its owners. Each
 * preserved block head carries a marker (its order + 1, the kernel's "KHOP"
 * magic) in a typed array indexed by pfn; restoring clears it, so a block is
 * restored at most once. Unclaimed blocks and subtrees are passed on at the
 * next finalize, or freed on request.
 */
export class KhoIncomingState {
  readonly #device: MemoryDevice;
  readonly #pages: BuddyAllocator;
  readonly #in: KhoIncoming;
  readonly #marker: Uint8Array;
  readonly #subtrees: Map<string, number>;
  #unclaimedBlocks: number;
  #unclaimedPages = 0;
  /** Unclaimed pages per census cell of 2^shift pages, kept by #claim once asked for. */
  #cells: { shift: number; pages: Map<number, number> } | null = null;

  constructor(device: MemoryDevice, pages: BuddyAllocator, incoming: KhoIncoming) {
    this.#device = device;
    this.#pages = pages;
    this.#in = incoming;
    this.#marker = pageBytes(device.pages, device.ownedForLife === true);
    this.#unclaimedBlocks = this.#mark(incoming);
    this.#subtrees = new Map(incoming.root.subtrees);
    // The predecessor's tree has been read: its pages go back to the allocator.
    for (const p of incoming.treePages) pages.releaseRange(p / PAGE_SIZE, 1);
  }

  /** The root FDT as received. */
  get rootFdt(): Uint8Array {
    return this.#in.rootFdt;
  }

  /** The order of the unclaimed preserved block starting at `pfn`, or -1. */
  orderAt(pfn: number): number {
    return Number.isInteger(pfn) && pfn >= 0 && pfn < this.#marker.length
      ? this.#marker[pfn] - 1
      : -1;
  }

  /**
   * The first pfn of [pfn, pfn + count) inside a received block not yet
   * restored, or -1: looks for a block head at every order that can cover
   * the range (about twice `count` marker reads).
   */
  firstUnclaimedIn(pfn: number, count: number): number {
    const end = Math.min(pfn + count, this.#marker.length);
    if (this.#unclaimedBlocks === 0 || !Number.isSafeInteger(pfn) || pfn < 0) return -1;
    let found = -1;
    for (let order = 0, size = 1; size < 2 * this.#marker.length; order++, size *= 2) {
      for (let head = Math.floor(pfn / size) * size; head < end; head += size) {
        if (this.#marker[head] === order + 1) {
          const at = Math.max(pfn, head);
          if (found < 0 || at < found) found = at;
          break;
        }
      }
    }
    return found;
  }

  /** @throws KhoError EINVAL when no unclaimed preserved block starts at `phys`. */
  restoreFolio(phys: number): Folio {
    const pfn = this.#pfnOf(phys);
    const order = this.orderAt(pfn);
    if (order < 0) {
      throw new KhoError(
        'EINVAL',
        `no preserved folio at ${hex(phys)} (never preserved, or restored already)`,
      );
    }
    if (order > MAX_PAGE_ORDER) {
      throw new KhoError(
        'EINVAL',
        `the block at ${hex(phys)} has order ${order}: not a folio (restore it as pages)`,
      );
    }
    this.#claim(pfn, order);
    // Reserved since early boot: made one allocated block in place, no trip through the free lists.
    this.#pages.allocReserved(pfn, order);
    return { pfn, order };
  }

  /**
   * Restores what allocPreserve returned and frees it: a folio, or a block
   * past MAX_PAGE_ORDER (reserved pages, released as a range).
   * @throws KhoError EINVAL when no unclaimed preserved block starts at `phys`.
   */
  restoreFree(phys: number): void {
    const pfn = this.#pfnOf(phys);
    const order = this.orderAt(pfn);
    if (order > MAX_PAGE_ORDER) {
      this.#release(pfn, order);
      return;
    }
    const f = this.restoreFolio(phys);
    this.#pages.freePages(f.pfn, f.order);
  }

  /** @throws KhoError EINVAL when [phys, +count pages) is not exactly preserved blocks. */
  restorePages(phys: number, count: number): PhysRange {
    const pfn = this.#pfnOf(phys);
    if (!Number.isSafeInteger(count) || count <= 0 || pfn + count > this.#marker.length) {
      throw new KhoError('EINVAL', `bad page count ${count}`);
    }
    const blocks: [number, number][] = [];
    for (let p = pfn; p < pfn + count; ) {
      const order = this.orderAt(p);
      if (order < 0 || p + 2 ** order > pfn + count) {
        throw new KhoError('EINVAL', `pages at pfn ${p} were not preserved as part of this range`);
      }
      blocks.push([p, order]);
      p += 2 ** order;
    }
    for (const [p, o] of blocks) this.#claim(p, o);
    return { base: phys, size: count * PAGE_SIZE };
  }

  /**
   * Restores every folio of a preserved page list and frees its chunk pages.
   * The list is checked whole first (so a bad one restores nothing) in one
   * pass over its entries that also claims them: a block's marker is cleared
   * as it is named (and set back if the list turns out bad), and a chunk's
   * is CLAIMING, so a block named twice, or a chunk named as an entry, is
   * caught without a second structure. O(folios), with as little done per
   * folio as possible: a successor runs this before its code is optimized.
   * @throws KhoError EFAULT (a damaged list, or an entry too large to be a folio).
   */
  restorePageList(phys: number): PageListView {
    const marker = this.#marker;
    const claimed: number[] = [];
    const undo = (pfns: Float64Array, orders: Uint8Array, n: number): void => {
      for (let i = 0; i < n; i++) marker[pfns[i]] = orders[i] + 1;
      for (const c of claimed) marker[c] = 1;
    };
    let chain: ReturnType<typeof readPageListChain>;
    try {
      chain = readPageListChain(this.#device, phys, (pfn) => {
        if (marker[pfn] === CLAIMING) return 'appears twice (a cycle)';
        if (marker[pfn] !== 1) return 'is not a preserved page';
        marker[pfn] = CLAIMING;
        claimed.push(pfn);
        return null;
      });
    } catch (err) {
      undo(new Float64Array(0), new Uint8Array(0), 0);
      throw err;
    }
    const pfns = new Float64Array(chain.total);
    const orders = new Uint8Array(chain.total);
    // Only for the error: a chunk of the list, or an entry before this one.
    const namedTwice = (pfn: number, before: number): boolean =>
      marker[pfn] === CLAIMING || pfns.subarray(0, before).includes(pfn);
    let n = 0;
    let pages = 0;
    try {
      for (const { words, count } of chain.chunks) {
        const next = takeEntries(words, count, marker, pfns, orders, n);
        if (next < 0) {
          // Entry `bad` was refused and nothing of it taken: decoded again to say why.
          const bad = -next - 1;
          const w = PAGE_LIST_WORD_ENTRIES + 2 * (bad - n);
          const order = words[w] & 0xfff;
          const pfn = words[w + 1] * PAGE_LIST_PFN_HI + (words[w] >>> 12);
          n = bad;
          if (marker[pfn] !== order + 1) throw badEntry(bad, pfn, order, namedTwice(pfn, bad));
          throw new KhoError('EFAULT', `page list entry ${bad} has order ${order}: not a folio`);
        }
        n = next;
      }
      // Reserved since early boot: made allocated blocks in place (all or nothing).
      pages = this.#pages.allocReservedBlocks(pfns, orders);
    } catch (err) {
      undo(pfns, orders, n);
      throw err;
    }
    this.#unclaimedBlocks -= n;
    this.#unclaimedPages -= pages;
    for (const c of claimed) {
      marker[c] = 1;
      this.#claim(c, 0);
      this.#pages.releaseRange(c, 1);
    }
    return new PageListView(this.#device, { pfn: pfns, order: orders }, pages);
  }

  /** @throws KhoError ENOENT, EINVAL, EPROTO, EFAULT (Kho.retrieveBlob says when). */
  retrieveBlob(name: string, accept?: readonly string[]): KhoBlob {
    const found = this.#readBlob(name, accept);
    if (!found)
      throw new KhoError('ENOENT', `no subtree '${name}' in the handover (or retrieved already)`);
    this.#drop(name, found.descriptor);
    return found.blob;
  }

  /** retrieveBlob without claiming; null when absent. */
  peekBlob(name: string, accept?: readonly string[]): KhoBlob | null {
    return this.#readBlob(name, accept)?.blob ?? null;
  }

  #readBlob(
    name: string,
    accept: readonly string[] | undefined,
  ): { blob: KhoBlob; descriptor: BlobDescriptor } | null {
    const fdt = this.peekSubtree(name);
    if (!fdt) return null;
    if (!isBlobDescriptor(fdt))
      throw new KhoError(
        'EINVAL',
        `subtree '${name}' is an FDT, not a raw blob: use retrieveSubtree`,
      );
    const d = this.#blobDescriptor(name, fdt);
    if (!d) {
      throw new KhoError(
        'EFAULT',
        `raw subtree '${name}': its data is not an unclaimed preserved block`,
      );
    }
    const compatible =
      accept === undefined ? d.compatibles[0] : accept.find((c) => d.compatibles.includes(c));
    if (compatible === undefined) {
      throw new KhoError(
        'EPROTO',
        `raw subtree '${name}' is ${JSON.stringify(d.compatibles)}, none of ${JSON.stringify(accept)}`,
      );
    }
    const bytes = this.#device.bytes(d.base, d.size).slice();
    const csum = crc32c(bytes);
    if (csum !== d.csum) {
      throw new KhoError(
        'EFAULT',
        `raw subtree '${name}': checksum ${hex(csum)}, the handover says ${hex(d.csum)}`,
      );
    }
    return { blob: { compatibles: d.compatibles, compatible, bytes }, descriptor: d };
  }

  /** A raw subtree's descriptor whose data is an unclaimed block that holds it, else null. @throws KhoError EFAULT */
  #blobDescriptor(name: string, fdt: Fdt): BlobDescriptor | null {
    const d = parseBlobDescriptor(fdt, name, this.#device.size);
    const order = this.orderAt(d.base / PAGE_SIZE);
    return order >= 0 && d.size <= 2 ** order * PAGE_SIZE ? d : null;
  }

  /** @throws KhoError ENOENT (absent or retrieved), EFAULT (not a valid FDT). */
  retrieveSubtree(name: string): Fdt {
    const fdt = this.peekSubtree(name);
    if (!fdt)
      throw new KhoError('ENOENT', `no subtree '${name}' in the handover (or retrieved already)`);
    // An FDT subtree has no data block: forgotten without reading and checking it again
    // (and without dropSubtree's "not a raw blob" error, made and caught, in every restore).
    if (hasBlobData(fdt)) this.dropSubtree(name);
    else this.#drop(name, null);
    return fdt;
  }

  /** The subtree, validated, over a copy; null when absent. @throws KhoError EFAULT. */
  peekSubtree(name: string): Fdt | null {
    const phys = this.#subtrees.get(name);
    if (phys === undefined) return null;
    const pfn = phys / PAGE_SIZE;
    const order = this.orderAt(pfn);
    if (order < 0) return null;
    try {
      return readFdtAt(this.#device, phys, 2 ** order * PAGE_SIZE);
    } catch (err) {
      if (err instanceof FdtError)
        throw new KhoError('EFAULT', `subtree '${name}': ${err.message}`);
      throw err;
    }
  }

  /**
   * Forgets an unclaimed subtree and frees its pages, and a raw subtree's
   * data block when its checksum says it is that blob's (a damaged
   * descriptor never frees a block that may be someone else's).
   */
  dropSubtree(name: string): void {
    let data: BlobDescriptor | null = null;
    try {
      data = this.#readBlob(name, undefined)?.descriptor ?? null;
    } catch (err) {
      // An FDT subtree, or a damaged raw one (its FDT may even fail to read): its data, if any, stays unclaimed.
      if (!(err instanceof KhoError || err instanceof FdtError)) throw err;
    }
    this.#drop(name, data);
  }

  #drop(name: string, data: BlobDescriptor | null): void {
    const phys = this.#subtrees.get(name);
    if (phys === undefined) return;
    this.#subtrees.delete(name);
    const pfn = phys / PAGE_SIZE;
    const order = this.orderAt(pfn);
    if (order >= 0) this.#release(pfn, order);
    // Looked up again: a corrupt descriptor may point at its own block, released just now.
    const dataOrder = data ? this.orderAt(data.base / PAGE_SIZE) : -1;
    if (data && dataOrder >= 0) this.#release(data.base / PAGE_SIZE, dataOrder);
  }

  /** Claims an unclaimed block and gives its (reserved) pages to the allocator. */
  #release(pfn: number, order: number): void {
    this.#claim(pfn, order);
    this.#pages.releaseRange(pfn, 2 ** order);
  }

  /** Names of the subtrees not retrieved. */
  subtreeNames(): string[] {
    return [...this.#subtrees.keys()].sort();
  }

  unclaimed(): { subtrees: string[]; blocks: number; bytes: number } {
    return {
      subtrees: this.subtreeNames(),
      blocks: this.#unclaimedBlocks,
      bytes: this.#unclaimedPages * PAGE_SIZE,
    };
  }

  /** Frees every unclaimed block and subtree; returns the bytes freed. */
  releaseUnclaimed(): number {
    const bytes = this.#unclaimedPages * PAGE_SIZE;
    this.#subtrees.clear();
    this.#forEachUnclaimed((pfn, order) => {
      this.#claim(pfn, order);
      const n = 2 ** order;
      // Blocks preserved at two orders overlap; the first release frees both.
      if (this.#pages.pageState(pfn) === 'reserved') this.#pages.releaseRange(pfn, n);
    });
    return bytes;
  }

  /**
   * Re-preserves what nobody claimed into the outgoing tree, so it survives
   * this kexec too. O(blocks received), and nothing when all were claimed.
   * All or nothing: when the tree runs out of pages, what was carried is unpreserved.
   * @throws KhoError ENOMEM (from the tree).
   */
  carryForward(tree: KhoRadixTree): {
    blocks: { pfn: number; order: number }[];
    subtrees: Map<string, { folio: Folio; size: number }>;
  } {
    const blocks: { pfn: number; order: number }[] = [];
    if (this.#unclaimedBlocks > 0) {
      try {
        this.#forEachUnclaimed((pfn, order) => {
          if (tree.isPreserved(pfn, order)) return;
          tree.preserve(pfn, order);
          blocks.push({ pfn, order });
        });
      } catch (err) {
        for (const b of blocks) tree.unpreserve(b.pfn, b.order);
        throw err;
      }
    }
    const subtrees = new Map<string, { folio: Folio; size: number }>();
    for (const [name, phys] of this.#subtrees) {
      const pfn = phys / PAGE_SIZE;
      const order = this.orderAt(pfn);
      if (order >= 0) subtrees.set(name, { folio: { pfn, order }, size: 2 ** order * PAGE_SIZE });
    }
    return { blocks, subtrees };
  }

  /**
   * Marks every block head; returns the blocks. A run of one order no other
   * order came before (the walk meets orders one after the other) cannot
   * meet a marker: marked by a native fill (order 0) or a strided loop.
   */
  #mark(r: KhoBlockRuns): number {
    const marker = this.#marker;
    let blocks = 0;
    let orderSeen = -1;
    let mixed = false;
    for (let i = 0; i < r.runs; i++) {
      const order = r.runOrder[i];
      const pfn = r.runPfn[i];
      const n = r.runBlocks[i];
      const size = 2 ** order;
      if (orderSeen >= 0 && order !== orderSeen) mixed = true;
      orderSeen = order;
      if (!mixed) {
        if (order === 0) marker.fill(1, pfn, pfn + n);
        else for (let b = 0; b < n; b++) marker[pfn + b * size] = order + 1;
        blocks += n;
        this.#unclaimedPages += n * size;
        continue;
      }
      for (let b = 0; b < n; b++) {
        // A pfn preserved at two orders is one block, the larger: it covers the smaller.
        const at = pfn + b * size;
        const old = marker[at];
        if (old > order) continue;
        if (old === 0) blocks++;
        else this.#unclaimedPages -= 2 ** (old - 1);
        marker[at] = order + 1;
        this.#unclaimedPages += size;
      }
    }
    return blocks;
  }

  /**
   * Adds the unclaimed pages per cell to `pages`, run by run: a cell's
   * blocks summed in a local, one map update per cell a run touches (a
   * million order-0 blocks: a few hundred updates, not a million).
   */
  #countUnclaimed(pages: Map<number, number>, shift: number): void {
    const r = this.#in;
    const marker = this.#marker;
    const cellPages = 2 ** shift;
    let cell = -1;
    let sum = 0;
    for (let i = 0; i < r.runs; i++) {
      const order = r.runOrder[i];
      const size = 2 ** order;
      const first = r.runPfn[i];
      const end = first + r.runBlocks[i] * size;
      for (let pfn = first; pfn < end; pfn += size) {
        if (marker[pfn] !== order + 1) continue;
        const c = Math.floor(pfn / cellPages);
        if (c !== cell || size > cellPages - (pfn - c * cellPages)) {
          if (sum > 0) addToCells(pages, cell * cellPages, sum, shift);
          cell = c;
          sum = 0;
          // A block past its cell's end is counted across cells at once.
          if (size > cellPages - (pfn - c * cellPages)) {
            addToCells(pages, pfn, size, shift);
            cell = -1;
            continue;
          }
        }
        sum += size;
      }
    }
    if (sum > 0) addToCells(pages, cell * cellPages, sum, shift);
  }

  #forEachUnclaimed(fn: (pfn: number, order: number) => void): void {
    forEachBlock(this.#in, (pfn, order) => {
      if (this.#marker[pfn] === order + 1) fn(pfn, order);
    });
  }

  /**
   * Unclaimed pages per cell of 2^shift pages (cell index -> pages), for
   * memory layouts: O(incoming blocks) the first time, then kept up to date
   * by every claim, O(1) each.
   */
  unclaimedPerCell(shift: number): ReadonlyMap<number, number> {
    if (this.#cells?.shift !== shift) {
      const pages = new Map<number, number>();
      this.#countUnclaimed(pages, shift);
      this.#cells = { shift, pages };
    }
    return this.#cells.pages;
  }

  #claim(pfn: number, order: number): void {
    if (this.#cells) addToCells(this.#cells.pages, pfn, 2 ** order, this.#cells.shift, -1);
    this.#marker[pfn] = 0;
    this.#unclaimedBlocks--;
    this.#unclaimedPages -= 2 ** order;
  }

  #pfnOf(phys: number): number {
    if (
      !Number.isSafeInteger(phys) ||
      phys < 0 ||
      phys % PAGE_SIZE !== 0 ||
      phys >= this.#device.size
    ) {
      throw new KhoError('EINVAL', `${hex(Number(phys))} is not a page address inside the device`);
    }
    return phys / PAGE_SIZE;
  }
}

/**
 * Whether a valid FDT is a raw subtree's descriptor. Valid is not the same as
 * shaped as expected: a tree whose structure begins with a NOP has no node
 * at offset 0, and that is no descriptor either (an FdtError from a reader).
 */
function hasBlobData(fdt: Fdt): boolean {
  try {
    return isBlobDescriptor(fdt);
  } catch (err) {
    if (err instanceof FdtError) return false;
    throw err;
  }
}
