import { show } from '../base/errors.js';
import { SETUP } from '../boot/abi.js';
import type { HandoverPart, HandoverSubsystem, SegmentArena } from '../boot/handover.js';
import { Fdt } from '../fdt/read.js';
import { crc32c } from '../memory/crc32c.js';
import { type MemoryDevice, PAGE_SIZE, type PhysRange } from '../memory/device.js';
import { E820, type MemoryRange } from '../memory/memmap-types.js';
import { type BuddyAllocator, MAX_PAGE_ORDER } from '../mm/buddy.js';
import type { Folio } from '../mm/folio.js';
import type { PageHolder, PageOwnership } from '../mm/ownership.js';
import { ScratchPages } from '../mm/scratch-pages.js';
import { KHO_MAX_MAP_MARKS, KHO_MAX_ORDER } from './abi.js';
import { buildBlobDescriptor, checkBlobCompatibles, type KhoBlob } from './blob.js';
import { type CompatReport, checkHandover, type SuccessorConfig } from './compat.js';
import { readFdtAt } from './device-fdt.js';
import type { KhoEarly } from './early.js';
import { KhoError } from './errors.js';
import { KhoIncomingState } from './incoming.js';
import {
  isPageListEntries,
  type PageListEntries,
  type PageListHost,
  preservePageList,
  unpreservePageList,
} from './page-list.js';
import type { PageListView } from './page-list-view.js';
import { coalescedExtents, type KhoExtent, KhoRadixTree } from './radix.js';
import { buildRootFdt } from './root-fdt.js';
import { encodeScratch, KHO_SCRATCH_SEGMENT_WINDOW, type ScratchArea } from './scratch.js';
import { type KhoStatus, khoStatus } from './status.js';
import { treeChecksum } from './tree-csum.js';

/** Called around finalize, so subsystems can add or refresh their subtrees (the kernel's KHO notifier chain). */
export interface KhoNotifier {
  /** Before the root FDT is built; may call addSubtree/removeSubtree and preserve memory. */
  finalize?(): void;
  /** After an abort, to undo what finalize did. */
  abort?(): void;
}

interface OutgoingSubtree {
  readonly folio: Folio;
  readonly size: number;
  /** A raw subtree's bytes; `folio` then holds its descriptor. */
  readonly blob?: Folio;
  /** An unclaimed subtree of the predecessor, passed on as it came. */
  readonly carried: boolean;
}

const NODE_NAME = /^[0-9a-zA-Z,._+-]{1,31}(@[0-9a-zA-Z,._+-]+)?$/;

/** How addSubtree takes its bytes. */
export interface SubtreeOptions {
  /**
   * The bytes are a raw blob, not an FDT, versioned by these compatible
   * strings (newest first); livekexec stores them with a crc32c that the
   * successor's retrieveBlob checks.
   */
  readonly compatible?: string | readonly string[];
}

/**
 * Kexec HandOver for one generation (`kernel.kho`). Memory is preserved
 * into a radix tree of bitmaps built in place, so finalize serializes only
 * the small root FDT; a successor finds every preserved block again at the
 * same address, validated, and restores what it knows.
 */
export class Kho implements HandoverSubsystem {
  readonly name = 'kho';
  readonly #device: MemoryDevice;
  readonly #pages: BuddyAllocator;
  readonly #early: KhoEarly;
  readonly #scratchPages: ScratchPages;
  readonly #tree: KhoRadixTree;
  readonly #subtrees = new Map<string, OutgoingSubtree>();
  readonly #incoming: KhoIncomingState | null;
  readonly #notifiers: KhoNotifier[] = [];
  #rootFdt: Uint8Array | null = null;
  #finalizedByFreeze = false;
  /** Incoming blocks re-preserved at finalize, undone by abort. */
  #carried: { pfn: number; order: number }[] = [];
  /** Derived from the tree as it was at `changes` (KhoRadixTree.changes). */
  #sum: { changes: number; pages: number[]; csum: number } | null = null;
  #marks: { changes: number; extents: readonly KhoExtent[] } | null = null;
  readonly #ownership: PageOwnership | null;

