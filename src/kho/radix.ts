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
import { hex } from '../base/hex.js';
import type { PhysRange } from '../base/range.js';
import { getU64, setU64 } from '../base/u64.js';
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

/**
 * A tree's blocks as runs, in walk order (leaves in key order): `runBlocks[i]`
 * blocks of 2^runOrder[i] pages from runPfn[i], `runs` of them. A million
 * consecutive order-0 blocks are one run.
 */
export interface KhoBlockRuns {
  readonly runPfn: Float64Array;
  readonly runBlocks: Float64Array;
  readonly runOrder: Uint8Array;
  readonly runs: number;
}

/** Calls `fn` once per block of `r`, in walk order. */
export function forEachBlock(r: KhoBlockRuns, fn: (pfn: number, order: number) => void): void {
  for (let i = 0; i < r.runs; i++) {
    const order = r.runOrder[i];
    const pfn = r.runPfn[i];
    for (let b = 0; b < r.runBlocks[i]; b++) fn(pfn + b * POW2[order], order);
  }
}

/**
 * "No cached leaf / parent": stand-ins rather than null, so these fields keep
 * one type and the tree one hidden class (a field going from null to a view
 * makes V8 drop the code it optimized for the tree).
 */
const NO_BITS = new Uint8Array(0);
const NO_VIEW: DataView = new DataView(new ArrayBuffer(0));

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
  /** A leaf key found absent, and the change count it was absent at. */
  #missLeafKey = -1;
  #missChanges = -1;
  #cacheBits: Uint8Array = NO_BITS;
  /** The level-1 node last passed (parent of up to 512 leaves), so a leaf miss rarely walks from the root. */
  #l1Key = -1;
  #l1View: DataView = NO_VIEW;

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
    const bits = leafKey === this.#cacheLeafKey ? this.#cacheBits : this.#leaf(leafKey, true)!;
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
   * Marks `blocks` consecutive blocks of 2^order pages from pfn as preserved,
   * all or nothing: consecutive blocks of one order are consecutive keys, so
   * a run costs a few byte fills per leaf it spans, not a step per block.
   * @throws KhoError EINVAL (bad arguments, a block outside the device),
   *   EEXIST (a block already preserved at this order), ENOMEM.
   */
  preserveRun(pfn: number, blocks: number, order: number): void {
    const key0 = this.#runKeys(pfn, blocks, order);
    let done = 0;
    try {
      while (done < blocks) {
        const key = key0 + done;
        const leafKey = Math.floor(key / KHO_BITMAP_BITS);
        const bit = key - leafKey * KHO_BITMAP_BITS;
        const n = Math.min(blocks - done, KHO_BITMAP_BITS - bit);
        const bits = leafKey === this.#cacheLeafKey ? this.#cacheBits : this.#leaf(leafKey, true)!;
        if (anyBitSet(bits, bit, bit + n)) {
          throw new KhoError(
            'EEXIST',
            `a block of pfn ${pfn} + ${blocks} x 2^${order} pages is already preserved`,
          );
        }
        setBits(bits, bit, bit + n, 0xff);
        this.#count[this.#cacheSlot] += n;
        this.#byOrder[order] += n;
        this.#changes++;
        done += n;
      }
    } catch (err) {
      if (done > 0) this.unpreserveRun(pfn, done, order);
      throw err;
    }
  }

  /**
   * Clears `blocks` consecutive blocks of 2^order pages from pfn, all or
   * nothing, and frees the nodes left empty.
   * @throws KhoError EINVAL (bad arguments), ENOENT (a block not preserved at this order).
   */
  unpreserveRun(pfn: number, blocks: number, order: number): void {
    const key0 = this.#runKeys(pfn, blocks, order);
    for (let done = 0; done < blocks; ) {
      const key = key0 + done;
      const leafKey = Math.floor(key / KHO_BITMAP_BITS);
      const bit = key - leafKey * KHO_BITMAP_BITS;
      const n = Math.min(blocks - done, KHO_BITMAP_BITS - bit);
      const bits = leafKey === this.#cacheLeafKey ? this.#cacheBits : this.#leaf(leafKey, false);
      if (bits === null || !allBitsSet(bits, bit, bit + n)) {
        throw new KhoError(
          'ENOENT',
          `a block of pfn ${pfn} + ${blocks} x 2^${order} pages is not preserved`,
        );
      }
      done += n;
    }
    for (let done = 0; done < blocks; ) {
      const key = key0 + done;
      const leafKey = Math.floor(key / KHO_BITMAP_BITS);
      const bit = key - leafKey * KHO_BITMAP_BITS;
      const n = Math.min(blocks - done, KHO_BITMAP_BITS - bit);
      const bits = leafKey === this.#cacheLeafKey ? this.#cacheBits : this.#leaf(leafKey, false)!;
      setBits(bits, bit, bit + n, 0);
      this.#byOrder[order] -= n;
      this.#changes++;
      done += n;
      this.#count[this.#cacheSlot] -= n;
      if (this.#count[this.#cacheSlot] === 0) {
        this.#descend(leafKey, false); // refresh the path for pruning
        this.#prune(DEPTH - 1);
      }
    }
  }

  /**
   * Whether any of `blocks` consecutive blocks of 2^order pages from pfn is
   * preserved at that order (isPreserved for a run, a memcmp per leaf).
   * @throws KhoError EINVAL (bad arguments).
   */
  anyPreserved(pfn: number, blocks: number, order: number): boolean {
    const key0 = this.#runKeys(pfn, blocks, order);
    if (this.#root === 0) return false;
    for (let done = 0; done < blocks; ) {
      const key = key0 + done;
      const leafKey = Math.floor(key / KHO_BITMAP_BITS);
      const bit = key - leafKey * KHO_BITMAP_BITS;
      const n = Math.min(blocks - done, KHO_BITMAP_BITS - bit);
      const bits = leafKey === this.#cacheLeafKey ? this.#cacheBits : this.#leaf(leafKey, false);
      if (bits !== null && anyBitSet(bits, bit, bit + n)) return true;
      done += n;
    }
    return false;
  }

  /** The first key of a run, its first and last blocks checked. @throws KhoError EINVAL. */
  #runKeys(pfn: number, blocks: number, order: number): number {
    if (!Number.isSafeInteger(blocks) || blocks < 1) {
      throw new KhoError('EINVAL', `a run of ${blocks} blocks`);
    }
    const key0 = this.#key(pfn, order);
    if (blocks > 1) this.#key(pfn + (blocks - 1) * POW2[order], order);
    return key0;
  }

  /**
   * Whether exactly this block (pfn, order) is preserved; a block of another
   * order covering it does not count.
   * @throws KhoError EINVAL (bad arguments).
   */
  isPreserved(pfn: number, order: number): boolean {
    this.#checkBlock(pfn, order);
    // Nothing preserved, or the leaf last found missing while nothing changed: no lookup (and no
    // boxed key), which is what a save into memory the tree does not cover meets block after block.
    if (this.#root === 0) return false;
    const key = POW2[KHO_ORDER_0_LOG2 - order] + pfn / POW2[order];
    const leafKey = Math.floor(key / KHO_BITMAP_BITS);
    if (leafKey === this.#missLeafKey && this.#missChanges === this.#changes) return false;
    const bit = key - leafKey * KHO_BITMAP_BITS;
    const bits = leafKey === this.#cacheLeafKey ? this.#cacheBits : this.#leaf(leafKey, false);
    if (bits === null) {
      this.#missLeafKey = leafKey;
      this.#missChanges = this.#changes;
      return false;
    }
    return (bits[bit >>> 3] & (1 << (bit & 7))) !== 0;
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
    return KhoRadixTree.walkRuns(
      device,
      rootPhys,
      (pfn, blocks, order) => {
        for (let i = 0; i < blocks; i++) visit(pfn + i * POW2[order], order);
      },
      limits,
    );
  }

  /**
   * walk, one call per run of consecutive blocks of one order (`blocks`
   * blocks of 2^order pages from pfn): a densely preserved leaf costs a step
   * per 32 blocks, not per block. Same validation and order as walk.
   * @throws KhoError as walk. Whatever `visit` throws passes through.
   */
  static walkRuns(
    device: MemoryDevice,
    rootPhys: number,
    visit: (pfn: number, blocks: number, order: number) => void,
    limits: KhoWalkLimits = {},
  ): KhoWalkResult {
    return KhoRadixTree.check(device, rootPhys, limits).visit(visit);
  }

  /**
   * Validates an untrusted tree as walk does and keeps what it found: a
   * KhoTreeCheck that walks (visit) and takes the tree over (adoptChecked)
   * without validating it again, for a boot that reads the tree early and
   * takes it over later.
   * @throws KhoError as walk.
   */
  static check(device: MemoryDevice, rootPhys: number, limits: KhoWalkLimits = {}): KhoTreeCheck {
    return new KhoTreeCheck(device, rootPhys, validateTree(device, rootPhys, limits));
  }

  /**
   * The whole tree validated as walk does, its blocks returned as runs
   * (no call per block or run): what a successor's boot keeps of the handover.
   * @throws KhoError as walk.
   */
  static readRuns(
    device: MemoryDevice,
    rootPhys: number,
    limits: KhoWalkLimits = {},
  ): KhoWalkResult & KhoBlockRuns {
    return validateTree(device, rootPhys, limits);
  }

  /**
   * Takes over a tree another kernel built, in place: validated as walk
   * does, then its pages become this tree's (freed through `pageSource` as
   * they empty). O(tree pages), not O(blocks). `visit` sees its runs as walkRuns.
   * @throws KhoError as walk.
   */
  static adopt(
    device: MemoryDevice,
    pageSource: KhoPageSource,
    rootPhys: number,
    visit: ((pfn: number, blocks: number, order: number) => void) | null,
    limits: KhoWalkLimits = {},
  ): { tree: KhoRadixTree; walk: KhoWalkResult } {
    return KhoRadixTree.adoptChecked(
      pageSource,
      KhoRadixTree.check(device, rootPhys, limits),
      visit,
    );
  }

  /**
   * adopt, from a check made before: the caller vouches that the tree's
   * pages did not change since (e.g. by their checksum, treeChecksum).
   */
  static adoptChecked(
    pageSource: KhoPageSource,
    check: KhoTreeCheck,
    visit: ((pfn: number, blocks: number, order: number) => void) | null,
  ): { tree: KhoRadixTree; walk: KhoWalkResult } {
    const { device, rootPhys } = check;
    const checked = check.checked;
    const walk = visit !== null ? check.visit(visit) : check.result();
    const tree = new KhoRadixTree(device, pageSource);
    tree.#root = rootPhys;
    tree.#count = new Int32Array(Math.max(64, checked.nodePhys.length));
    checked.nodePhys.forEach((phys, slot) => {
      tree.#slotOf.set(phys, slot);
      tree.#count[slot] = checked.nodeCount[slot];
    });
    tree.#nextSlot = checked.nodePhys.length;
    for (let i = 0; i < checked.runs; i++) {
      tree.#byOrder[checked.runOrder[i]] += checked.runBlocks[i];
    }
    return { tree, walk };
  }

  #key(pfn: number, order: number): number {
    this.#checkBlock(pfn, order);
    return POW2[KHO_ORDER_0_LOG2 - order] + pfn / POW2[order];
  }

  /** @throws KhoError EINVAL unless (pfn, order) is a block of the device. */
  #checkBlock(pfn: number, order: number): void {
    if (!Number.isInteger(order) || order < 0 || order > KHO_MAX_ORDER) {
      throw new KhoError('EINVAL', `order ${order} is not in 0..${KHO_MAX_ORDER}`);
    }
    const size = POW2[order];
    // A multiple of a power of two without `%`, which is a libm call on doubles.
    if (!Number.isInteger(pfn) || pfn < 0 || Math.floor(pfn / size) * size !== pfn) {
      throw new KhoError('EINVAL', `pfn ${pfn} is not a multiple of 2^${order}`);
    }
    if (pfn + size > this.device.pages) {
      throw new KhoError('EINVAL', `pfn ${pfn} order ${order} lies outside ${this.device.name}`);
    }
  }

  /** The leaf bitmap for leafKey, made the cached leaf; null if absent and !create. */
  #leaf(leafKey: number, create: boolean): Uint8Array | null {
    let leaf = 0;
    const l1Key = Math.floor(leafKey / KHO_TABLE_ENTRIES);
    if (l1Key === this.#l1Key) {
      const off = (leafKey - l1Key * KHO_TABLE_ENTRIES) * KHO_TABLE_ENTRY_SIZE;
      const view = this.#l1View;
      leaf = getU64(view, off);
      // The cached parent is current (a freed node clears it): an empty slot is an absent leaf.
      if (leaf === 0 && !create) return null;
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
    let view = NO_VIEW;
    for (let depth = 0; depth < DEPTH - 1; depth++) {
      const level = KHO_INNER_LEVELS - depth;
      const idx = Math.floor(leafKey / SLOT_LEAVES[level]) % KHO_TABLE_ENTRIES;
      this.#pathPhys[depth] = node;
      this.#pathIdx[depth] = idx;
      view = this.device.view(node, PAGE_SIZE);
      const off = idx * KHO_TABLE_ENTRY_SIZE;
      let child = getU64(view, off);
      if (child === 0) {
        if (!create) return 0;
        try {
          child = this.#allocNode();
        } catch (err) {
          this.#prune(depth); // unwind the nodes this call created
          throw err;
        }
        setU64(view, off, child);
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
      setU64(view, off, 0);
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
    this.#cacheBits = NO_BITS;
    this.#l1Key = -1;
    this.#l1View = NO_VIEW;
  }
}

/** @internal What validateTree found (KhoTreeCheck holds it). */
export interface CheckedTree {
  nodePhys: number[];
  /** Per node, as nodePhys: children present (inner) or bits set (leaf). */
  nodeCount: number[];
  /** The runs in walk order, `runs` of them: `runBlocks` blocks of 2^runOrder pages from runPfn. */
  runPfn: Float64Array;
  runBlocks: Float64Array;
  runOrder: Uint8Array;
  runs: number;
  blocks: number;
  pages: number;
}

/**
 * An untrusted tree that KhoRadixTree.check validated: its blocks and pages
 * as found then (KhoRadixTree.adoptChecked takes it over from this).
 */
export class KhoTreeCheck {
  /** @internal Made by KhoRadixTree.check. */
  constructor(
    readonly device: MemoryDevice,
    readonly rootPhys: number,
    /** @internal */ readonly checked: CheckedTree,
  ) {}

  /** Physical address of every tree node, in walk order. */
  get nodePhys(): readonly number[] {
    return this.checked.nodePhys;
  }

  /** Calls visit for each run of blocks, as walkRuns does. */
  visit(visit: (pfn: number, blocks: number, order: number) => void): KhoWalkResult {
    visitRuns(this.checked, visit);
    return this.result();
  }

  result(): KhoWalkResult {
    const c = this.checked;
    return { nodePhys: c.nodePhys, blocks: c.blocks, pages: c.pages };
  }
}

function visitRuns(
  checked: CheckedTree,
  visit: (pfn: number, blocks: number, order: number) => void,
): void {
  const { runPfn, runBlocks, runOrder } = checked;
  for (let i = 0; i < checked.runs; i++) visit(runPfn[i], runBlocks[i], runOrder[i]);
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

const FULL_CHUNK = Buffer.alloc(CHUNK_BYTES, 0xff);

function fullChunk(page: Uint8Array, at: number): boolean {
  return FULL_CHUNK.compare(page, at, at + CHUNK_BYTES) === 0;
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
    nodeCount: [],
    runPfn: new Float64Array(64),
    runBlocks: new Float64Array(64),
    runOrder: new Uint8Array(64),
    runs: 0,
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
  const enter = (phys: number, where: string): number => {
    if (!isPageAligned(phys)) throw corrupt(`${where} points to unaligned ${hex(phys)}`);
    if (phys + PAGE_SIZE > device.size) {
      throw corrupt(`${where} points to ${hex(phys)}, outside ${device.name}`);
    }
    if (seen.has(phys))
      throw corrupt(`${where}: node ${hex(phys)} reached twice (cycle or shared)`);
    if (seen.size >= maxNodes) throw corrupt(`more than ${maxNodes} nodes`);
    seen.add(phys);
    out.nodeCount.push(0);
    return out.nodePhys.push(phys) - 1;
  };
  const addRun = (pfn: number, blocks: number, order: number): void => {
    if (pfn + blocks * POW2[order] > device.pages) {
      throw corrupt(
        `block pfn ${pfn + (blocks - 1) * POW2[order]} order ${order} lies outside ${device.name}`,
      );
    }
    if (out.blocks + blocks > maxBlocks) throw corrupt(`more than ${maxBlocks} preserved blocks`);
    if (out.runs === out.runPfn.length) {
      out.runPfn = grow(out.runPfn, new Float64Array(out.runs * 2));
      out.runBlocks = grow(out.runBlocks, new Float64Array(out.runs * 2));
      out.runOrder = grow(out.runOrder, new Uint8Array(out.runs * 2));
    }
    out.runPfn[out.runs] = pfn;
    out.runBlocks[out.runs] = blocks;
    out.runOrder[out.runs++] = order;
    out.blocks += blocks;
    out.pages += blocks * POW2[order];
  };
  // Depth is fixed by the key layout, so this recursion is at most 6 deep.
  const visitNode = (phys: number, slot: number, level: number, keyBase: number): void => {
    const page = device.bytes(phys, PAGE_SIZE);
    const words = wordsOf(page);
    if (level === 0) {
      out.nodeCount[slot] = scanLeaf(page, words, phys, keyBase / KHO_BITMAP_BITS, addRun);
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
      out.nodeCount[slot]++;
      visitNode(child, enter(child, where), level - 1, keyBase + idx * SLOT_SPAN[level]);
    }
  };
  visitNode(rootPhys, enter(rootPhys, 'root'), KHO_INNER_LEVELS, 0);
  return out;
}

function grow<T extends Float64Array | Uint8Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

/**
 * Calls fn(pfn, blocks, order) for each run of set bits of a leaf, in key
 * order, a word of 32 bits at a time (a full word extends the run by 32).
 * Returns the bits set. A key with no marker bit (key 0) is corrupt.
 */
function scanLeaf(
  page: Uint8Array,
  words: Uint32Array,
  phys: number,
  leafKey: number,
  fn: (pfn: number, blocks: number, order: number) => void,
): number {
  const keyBase = leafKey * KHO_BITMAP_BITS;
  if (leafKey === 0) return scanLeafZero(page, words, phys, fn);
  // Above leaf 0 every key of the leaf shares its highest bit, hence one order.
  const order = KHO_ORDER_0_LOG2 - (highBit(leafKey) + KHO_BITMAP_SHIFT);
  const first = POW2[KHO_ORDER_0_LOG2 - order];
  let runKey = -1;
  let runLen = 0;
  let bits = 0;
  const flush = (): void => {
    if (runLen > 0) fn((runKey - first) * POW2[order], runLen, order);
    runLen = 0;
  };
  for (let w = 0; w < PAGE_WORDS; w++) {
    if (w % (CHUNK_BYTES / 4) === 0) {
      if (zeroChunk(page, w * 4)) {
        flush();
        w += CHUNK_BYTES / 4 - 1;
        continue;
      }
      // A densely preserved chunk (2048 blocks) costs one memcmp too, not 64 steps.
      if (fullChunk(page, w * 4)) {
        const key0 = keyBase + w * 32;
        if (runLen > 0 && runKey + runLen === key0) runLen += CHUNK_BYTES * 8;
        else {
          flush();
          runKey = key0;
          runLen = CHUNK_BYTES * 8;
        }
        bits += CHUNK_BYTES * 8;
        w += CHUNK_BYTES / 4 - 1;
        continue;
      }
    }
    let word = words[w];
    const key0 = keyBase + w * 32;
    if (word === 0xffffffff) {
      if (runLen > 0 && runKey + runLen === key0) runLen += 32;
      else {
        flush();
        runKey = key0;
        runLen = 32;
      }
      bits += 32;
      continue;
    }
    while (word !== 0) {
      const key = key0 + 31 - Math.clz32(word & -word);
      word &= word - 1;
      bits++;
      if (runLen > 0 && runKey + runLen === key) runLen++;
      else {
        flush();
        runKey = key;
        runLen = 1;
      }
    }
  }
  flush();
  return bits;
}

/** Leaf 0 mixes orders (keys below 2^15: blocks of 2^38 pages and more): one run per bit. */
function scanLeafZero(
  page: Uint8Array,
  words: Uint32Array,
  phys: number,
  fn: (pfn: number, blocks: number, order: number) => void,
): number {
  let bits = 0;
  for (let w = 0; w < PAGE_WORDS; w++) {
    if (w % (CHUNK_BYTES / 4) === 0 && zeroChunk(page, w * 4)) {
      w += CHUNK_BYTES / 4 - 1;
      continue;
    }
    let word = words[w];
    while (word !== 0) {
      const key = w * 32 + 31 - Math.clz32(word & -word);
      word &= word - 1;
      if (key === 0) throw corrupt(`leaf ${hex(phys)} sets key 0, which has no order`);
      const order = KHO_ORDER_0_LOG2 - highBit(key);
      fn((key - POW2[KHO_ORDER_0_LOG2 - order]) * POW2[order], 1, order);
      bits++;
    }
  }
  return bits;
}

const ONES_PAGE = Buffer.alloc(PAGE_SIZE, 0xff);
const ZERO_PAGE = Buffer.alloc(PAGE_SIZE);

/** Mask of bits [from, to) within one byte (0 <= from < to <= 8). */
function byteMask(from: number, to: number): number {
  return ((1 << (to - from)) - 1) << from;
}

/** Whether a bit in [from, to) of a bitmap page is set: masks at the ends, one memcmp between. */
function anyBitSet(bits: Uint8Array, from: number, to: number): boolean {
  return !bitsAre(bits, from, to, 0, ZERO_PAGE);
}

/** Whether every bit in [from, to) of a bitmap page is set. */
function allBitsSet(bits: Uint8Array, from: number, to: number): boolean {
  return bitsAre(bits, from, to, 0xff, ONES_PAGE);
}

function bitsAre(bits: Uint8Array, from: number, to: number, fill: number, page: Buffer): boolean {
  let b = from >>> 3;
  const last = (to - 1) >>> 3;
  if (b === last) {
    const m = byteMask(from & 7, ((to - 1) & 7) + 1);
    return (bits[b] & m) === (fill & m);
  }
  if ((from & 7) !== 0) {
    const m = byteMask(from & 7, 8);
    if ((bits[b] & m) !== (fill & m)) return false;
    b++;
  }
  const m = byteMask(0, ((to - 1) & 7) + 1);
  if ((bits[last] & m) !== (fill & m)) return false;
  return b >= last || page.compare(bits, b, last, 0, last - b) === 0;
}

/** Sets bits [from, to) of a bitmap page to 1 (fill 0xff) or 0 (fill 0). */
function setBits(bits: Uint8Array, from: number, to: number, fill: number): void {
  let b = from >>> 3;
  const last = (to - 1) >>> 3;
  const put = (i: number, m: number): void => {
    bits[i] = (bits[i] & ~m) | (fill & m);
  };
  if (b === last) {
    put(b, byteMask(from & 7, ((to - 1) & 7) + 1));
    return;
  }
  if ((from & 7) !== 0) put(b++, byteMask(from & 7, 8));
  put(last, byteMask(0, ((to - 1) & 7) + 1));
  if (b < last) bits.fill(fill, b, last);
}

/** Index of the highest set bit of a positive integer below 2^53. */
function highBit(n: number): number {
  const hi = Math.floor(n / TWO_POW_32);
  return hi > 0 ? 63 - Math.clz32(hi) : 31 - Math.clz32(n);
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
    this.addPages(pfn, POW2[order]);
  }

  /** Adds `pages` pages from pfn (a run of blocks as walkRuns gives). */
  addPages(pfn: number, pages: number): void {
    if (pfn === this.#runEnd) {
      this.#runEnd = pfn + pages;
      return;
    }
    if (this.#runStart >= 0) {
      this.starts.push(this.#runStart);
      this.ends.push(this.#runEnd);
    }
    this.#runStart = pfn;
    this.#runEnd = pfn + pages;
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
  extents(nodePhys: readonly number[], maxEntries: number, includeMetadata = true): PhysRange[] {
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
      base: st * PAGE_SIZE,
      size: (e - st) * PAGE_SIZE,
    }));
  }
}

export function coalescedExtents(
  device: MemoryDevice,
  rootPhys: number,
  maxEntries: number,
  options: { includeMetadata?: boolean; limits?: KhoWalkLimits } = {},
): PhysRange[] {
  if (!Number.isInteger(maxEntries) || maxEntries < 1) {
    throw new KhoError('EINVAL', `maxEntries ${maxEntries} is not a positive integer`);
  }
  const runs = new BlockRuns();
  const result = KhoRadixTree.walkRuns(
    device,
    rootPhys,
    (pfn, blocks, order) => runs.addPages(pfn, blocks * POW2[order]),
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
