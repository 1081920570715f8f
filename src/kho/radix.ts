/**
 * The preserved-memory tracker: a radix tree of bitmaps built in place in
 * device pages (layout in abi.ts), so a handover serializes nothing and the
 * successor walks it once.
 *
 * Keys reach 2^53, past 32-bit integer arithmetic, so they are split with
 * division by powers of two (exact for doubles) instead of shifts.
 */

import { endianness } from 'node:os';
import { LivekexecError, messageOf } from '../base/errors.js';
import { checkDeviceViews, isPageAligned, type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import {
  KHO_BITMAP_BITS,
  KHO_BITMAP_SHIFT,
  KHO_INNER_LEVELS,
  KHO_MAX_ORDER,
  KHO_ORDER_0_LOG2,
  KHO_ROOT_SLOTS_USED,
  KHO_TABLE_ENTRIES,
  KHO_TABLE_ENTRY_SIZE,
  KHO_TABLE_SHIFT,
} from './abi.js';
import { isKhoErrorCode, KhoError } from './errors.js';

/** Where the tree gets its own pages. */
export interface KhoPageSource {
  /** Physical address of a free page (zeroing it is not required); 0 or a throw when none is left. */
  allocPage(): number;
  /** Returns a page that allocPage handed out. */
  freePage(phys: number): void;
}

/** Bounds on the work a walk of an untrusted tree may do. */
export interface KhoWalkLimits {
  /** Most tree nodes (pages) accepted; default: the device's page count. */
  maxNodes?: number;
  /** Most preserved blocks accepted; default: no limit beyond the nodes' bits. */
  maxBlocks?: number;
}

/** What a successful walk found. */
export interface KhoWalkResult {
  /** Physical address of every tree node (inner and leaf): the successor reserves these too. */
  nodePhys: number[];
  /** Preserved blocks visited. */
  blocks: number;
  /** Pages in those blocks (blocks of different orders may overlap; this counts both). */
  pages: number;
}

/** A physical range handed to the successor's memory map as preserved. */
export interface KhoExtent {
  phys: number;
  size: number;
}

/** 2^i for i in 0..53, exact. */
const POW2 = new Float64Array(KHO_ORDER_0_LOG2 + 2).map((_, i) => 2 ** i);
const TWO_POW_32 = 2 ** 32;
/** Slot values at or above this in the high word point past 2^53. */
const HI_LIMIT = 2 ** (53 - 32);
/** Keys under one slot of an inner node of each level (index 0 unused). */
const SLOT_SPAN = new Float64Array(KHO_INNER_LEVELS + 1).map(
  (_, l) => 2 ** (KHO_BITMAP_SHIFT + (l - 1) * KHO_TABLE_SHIFT),
);
/** Leaves under one slot of an inner node of each level. */
const SLOT_LEAVES = SLOT_SPAN.map((span) => span / KHO_BITMAP_BITS);
const DEPTH = KHO_INNER_LEVELS + 1;

/**
 * A radix tree of bitmaps tracking preserved blocks `(pfn, order)`, each node
 * one device page from `pageSource`. Per-node child counts live in typed
 * arrays beside the tree (not in the device), so emptied nodes are freed at
 * once and the tree's size follows what is preserved.
 *
 * The last leaf used is cached with its byte view: sequential preservation
 * touches the device only once per 32768 keys. The tree's own pages are never
 * lent out while it owns them, so keeping that view is safe.
 */
export class KhoRadixTree {
  #root = 0;
  /** Node phys -> index into the counts arrays. */
  readonly #slotOf = new Map<number, number>();
  /** Per node: children present (inner) or bits set (leaf). */
  #count = new Int32Array(64);
  #freeSlots: number[] = [];
  #nextSlot = 0;
  readonly #byOrder = new Float64Array(KHO_MAX_ORDER + 1);
  #changes = 0;

  #cacheLeafKey = -1;
  #cacheSlot = -1;
  #cacheBits: Uint8Array | null = null;
  /** The level-1 node last passed (parent of up to 512 leaves), so a leaf miss rarely walks from the root. */
  #l1Key = -1;
  #l1View: DataView | null = null;

  /** Scratch for the last descent: node phys per depth and the slot taken in it. */
  readonly #pathPhys = new Float64Array(DEPTH);
  readonly #pathIdx = new Int32Array(DEPTH);

  constructor(
    readonly device: MemoryDevice,
    readonly pageSource: KhoPageSource,
  ) {}

  /** Physical address of the root node, 0 while nothing is preserved. */
  get rootPhys(): number {
    return this.#root;
  }

  /** Counts the changes to the tree: what is computed from it stays valid while this does not move. */
  get changes(): number {
    return this.#changes;
  }

  /** Number of pages the tree itself uses. */
  get metadataPageCount(): number {
    return this.#slotOf.size;
  }

  /**
   * Marks the block of 2^order pages at pfn as preserved.
   * @throws KhoError EINVAL (pfn not a multiple of 2^order, bad order, block outside the device),
   *   EEXIST (already preserved at this order), ENOMEM (no page for a node; nothing is left half-done).
   */
  preserve(pfn: number, order: number): void {
    const key = this.#key(pfn, order);
    const leafKey = Math.floor(key / KHO_BITMAP_BITS);
    const bit = key - leafKey * KHO_BITMAP_BITS;
    const bits = leafKey === this.#cacheLeafKey ? this.#cacheBits! : this.#leaf(leafKey, true)!;
    const mask = 1 << (bit & 7);
    const byte = bit >>> 3;
    if ((bits[byte] & mask) !== 0) {
      throw new KhoError('EEXIST', `pfn ${pfn} order ${order} is already preserved`);
    }
    bits[byte] |= mask;
    this.#count[this.#cacheSlot]++;
    this.#byOrder[order]++;
    this.#changes++;
  }

  /**
   * Clears the block's bit and frees any node left empty.
   * @throws KhoError EINVAL (bad arguments), ENOENT (not preserved at this order).
   */
  unpreserve(pfn: number, order: number): void {
    const key = this.#key(pfn, order);
    const leafKey = Math.floor(key / KHO_BITMAP_BITS);
    const bit = key - leafKey * KHO_BITMAP_BITS;
    const bits = leafKey === this.#cacheLeafKey ? this.#cacheBits : this.#leaf(leafKey, false);
    const mask = 1 << (bit & 7);
    const byte = bit >>> 3;
    if (bits === null || (bits[byte] & mask) === 0) {
      throw new KhoError('ENOENT', `pfn ${pfn} order ${order} is not preserved`);
    }
    bits[byte] &= ~mask;
    this.#byOrder[order]--;
    this.#changes++;
    if (--this.#count[this.#cacheSlot] === 0) {
      this.#descend(leafKey, false); // refresh the path for pruning
      this.#prune(DEPTH - 1);
    }
  }

  /**
   * Whether exactly this block (pfn, order) is preserved; a block of another
   * order covering it does not count.
   * @throws KhoError EINVAL (bad arguments).
   */
  isPreserved(pfn: number, order: number): boolean {
    const key = this.#key(pfn, order);
    const leafKey = Math.floor(key / KHO_BITMAP_BITS);
    const bit = key - leafKey * KHO_BITMAP_BITS;
    const bits = leafKey === this.#cacheLeafKey ? this.#cacheBits : this.#leaf(leafKey, false);
    return bits !== null && (bits[bit >>> 3] & (1 << (bit & 7))) !== 0;
  }

  /**
   * The first pfn of [pfn, pfn + count) that a preserved block of any order
   * covers, or -1. Only orders in use are looked at, each over the keys of
   * the blocks that can overlap the range, so a query of a few pages costs a
   * few bit tests per order in use. Out-of-device parts are never preserved.
   */
  firstPreservedIn(pfn: number, count: number): number {
    const end = Math.min(pfn + count, this.device.pages);
    if (this.#root === 0 || !Number.isSafeInteger(pfn) || !Number.isSafeInteger(count)) return -1;
    if (pfn < 0 || pfn >= end) return -1;
    let found = -1;
    for (let order = 0; order <= KHO_MAX_ORDER; order++) {
      if (this.#byOrder[order] === 0) continue;
      const size = POW2[order];
      const base = POW2[KHO_ORDER_0_LOG2 - order];
      const last = Math.floor((end - 1) / size);
      for (let block = Math.floor(pfn / size); block <= last; block++) {
        const key = base + block;
        const leafKey = Math.floor(key / KHO_BITMAP_BITS);
        const bits = leafKey === this.#cacheLeafKey ? this.#cacheBits : this.#leaf(leafKey, false);
        if (bits === null) {
          // No leaf: skip to the first block of the next leaf.
          block = (leafKey + 1) * KHO_BITMAP_BITS - base - 1;
          continue;
        }
        const bit = key - leafKey * KHO_BITMAP_BITS;
        if ((bits[bit >>> 3] & (1 << (bit & 7))) !== 0) {
          const at = Math.max(pfn, block * size);
          if (found < 0 || at < found) found = at;
          break;
        }
      }
    }
    return found;
  }

  /** Physical address of every page the tree uses (inner nodes and leaves). */
  *metadataPages(): IterableIterator<number> {
    yield* this.#slotOf.keys();
  }

  /** Preserved block count per order, orders ascending, only orders in use. */
  preservedByOrder(): Map<number, number> {
    const out = new Map<number, number>();
    for (let order = 0; order <= KHO_MAX_ORDER; order++) {
      if (this.#byOrder[order] > 0) out.set(order, this.#byOrder[order]);
    }
    return out;
  }

  /** Pages covered by preserved blocks (overlapping blocks of different orders count twice). */
  preservedPages(): number {
    let pages = 0;
    for (let order = 0; order <= KHO_MAX_ORDER; order++)
      pages += this.#byOrder[order] * POW2[order];
    return pages;
  }

  /** Unpreserves everything and returns every node page to the page source. */
  clear(): void {
    for (const phys of this.#slotOf.keys()) this.pageSource.freePage(phys);
    this.#slotOf.clear();
    this.#freeSlots = [];
    this.#nextSlot = 0;
    this.#count.fill(0);
    this.#byOrder.fill(0);
    this.#root = 0;
    this.#invalidate();
    this.#changes++;
  }

  /**
   * Walks an untrusted tree, as the successor does: validates the whole tree
   * first (every pointer page-aligned and inside the device, each node reached
   * once, root slots inside the key range, every set bit a block inside the
   * device), and only then calls `visit` for each block: higher orders first,
   * addresses increasing within an order. A corrupt tree visits nothing.
   * @throws KhoError EFAULT (corrupt tree or root address, with the reason), EINVAL (bad limits).
   *   Whatever `visit` throws passes through.
   */
  static walk(
    device: MemoryDevice,
    rootPhys: number,
    visit: (pfn: number, order: number) => void,
    limits: KhoWalkLimits = {},
  ): KhoWalkResult {
    const checked = validateTree(device, rootPhys, limits);
    const { pfn, order } = checked;
    for (let i = 0; i < checked.blocks; i++) visit(pfn[i], order[i]);
    return { nodePhys: checked.nodePhys, blocks: checked.blocks, pages: checked.pages };
  }

  #key(pfn: number, order: number): number {
    if (!Number.isInteger(order) || order < 0 || order > KHO_MAX_ORDER) {
      throw new KhoError('EINVAL', `order ${order} is not in 0..${KHO_MAX_ORDER}`);
    }
    const size = POW2[order];
    if (!Number.isInteger(pfn) || pfn < 0 || pfn % size !== 0) {
      throw new KhoError('EINVAL', `pfn ${pfn} is not a multiple of 2^${order}`);
    }
    if (pfn + size > this.device.pages) {
      throw new KhoError('EINVAL', `pfn ${pfn} order ${order} lies outside ${this.device.name}`);
    }
    return POW2[KHO_ORDER_0_LOG2 - order] + pfn / size;
  }

  /** The leaf bitmap for leafKey, made the cached leaf; null if absent and !create. */
  #leaf(leafKey: number, create: boolean): Uint8Array | null {
    let leaf = 0;
    const l1Key = Math.floor(leafKey / KHO_TABLE_ENTRIES);
    if (l1Key === this.#l1Key) {
      const off = (leafKey - l1Key * KHO_TABLE_ENTRIES) * KHO_TABLE_ENTRY_SIZE;
      const view = this.#l1View!;
      leaf = view.getUint32(off, true) + view.getUint32(off + 4, true) * TWO_POW_32;
    }
    if (leaf === 0) leaf = this.#descend(leafKey, create);
    if (leaf === 0) return null;
    this.#cacheLeafKey = leafKey;
    this.#cacheSlot = this.#slotOf.get(leaf)!;
    this.#cacheBits = this.device.bytes(leaf, PAGE_SIZE);
    return this.#cacheBits;
  }

  /**
   * Follows (or builds) the path root -> leaf for leafKey, recording it in the
   * path scratch. Returns the leaf's phys, or 0 when absent and !create.
   */
  #descend(leafKey: number, create: boolean): number {
    if (this.#root === 0) {
      if (!create) return 0;
      this.#root = this.#allocNode();
    }
    let node = this.#root;
    let view: DataView | null = null;
    for (let depth = 0; depth < DEPTH - 1; depth++) {
      const level = KHO_INNER_LEVELS - depth;
      const idx = Math.floor(leafKey / SLOT_LEAVES[level]) % KHO_TABLE_ENTRIES;
      this.#pathPhys[depth] = node;
      this.#pathIdx[depth] = idx;
      view = this.device.view(node, PAGE_SIZE);
      const off = idx * KHO_TABLE_ENTRY_SIZE;
      let child = view.getUint32(off, true) + view.getUint32(off + 4, true) * TWO_POW_32;
      if (child === 0) {
        if (!create) return 0;
        try {
          child = this.#allocNode();
        } catch (err) {
          this.#prune(depth); // unwind the nodes this call created
          throw err;
        }
        view.setUint32(off, child >>> 0, true);
        view.setUint32(off + 4, Math.floor(child / TWO_POW_32), true);
        this.#count[this.#slotOf.get(node)!]++;
      }
      node = child;
    }
    this.#pathPhys[DEPTH - 1] = node;
    this.#l1Key = Math.floor(leafKey / KHO_TABLE_ENTRIES);
    this.#l1View = view;
    return node;
  }

  /** Frees empty nodes from path depth `from` upwards, unlinking each from its parent. */
  #prune(from: number): void {
    for (let depth = from; depth >= 0; depth--) {
      const phys = this.#pathPhys[depth];
      const slot = this.#slotOf.get(phys)!;
      if (this.#count[slot] !== 0) return;
      this.#freeNode(phys, slot);
      if (depth === 0) {
        this.#root = 0;
        return;
      }
      const parent = this.#pathPhys[depth - 1];
      const off = this.#pathIdx[depth - 1] * KHO_TABLE_ENTRY_SIZE;
      const view = this.device.view(parent, PAGE_SIZE);
      view.setUint32(off, 0, true);
      view.setUint32(off + 4, 0, true);
      this.#count[this.#slotOf.get(parent)!]--;
    }
  }

  #allocNode(): number {
    let phys: number;
    try {
      phys = this.pageSource.allocPage();
    } catch (err) {
      if (err instanceof KhoError) throw err;
      // The page source's own refusal keeps its code where KHO has it, and stays the cause.
      const code = err instanceof LivekexecError && isKhoErrorCode(err.code) ? err.code : 'ENOMEM';
      throw new KhoError(code, `no page for the preserved-memory map: ${messageOf(err)}`, {
        cause: err,
      });
    }
    if (phys === 0) throw new KhoError('ENOMEM', 'no page for the preserved-memory map');
    if (
      !Number.isInteger(phys) ||
      phys < 0 ||
      !isPageAligned(phys) ||
      phys + PAGE_SIZE > this.device.size ||
      this.#slotOf.has(phys)
    ) {
      throw new KhoError('EINVAL', `page source returned an unusable page ${phys}`);
    }
    this.device.bytes(phys, PAGE_SIZE).fill(0);
    let slot = this.#freeSlots.pop();
    if (slot === undefined) {
      slot = this.#nextSlot++;
      if (slot >= this.#count.length) {
        const grown = new Int32Array(this.#count.length * 2);
        grown.set(this.#count);
        this.#count = grown;
      }
    }
    this.#count[slot] = 0;
    this.#slotOf.set(phys, slot);
    return phys;
  }

  #freeNode(phys: number, slot: number): void {
    this.#slotOf.delete(phys);
    this.#freeSlots.push(slot);
    this.#invalidate();
    this.pageSource.freePage(phys);
  }

  #invalidate(): void {
    this.#cacheLeafKey = -1;
    this.#cacheSlot = -1;
    this.#cacheBits = null;
    this.#l1Key = -1;
    this.#l1View = null;
  }
}

interface CheckedTree {
  nodePhys: number[];
  /** The blocks in walk order, `blocks` of them. */
  pfn: Float64Array;
  order: Uint8Array;
  blocks: number;
  pages: number;
}

function corrupt(reason: string): KhoError {
  return new KhoError('EFAULT', `corrupt preserved-memory map: ${reason}`);
}

// The walk reads the little-endian tree through typed arrays, in host order.
if (endianness() !== 'LE') throw new Error('kho: only little-endian hosts are supported');
const PAGE_WORDS = PAGE_SIZE / 4;

/** Tree pages are mostly zeros: compared with zeros (memcmp) a chunk at a time, read word by word only where a chunk is not. */
const CHUNK_BYTES = 256;
const ZERO_CHUNK = Buffer.alloc(CHUNK_BYTES);

function zeroChunk(page: Uint8Array, at: number): boolean {
  return ZERO_CHUNK.compare(page, at, at + CHUNK_BYTES) === 0;
}

/**
 * The 32-bit words of a tree page, as a view (pages are page-aligned in
 * their buffer): typed arrays read far faster than a DataView while the
 * walk's code is still cold, as in a successor's boot.
 */
function wordsOf(page: Uint8Array): Uint32Array {
  return new Uint32Array(page.buffer, page.byteOffset, PAGE_WORDS);
}

/**
 * Validates the whole tree without calling anything outside, collecting its
 * blocks in walk order (leaves in key order) in the one pass over the leaves.
 */
function validateTree(device: MemoryDevice, rootPhys: number, limits: KhoWalkLimits): CheckedTree {
  const maxNodes = limits.maxNodes ?? device.pages;
  const maxBlocks = limits.maxBlocks ?? Number.POSITIVE_INFINITY;
  if (!(maxNodes >= 0) || !(maxBlocks >= 0)) {
    throw new KhoError('EINVAL', 'walk limits must be non-negative numbers');
  }
  const out: CheckedTree = {
    nodePhys: [],
    pfn: new Float64Array(64),
    order: new Uint8Array(64),
    blocks: 0,
    pages: 0,
  };
  if (rootPhys === 0) return out;
  // The pages are read as 32-bit words (wordsOf); a device that cannot is refused first.
  checkDeviceViews(device);
  if (!Number.isSafeInteger(rootPhys) || rootPhys < 0) {
    throw corrupt(`root address ${rootPhys} is not a physical address`);
  }
  const seen = new Set<number>();
  const enter = (phys: number, where: string): void => {
    if (!isPageAligned(phys)) throw corrupt(`${where} points to unaligned ${hex(phys)}`);
    if (phys + PAGE_SIZE > device.size) {
      throw corrupt(`${where} points to ${hex(phys)}, outside ${device.name}`);
    }
    if (seen.has(phys))
      throw corrupt(`${where}: node ${hex(phys)} reached twice (cycle or shared)`);
    if (seen.size >= maxNodes) throw corrupt(`more than ${maxNodes} nodes`);
    seen.add(phys);
    out.nodePhys.push(phys);
  };
  const addBlock = (pfn: number, order: number): void => {
    if (pfn + POW2[order] > device.pages) {
      throw corrupt(`block pfn ${pfn} order ${order} lies outside ${device.name}`);
    }
    if (out.blocks + 1 > maxBlocks) throw corrupt(`more than ${maxBlocks} preserved blocks`);
    if (out.blocks === out.pfn.length) {
      const pfns = new Float64Array(out.pfn.length * 2);
      pfns.set(out.pfn);
      out.pfn = pfns;
      const orders = new Uint8Array(out.order.length * 2);
      orders.set(out.order);
      out.order = orders;
    }
    out.pfn[out.blocks] = pfn;
    out.order[out.blocks++] = order;
    out.pages += POW2[order];
  };
  // Depth is fixed by the key layout, so this recursion is at most 6 deep.
  const visitNode = (phys: number, level: number, keyBase: number): void => {
    const page = device.bytes(phys, PAGE_SIZE);
    const words = wordsOf(page);
    if (level === 0) {
      scanLeaf(page, words, phys, keyBase / KHO_BITMAP_BITS, addBlock);
      return;
    }
    for (let idx = 0; idx < KHO_TABLE_ENTRIES; idx++) {
      const at = idx * KHO_TABLE_ENTRY_SIZE;
      if (at % CHUNK_BYTES === 0 && zeroChunk(page, at)) {
        idx += CHUNK_BYTES / KHO_TABLE_ENTRY_SIZE - 1;
        continue;
      }
      const lo = words[2 * idx];
      const hi = words[2 * idx + 1];
      if (lo === 0 && hi === 0) continue;
      const where = `level-${level} node ${hex(phys)} slot ${idx}`;
      if (level === KHO_INNER_LEVELS && idx >= KHO_ROOT_SLOTS_USED) {
        throw corrupt(`${where} is beyond the key range`);
      }
      if (hi >= HI_LIMIT) throw corrupt(`${where} points above 2^53`);
      const child = hi * TWO_POW_32 + lo;
      enter(child, where);
      visitNode(child, level - 1, keyBase + idx * SLOT_SPAN[level]);
    }
  };
  enter(rootPhys, 'root');
  visitNode(rootPhys, KHO_INNER_LEVELS, 0);
  return out;
}

/**
 * Calls fn(pfn, order) for each set bit of a leaf, in key order, 32 bits at a
 * time. A key with no marker bit (key 0) is corrupt.
 */
function scanLeaf(
  page: Uint8Array,
  words: Uint32Array,
  phys: number,
  leafKey: number,
  fn: (pfn: number, order: number) => void,
): void {
  const keyBase = leafKey * KHO_BITMAP_BITS;
  // Above leaf 0 every key of the leaf shares its highest bit, hence one order.
  const leafOrder = leafKey > 0 ? KHO_ORDER_0_LOG2 - (highBit(leafKey) + KHO_BITMAP_SHIFT) : -1;
  for (let w = 0; w < PAGE_WORDS; w++) {
    if (w % (CHUNK_BYTES / 4) === 0 && zeroChunk(page, w * 4)) {
      w += CHUNK_BYTES / 4 - 1;
      continue;
    }
    let word = words[w];
    while (word !== 0) {
      const b = 31 - Math.clz32(word & -word);
      word &= word - 1;
      const key = keyBase + w * 32 + b;
      if (key === 0) throw corrupt(`leaf ${hex(phys)} sets key 0, which has no order`);
      const order = leafOrder >= 0 ? leafOrder : KHO_ORDER_0_LOG2 - highBit(key);
      fn((key - POW2[KHO_ORDER_0_LOG2 - order]) * POW2[order], order);
    }
  }
}

/** Index of the highest set bit of a positive integer below 2^53. */
function highBit(n: number): number {
  const hi = Math.floor(n / TWO_POW_32);
  return hi > 0 ? 63 - Math.clz32(hi) : 31 - Math.clz32(n);
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/**
 * The preserved memory of a tree as at most maxEntries page-granular ranges,
 * sorted, for the memory map handed to the successor: neighbours and overlaps
 * are merged, then the smallest gaps are closed (rounding outwards) until the
 * count fits. The tree's own pages are included unless `includeMetadata` is false.
 * @throws KhoError EINVAL (maxEntries not a positive integer), EFAULT (corrupt tree).
 */
/**
 * Builds page runs from preserved blocks in walk order (blocks of one order
 * come with increasing pfn, so runs merge on the fly), as coalescedExtents
 * does; a successor that collected the blocks itself gets the very same
 * extents without a second walk.
 */
export class BlockRuns {
  readonly starts: number[] = [];
  readonly ends: number[] = [];
  #runStart = -1;
  #runEnd = -1;

  add(pfn: number, order: number): void {
    if (pfn === this.#runEnd) {
      this.#runEnd = pfn + POW2[order];
      return;
    }
    if (this.#runStart >= 0) {
      this.starts.push(this.#runStart);
      this.ends.push(this.#runEnd);
    }
    this.#runStart = pfn;
    this.#runEnd = pfn + POW2[order];
  }

  /** Closes the open run; the exact runs are then in starts/ends. */
  close(): this {
    if (this.#runStart >= 0) {
      this.starts.push(this.#runStart);
      this.ends.push(this.#runEnd);
      this.#runStart = -1;
      this.#runEnd = -1;
    }
    return this;
  }

  /** At most `maxEntries` extents covering the runs and the tree's own pages. */
  extents(nodePhys: readonly number[], maxEntries: number, includeMetadata = true): KhoExtent[] {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new KhoError('EINVAL', `maxEntries ${maxEntries} is not a positive integer`);
    }
    this.close();
    const starts = [...this.starts];
    const ends = [...this.ends];
    if (includeMetadata) {
      for (const phys of nodePhys) {
        starts.push(phys / PAGE_SIZE);
        ends.push(phys / PAGE_SIZE + 1);
      }
    }
    return mergeRuns(starts, ends, maxEntries).map(([st, e]) => ({
      phys: st * PAGE_SIZE,
      size: (e - st) * PAGE_SIZE,
    }));
  }
}

export function coalescedExtents(
  device: MemoryDevice,
  rootPhys: number,
  maxEntries: number,
  options: { includeMetadata?: boolean; limits?: KhoWalkLimits } = {},
): KhoExtent[] {
  if (!Number.isInteger(maxEntries) || maxEntries < 1) {
    throw new KhoError('EINVAL', `maxEntries ${maxEntries} is not a positive integer`);
  }
  const runs = new BlockRuns();
  const result = KhoRadixTree.walk(
    device,
    rootPhys,
    (pfn, order) => runs.add(pfn, order),
    options.limits,
  );
  return runs.extents(result.nodePhys, maxEntries, options.includeMetadata ?? true);
}

/** Sorts and merges [start, end) page runs, then closes the smallest gaps down to maxEntries. */
function mergeRuns(starts: number[], ends: number[], maxEntries: number): [number, number][] {
  const order = starts.map((_, i) => i).sort((a, b) => starts[a] - starts[b]);
  const merged: [number, number][] = [];
  for (const i of order) {
    const last = merged[merged.length - 1];
    if (last !== undefined && starts[i] <= last[1]) last[1] = Math.max(last[1], ends[i]);
    else merged.push([starts[i], ends[i]]);
  }
  const excess = merged.length - maxEntries;
  if (excess <= 0) return merged;
  // Gap i lies between merged[i] and merged[i + 1]; close the `excess` smallest.
  const gaps = merged
    .slice(0, -1)
    .map((_, i) => i)
    .sort((a, b) => merged[a + 1][0] - merged[a][1] - (merged[b + 1][0] - merged[b][1]) || a - b);
  const closed = new Uint8Array(merged.length);
  for (let k = 0; k < excess; k++) closed[gaps[k]] = 1;
  const out: [number, number][] = [];
  for (let i = 0; i < merged.length; i++) {
    if (i > 0 && closed[i - 1]) out[out.length - 1][1] = merged[i][1];
    else out.push([merged[i][0], merged[i][1]]);
  }
  return out;
}