  constructor(deps: {
    device: MemoryDevice;
    pages: BuddyAllocator;
    early: KhoEarly;
    /** The other owners of preserved pages (PKRAM, pools), asked before each preservation. */
    ownership?: PageOwnership;
  }) {
    this.#device = deps.device;
    this.#ownership = deps.ownership ?? null;
    this.#pages = deps.pages;
    this.#early = deps.early;
    this.#scratchPages = new ScratchPages(deps.early.scratch, KHO_SCRATCH_SEGMENT_WINDOW, {
      shared: deps.device.ownedForLife === true,
    });
    this.#tree = new KhoRadixTree(deps.device, {
      allocPage: () => {
        const pfn = deps.pages.allocPages(0);
        return pfn === null ? 0 : pfn * PAGE_SIZE;
      },
      freePage: (phys) => deps.pages.freePages(phys / PAGE_SIZE, 0),
    });
    const incoming = deps.early.incoming;
    this.#incoming = incoming ? new KhoIncomingState(deps.device, deps.pages, incoming) : null;
  }

  /** Whether KHO is on in this generation. */
  get enabled(): boolean {
    return this.#early.enabled;
  }

  /** True when this generation was booted with a KHO handover it revived. */
  isKhoBoot(): boolean {
    return this.#incoming !== null;
  }

  get finalized(): boolean {
    return this.#rootFdt !== null;
  }

  /** The scratch areas: the successor's early memory and kexec's segments. */
  get scratch(): readonly ScratchArea[] {
    return this.#early.scratch;
  }

  /**
   * Scratch given back: the page allocator's zone for transient allocations
   * (never preserved), all of scratch but its kexec window. Empty when KHO is off.
   */
  get scratchPages(): ScratchPages {
    return this.#scratchPages;
  }

  /** Adds a notifier run at finalize and abort. */
  registerNotifier(n: KhoNotifier): void {
    this.#notifiers.push(n);
  }

  // ------------------------------------------------------------ folios

  /**
   * Preserves a folio the page allocator handed out, keeping its order.
   * @throws KhoError EBUSY (finalized), EINVAL (not an allocated folio of that
   *   order, or inside scratch), EEXIST (already preserved, here or by PKRAM
   *   or a pool), EOPNOTSUPP (KHO off).
   */
  preserveFolio(folio: Folio): void {
    this.#checkMutable();
    this.#checkFolio(folio);
    this.#checkNotHeld(folio.pfn, 2 ** folio.order);
    if (
      this.#pages.pageState(folio.pfn) !== 'allocated' ||
      this.#pages.headOrder(folio.pfn) !== folio.order
    ) {
      throw new KhoError(
        'EINVAL',
        `pfn ${folio.pfn} is not an allocated folio of order ${folio.order}`,
      );
    }
    this.#tree.preserve(folio.pfn, folio.order);
    this.#pages.markPreserved(folio.pfn, folio.order);
  }

  /** @throws KhoError EBUSY, ENOENT (not preserved), EINVAL. */
  unpreserveFolio(folio: Folio): void {
    this.#checkMutable();
    this.#checkFolio(folio);
    this.#tree.unpreserve(folio.pfn, folio.order);
    if (this.#pages.pageState(folio.pfn) === 'preserved')
      this.#pages.clearPreserved(folio.pfn, folio.order);
  }

  /**
   * In the successor: takes back the folio preserved at `phys`. Its marker
   * is cleared, so a second restore fails.
   * @throws KhoError EINVAL when no preserved folio starts there (or it was restored already).
   */
  restoreFolio(phys: number): Folio {
    return this.#in().restoreFolio(phys);
  }

  // ------------------------------------------------------------ page ranges

  /**
   * Preserves `count` pages from `pfn` (allocated or reserved, not free, not
   * scratch), split into naturally aligned blocks. All or nothing.
   * @throws KhoError EBUSY, EINVAL, EEXIST (already preserved, here or by PKRAM or a pool).
   */
  preservePages(pfn: number, count: number): void {
    this.#checkMutable();
    this.#checkRange(pfn, count);
    // A free page would be handed out by this generation while the successor expects it.
    const free = this.#pages.firstFreeIn(pfn, count);
    if (free >= 0)
      throw new KhoError('EINVAL', `pfn ${free} is free: preserve only memory you own`);
    this.#checkNotHeld(pfn, count);
    const done: [number, number][] = [];
    try {
      for (const [p, o] of alignedBlocks(pfn, count)) {
        this.#tree.preserve(p, o);
        done.push([p, o]);
      }
    } catch (err) {
      for (const [p, o] of done) this.#tree.unpreserve(p, o);
      throw err;
    }
  }

  /** @throws KhoError EBUSY, ENOENT (some block not preserved; nothing changes), EINVAL. */
  unpreservePages(pfn: number, count: number): void {
    this.#checkMutable();
    this.#checkRange(pfn, count);
    const blocks = [...alignedBlocks(pfn, count)];
    for (const [p, o] of blocks) {
      if (!this.#tree.isPreserved(p, o))
        throw new KhoError('ENOENT', `pages at pfn ${p} (order ${o}) are not preserved`);
    }
    for (const [p, o] of blocks) this.#tree.unpreserve(p, o);
  }

  /**
   * In the successor: takes back pages preserved with preservePages. They
   * stay reserved and belong to the caller.
   * @throws KhoError EINVAL when the range was not preserved as one range.
   */
  restorePages(phys: number, count: number): PhysRange {
    return this.#in().restorePages(phys, count);
  }

  // ------------------------------------------------------------ page lists

  /**
   * Preserves a scattered buffer (the kernel's vmalloc preservation): every
   * folio, plus a chain of chunk pages listing them. The folios as objects,
   * or as typed arrays (a PageListView restored from the predecessor).
   * @returns the physical address of the first chunk, to record in a subtree.
   */
  preservePageList(folios: readonly Folio[] | PageListEntries): number {
    this.#checkMutable();
    if (Array.isArray(folios)) for (const f of folios as readonly Folio[]) this.#checkFolio(f);
    else if (isPageListEntries(folios)) {
      const e = folios;
      for (let i = 0; i < e.pfn.length; i++) this.#checkFolio({ pfn: e.pfn[i], order: e.order[i] });
    } else
      throw new KhoError(
        'EINVAL',
        `a page list is an array of folios or a page list's entries, got ${show(folios)}`,
      );
    return preservePageList(this.#pageListHost(), folios);
  }

  /** Undoes preservePageList: unpreserves the folios and frees the chunks. */
  unpreservePageList(phys: number): void {
    this.#checkMutable();
    if (!Number.isSafeInteger(phys) || phys < 0 || phys % PAGE_SIZE !== 0)
      throw new KhoError('EINVAL', `page list address ${show(phys)} is not a page address`);
    unpreservePageList(this.#pageListHost(), phys, (pfn) => this.#outgoingOrderAt(pfn));
  }

  /**
   * In the successor: the folios of a preserved page list, restored; the
   * chunks are freed. One object per folio: for large lists use
   * restorePageListView.
   * @throws KhoError EFAULT (damaged list: nothing restored), ENOENT (not a KHO boot).
   */
  restorePageList(phys: number): Folio[] {
    const view = this.#in().restorePageList(phys);
    return Array.from(view.pfn, (pfn, i) => ({ pfn, order: view.order[i] }));
  }

  /**
   * In the successor: restores a preserved page list (as restorePageList)
   * and returns it as one buffer: the folios as typed arrays, and a
   * zero-copy view when they are contiguous in the device, a gather view
   * over their runs when not (costs in PageListView). O(folios).
   * @throws KhoError EFAULT (damaged list: nothing restored), ENOENT (not a KHO boot).
   */
  restorePageListView(phys: number): PageListView {
    return this.#in().restorePageList(phys);
  }

  // ------------------------------------------------------------ alloc and preserve

  /**
   * Allocates a zeroed, preserved block of at least `size` bytes: 2^order
   * pages, rounded up to a power of two as the kernel's kho_alloc_preserve
   * does. Up to 4 MiB (MAX_PAGE_ORDER) it is a folio from the page
   * allocator; past that, a naturally aligned run of free pages taken as
   * pages (alloc_contig_range's way), as large as the free memory allows.
   * Free it with unpreserveFree, or in the successor with restoreFree.
   * @throws KhoError ENOMEM, EINVAL (size), EBUSY.
   */
  allocPreserve(size: number): Folio {
    this.#checkMutable();
    if (!Number.isSafeInteger(size) || size <= 0)
      throw new KhoError('EINVAL', `bad size ${show(size)}`);
    const order = Math.max(0, Math.ceil(Math.log2(Math.ceil(size / PAGE_SIZE))));
    if (order > MAX_PAGE_ORDER) return this.#allocPreserveRun(size, order);
    const pfn = this.#pages.allocPages(order);
    if (pfn === null)
      throw new KhoError('ENOMEM', `no free folio of ${size} bytes (order ${order})`);
    const folio = { pfn, order };
    this.#device.bytes(pfn * PAGE_SIZE, 2 ** order * PAGE_SIZE).fill(0);
    try {
      this.preserveFolio(folio);
    } catch (err) {
      this.#pages.freePages(pfn, order);
      throw err;
    }
    return folio;
  }

  /** allocPreserve past MAX_PAGE_ORDER: the lowest aligned free run, reserved, preserved as one block. */
  #allocPreserveRun(size: number, order: number): Folio {
    const n = 2 ** order;
    let pfn = -1;
    if (order <= KHO_MAX_ORDER) {
      for (const e of this.#pages.freeExtents()) {
        const start = Math.ceil(e.base / n) * n;
        if (start + n <= e.base + e.count) {
          pfn = start;
          break;
        }
      }
    }
    if (pfn < 0) {
      throw new KhoError(
        'ENOMEM',
        `no free run of ${n} pages aligned to ${n} for ${size} bytes (order ${order})`,
      );
    }
    const folio = { pfn, order };
    this.#checkFolio(folio);
    this.#pages.claimRange(pfn, n);
    try {
      this.#device.bytes(pfn * PAGE_SIZE, n * PAGE_SIZE).fill(0);
      this.#tree.preserve(pfn, order);
    } catch (err) {
      this.#pages.releaseRange(pfn, n);
      throw err;
    }
    return folio;
  }

  /** Changes to what this generation preserves (PageOwnership.changes). */
  get changes(): number {
    return this.#tree.changes;
  }

  /**
   * Whether KHO holds any page of [pfn, pfn + count): preserved by this
   * generation, or received and not restored yet.
   */
  holder(pfn: number, count: number): PageHolder | null {
    if (!Number.isSafeInteger(pfn) || !Number.isSafeInteger(count))
      throw new KhoError(
        'EINVAL',
        `holder: pfn ${show(pfn)} and count ${show(count)} must be integers`,
      );
    const out = this.#tree.firstPreservedIn(pfn, count);
    if (out >= 0) return { holder: 'KHO', pfn: out };
    const received = this.#incoming?.firstUnclaimedIn(pfn, count) ?? -1;
    return received >= 0 ? { holder: 'KHO (received, not restored)', pfn: received } : null;
  }

  /** @throws KhoError EEXIST when another owner holds a page of the range. */
  #checkNotHeld(pfn: number, count: number): void {
    const other = this.#ownership?.otherHolder(pfn, count);
    if (other) {
      throw new KhoError('EEXIST', `pfn ${other.pfn} is already preserved by ${other.holder}`);
    }
  }

  /**
   * Unpreserves and frees what allocPreserve returned.
   * @throws KhoError EBUSY, ENOENT (not preserved), EINVAL.
   */
  unpreserveFree(folio: Folio): void {
    this.#checkFolio(folio);
    if (folio.order <= MAX_PAGE_ORDER) {
      this.unpreserveFolio(folio);
      this.#pages.freePages(folio.pfn, folio.order);
      return;
    }
    this.#checkMutable();
    this.#checkFolio(folio);
    if (!this.#tree.isPreserved(folio.pfn, folio.order))
      throw new KhoError(
        'ENOENT',
        `no preserved block of order ${folio.order} at pfn ${folio.pfn}`,
      );
    this.#tree.unpreserve(folio.pfn, folio.order);
    this.#pages.releaseRange(folio.pfn, 2 ** folio.order);
  }

  /**
   * In the successor: restores what allocPreserve returned and frees it.
   * @throws KhoError EINVAL when no preserved block starts at `phys`.
   */
  restoreFree(phys: number): void {
    this.#in().restoreFree(phys);
  }

  // ------------------------------------------------------------ subtrees

  /**
   * Hands `data` to the successor under `name`, copied into preserved pages:
   * an FDT (checked whole), or with `options.compatible` a raw blob of any
   * length the page allocator can hold, versioned by those strings and
   * checksummed (the successor takes it with retrieveBlob).
   * @throws KhoError EEXIST, EINVAL (bad name, not a valid FDT, empty blob,
   *   bad compatible), EBUSY, ENOMEM.
   */
  addSubtree(name: string, data: Uint8Array, options: SubtreeOptions = {}): void {
    this.#checkMutable();
    if (typeof name !== 'string' || !NODE_NAME.test(name))
      throw new KhoError('EINVAL', `subtree name ${show(name)} is not a valid node name`);
    if (typeof options !== 'object' || options === null)
      throw new KhoError('EINVAL', `subtree options must be an object, got ${show(options)}`);
    if (this.#subtrees.has(name)) throw new KhoError('EEXIST', `subtree '${name}' exists`);
    if (options.compatible !== undefined) {
      this.#addBlob(name, data, checkBlobCompatibles(options.compatible));
      return;
    }
    let fdt = data;
    try {
      const parsed = Fdt.from(fdt);
      parsed.checkFull();
      fdt = fdt.subarray(0, parsed.totalSize);
    } catch (err) {
      throw new KhoError(
        'EINVAL',
        `subtree '${name}' is not a valid FDT: ${(err as Error).message}`,
      );
    }
    this.#subtrees.set(name, { folio: this.#storeCopy(fdt), size: fdt.length, carried: false });
  }

  #addBlob(name: string, data: Uint8Array, compatibles: string[]): void {
    if (!(data instanceof Uint8Array) || data.length === 0)
      throw new KhoError('EINVAL', `raw subtree '${name}' is empty`);
    const blob = this.#storeCopy(data);
    try {
      const descriptor = buildBlobDescriptor({
        compatibles,
        phys: blob.pfn * PAGE_SIZE,
        size: data.length,
        csum: crc32c(data),
      });
      const folio = this.#storeCopy(descriptor);
      this.#subtrees.set(name, { folio, size: descriptor.length, carried: false, blob });
    } catch (err) {
      this.unpreserveFree(blob);
      throw err;
    }
  }

  /** A zeroed preserved block holding a copy of `bytes`. */
  #storeCopy(bytes: Uint8Array): Folio {
    const folio = this.allocPreserve(bytes.length);
    this.#device.bytes(folio.pfn * PAGE_SIZE, bytes.length).set(bytes);
    return folio;
  }

  /** @throws KhoError ENOENT, EBUSY. */
  removeSubtree(name: string): void {
    this.#checkMutable();
    const s = this.#subtrees.get(name);
    if (!s) throw new KhoError('ENOENT', `no subtree ${show(name)}`);
    this.#subtrees.delete(name);
    if (s.carried) {
      this.#in().dropSubtree(name);
      return;
    }
    this.unpreserveFree(s.folio);
    if (s.blob) this.unpreserveFree(s.blob);
  }

  /** Names of the subtrees this generation will hand over. */
  subtreeNames(): string[] {
    return [...this.#subtrees.keys()].sort();
  }

  /**
   * In the successor: the predecessor's subtree `name`, validated, as an Fdt
   * over a copy; its preserved pages are freed.
   * @throws KhoError ENOENT (absent or already retrieved), EFAULT (not a valid FDT).
   */
  retrieveSubtree(name: string): Fdt {
    return this.#in().retrieveSubtree(name);
  }

  /** Whether the predecessor handed over a subtree `name` that nothing has retrieved yet. */
  hasIncomingSubtree(name: string): boolean {
    return this.#incoming?.subtreeNames().includes(name) ?? false;
  }

  /** Reads an incoming subtree without claiming it (status, compatibility checks). */
  peekSubtree(name: string): Fdt | null {
    return this.#incoming?.peekSubtree(name) ?? null;
  }

  /**
   * In the successor: the predecessor's raw subtree `name` (added with a
   * compatible), its checksum verified, as a copy; its preserved pages are
   * freed. With `accept` (compatibles this program reads, in its order of
   * preference) a blob of none of them is refused and stays unclaimed.
   * The copy costs O(blob): keep bulk data in preserved folios or page
   * lists and their addresses in the blob.
   * @throws KhoError ENOENT (absent or already retrieved), EINVAL (an FDT
   *   subtree: use retrieveSubtree), EPROTO (no accepted compatible),
   *   EFAULT (bad descriptor, block or checksum; nothing is claimed).
   */
  retrieveBlob(name: string, accept?: readonly string[]): KhoBlob {
    return this.#in().retrieveBlob(name, accept);
  }

  /** retrieveBlob without claiming: null when there is no such subtree. @throws KhoError as retrieveBlob. */
  peekBlob(name: string, accept?: readonly string[]): KhoBlob | null {
    return this.#incoming?.peekBlob(name, accept) ?? null;
  }

  // ------------------------------------------------------------ unclaimed memory

  /** What the predecessor preserved that nothing in this generation has claimed (yet). */
  unclaimed(): { subtrees: string[]; blocks: number; bytes: number } {
    return this.#incoming?.unclaimed() ?? { subtrees: [], blocks: 0, bytes: 0 };
  }

  /**
   * Frees everything the predecessor preserved that was not claimed: its
   * blocks go to the page allocator and its subtrees are dropped.
   * @returns the bytes freed.
   */
  releaseUnclaimed(): number {
    this.#checkMutable();
    return this.#incoming?.releaseUnclaimed() ?? 0;
  }

  // ------------------------------------------------------------ finalize

  /**
   * Freezes preservation and builds the root FDT (the debugfs `finalize`).
   * Unclaimed memory and subtrees of the predecessor are passed on. All or
   * nothing: a failure aborts the notifiers that ran and carries nothing.
   * @throws KhoError EEXIST (already finalized), EOPNOTSUPP (KHO off), ENOMEM;
   *   whatever a notifier throws.
   */
  finalize(): Uint8Array {
    if (!this.enabled) throw new KhoError('EOPNOTSUPP', `finalize: ${this.#early.disabledReason}`);
    if (this.#rootFdt) throw new KhoError('EEXIST', 'finalize: already finalized');
    // All or nothing: on any failure the notifiers that ran are aborted and nothing is carried.
    const ran: KhoNotifier[] = [];
    try {
      for (const n of this.#notifiers) {
        n.finalize?.();
        ran.push(n);
      }
      const carried = this.#incoming?.carryForward(this.#tree) ?? {
        blocks: [],
        subtrees: new Map(),
      };
      this.#carried = carried.blocks;
      for (const [name, s] of carried.subtrees) {
        if (!this.#subtrees.has(name)) this.#subtrees.set(name, { ...s, carried: true });
      }
      const { pages, csum } = this.#treeSum();
      this.#rootFdt = buildRootFdt({
        memoryMapPhys: this.#tree.rootPhys,
        memoryMapPages: pages,
        memoryMapCsum: csum,
        subtrees: new Map([...this.#subtrees].map(([name, s]) => [name, s.folio.pfn * PAGE_SIZE])),
      });
    } catch (err) {
      this.#undoCarry();
      for (const n of ran.reverse()) n.abort?.();
      throw err;
    }
    return this.#rootFdt;
  }

  /**
   * Unfreezes after finalize (writing 0 to debugfs `finalize`).
   * @throws KhoError ENOENT when not finalized.
   */
  abort(): void {
    if (!this.#rootFdt) throw new KhoError('ENOENT', 'abort: not finalized');
    this.#rootFdt = null;
    this.#undoCarry();
    for (const n of this.#notifiers) n.abort?.();
  }

  #undoCarry(): void {
    for (const b of this.#carried) this.#tree.unpreserve(b.pfn, b.order);
    this.#carried = [];
    for (const [name, s] of [...this.#subtrees]) if (s.carried) this.#subtrees.delete(name);
  }

  /** The finalized root FDT, or null. */
  get rootFdt(): Uint8Array | null {
    return this.#rootFdt;
  }

  // ------------------------------------------------------------ kexec

  /**
   * kexec load placed its segments: an exec is coming. What freeze derives
   * from the tree (its checksum, its extents) is computed now, and at exec
   * only again if the tree changed in between.
   */
  segmentsPlaced(): void {
    if (!this.enabled) return;
    this.#treeSum();
    this.#extents();
  }

  /** The tree's pages, ascending, and their checksum, for the root FDT. */
  #treeSum(): { pages: number[]; csum: number } {
    const changes = this.#tree.changes;
    if (this.#sum?.changes !== changes) {
      const pages = [...this.#tree.metadataPages()].sort((a, b) => a - b);
      this.#sum = { changes, pages, csum: treeChecksum(this.#device, pages) };
    }
    return this.#sum;
  }

  /** The preserved extents marked in the memory map handed over. */
  #extents(): readonly KhoExtent[] {
    const changes = this.#tree.changes;
    if (this.#marks?.changes !== changes) {
      const root = this.#tree.rootPhys;
      const extents = root === 0 ? [] : coalescedExtents(this.#device, root, KHO_MAX_MAP_MARKS);
      this.#marks = { changes, extents };
    }
    return this.#marks.extents;
  }

  /** Scratch: its kexec window and whatever transient allocations leave free there. */
  segmentArena(): SegmentArena | undefined {
    if (!this.enabled) return undefined;
    const z = this.#scratchPages;
    return {
      free: () => z.segmentFree(),
      claim: (s) => z.claimSegment(s),
      release: (s) => z.releaseSegment(s),
    };
  }

  freeze(): HandoverPart {
    if (!this.enabled) return {};
    if (!this.#rootFdt) {
      this.finalize();
      this.#finalizedByFreeze = true;
    }
    const root = this.#rootFdt as Uint8Array;
    const marks: MemoryRange[] = [];
    for (const e of this.#extents()) {
      marks.push({ addr: e.phys, size: e.size, type: E820.PRESERVED });
    }
    for (const a of this.#early.scratch)
      marks.push({ addr: a.base, size: a.size, type: E820.SCRATCH });
    return {
      setupData: [
        { type: SETUP.KHO_FDT, data: root },
        { type: SETUP.KHO_SCRATCH, data: encodeScratch(this.#early.scratch) },
      ],
      marks,
    };
  }

  unfreeze(): void {
    if (this.#finalizedByFreeze && this.#rootFdt) this.abort();
    this.#finalizedByFreeze = false;
  }

  // ------------------------------------------------------------ status

  /** What debugfs `kho/out` and `kho/in` show: scratch, the outgoing handover, what came in. */
  status(): KhoStatus {
    return khoStatus(this, this.#device);
  }

  /**
   * Whether a successor configured as `config` understands this handover
   * (finalize first, or the root is built just for the check).
   */
  checkSuccessor(config: SuccessorConfig): CompatReport {
    if (typeof config !== 'object' || config === null || typeof config.cmdline !== 'string')
      throw new KhoError(
        'EINVAL',
        `a successor config is { cmdline, compatibles? }, got ${show(config)}`,
      );
    if (config.compatibles !== undefined && !Array.isArray(config.compatibles))
      throw new KhoError('EINVAL', `compatibles must be an array of strings`);
    const root = this.#rootFdt ?? this.#probeRoot();
    const subtrees = this.#subtrees;
    return checkHandover(
      root,
      this.#device.size,
      (name) => {
        const s = subtrees.get(name);
        return s ? readFdtAt(this.#device, s.folio.pfn * PAGE_SIZE, s.size) : null;
      },
      config,
    );
  }

  #probeRoot(): Uint8Array {
    return buildRootFdt({
      memoryMapPhys: this.#tree.rootPhys,
      memoryMapPages: [...this.#tree.metadataPages()].sort((a, b) => a - b),
      memoryMapCsum: 0,
      subtrees: new Map([...this.#subtrees].map(([n, s]) => [n, s.folio.pfn * PAGE_SIZE])),
    });
  }

  /** Preserved blocks by order, and the bytes they hold. */
  preserved(): {
    byOrder: { order: number; blocks: number; bytes: number }[];
    bytes: number;
    metadataPages: number;
  } {
    const byOrder = [...this.#tree.preservedByOrder()]
      .sort(([a], [b]) => a - b)
      .map(([order, blocks]) => ({ order, blocks, bytes: blocks * 2 ** order * PAGE_SIZE }));
    return {
      byOrder,
      bytes: byOrder.reduce((n, o) => n + o.bytes, 0),
      metadataPages: this.#tree.metadataPageCount,
    };
  }

  /** @internal for status: the incoming side. */
  get incoming(): KhoIncomingState | null {
    return this.#incoming;
  }

  /** @internal */
  get subtreeEntries(): ReadonlyMap<string, { phys: number; size: number; carried: boolean }> {
    return new Map(
      [...this.#subtrees].map(([n, s]) => [
        n,
        { phys: s.folio.pfn * PAGE_SIZE, size: s.size, carried: s.carried },
      ]),
    );
  }

  /** @internal */
  get disabledReason(): string | undefined {
    return this.#early.disabledReason;
  }

  /** @internal */
  get revivalRefused(): string | undefined {
    return this.#early.revivalRefused;
  }

  // ------------------------------------------------------------ checks

  #pageListHost(): PageListHost {
    return {
      device: this.#device,
      preserveFolio: (f) => this.preserveFolio(f),
      unpreserveFolio: (f) => this.unpreserveFolio(f),
      allocPreserve: (n) => this.allocPreserve(n),
      unpreserveFree: (f) => this.unpreserveFree(f),
    };
  }

  /** The order at which the outgoing tree holds a folio head at `pfn`, or -1. */
  #outgoingOrderAt(pfn: number): number {
    if (this.#pages.pageState(pfn) !== 'preserved') return -1;
    const order = this.#pages.headOrder(pfn);
    return order >= 0 && this.#tree.isPreserved(pfn, order) ? order : -1;
  }

  #in(): KhoIncomingState {
    if (!this.enabled) throw new KhoError('EOPNOTSUPP', `${this.#early.disabledReason}`);
    if (!this.#incoming)
      throw new KhoError('ENOENT', 'this generation was not booted with a KHO handover');
    return this.#incoming;
  }

  #checkMutable(): void {
    if (!this.enabled) throw new KhoError('EOPNOTSUPP', `${this.#early.disabledReason}`);
    if (this.#rootFdt) throw new KhoError('EBUSY', 'KHO is finalized; abort first');
  }

  #checkFolio(f: Folio): void {
    if (typeof f !== 'object' || f === null) {
      throw new KhoError('EINVAL', `a folio is an object { pfn, order }, got ${show(f)}`);
    }
    if (
      !Number.isInteger(f.order) ||
      f.order < 0 ||
      f.order > 52 ||
      !Number.isInteger(f.pfn) ||
      f.pfn < 0 ||
      f.pfn % 2 ** f.order !== 0
    ) {
      throw new KhoError('EINVAL', `bad folio pfn ${show(f.pfn)} order ${show(f.order)}`);
    }
    this.#checkRange(f.pfn, 2 ** f.order);
  }

  #checkRange(pfn: number, count: number): void {
    if (
      !Number.isSafeInteger(pfn) ||
      !Number.isSafeInteger(count) ||
      pfn < 0 ||
      count <= 0 ||
      pfn + count > this.#device.pages
    ) {
      throw new KhoError(
        'EINVAL',
        `pages [${show(pfn)}, +${show(count)}) are not inside the device`,
      );
    }
    const start = pfn * PAGE_SIZE;
    const end = (pfn + count) * PAGE_SIZE;
    for (const a of this.#early.scratch) {
      if (start < a.base + a.size && a.base < end) {
        throw new KhoError(
          'EINVAL',
          `pages [${pfn}, +${count}) lie in ${a.kind} scratch; scratch cannot be preserved`,
        );
      }
    }
  }
}

/** Splits [pfn, pfn + count) into naturally aligned blocks, largest first from the left. */
export function* alignedBlocks(pfn: number, count: number): Generator<[number, number]> {
  const end = pfn + count;
  let p = pfn;
  while (p < end) {
    let order = 0;
    while (p % 2 ** (order + 1) === 0 && p + 2 ** (order + 1) <= end && order < 52) order++;
    yield [p, order];
    p += 2 ** order;
  }
}
