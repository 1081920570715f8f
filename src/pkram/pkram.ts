/**
 * PKRAM: preserved-over-kexec memory storage (the RFC's mm/pkram.c). A
 * program saves folios and bytes under a node name; a successor kernel
 * attaches to the super block and loads them back.
 *
 * All state a successor needs lives in device pages (abi.ts): node, object
 * and link pages written as the save goes, the node list and super block
 * written by finalize(), and every preserved page recorded in a preserved-page
 * table (a KHO radix tree) whose root the super block holds. In memory there
 * is only the list of saved nodes, the names being saved, and the table's
 * own counters, all rebuilt by attach().
 */

import { show } from '../base/errors.js';
import { KhoError } from '../kho/errors.js';
import { coalescedExtents, type KhoExtent, KhoRadixTree } from '../kho/radix.js';
import { treeChecksum } from '../kho/tree-csum.js';
import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import { randomBytes } from '../memory/random.js';
import type { PageHolder, PageOwnership } from '../mm/ownership.js';
import { getU64, setU64 } from './_u64.js';
import {
  NODE_OFF_FLAGS,
  OBJ_OFF_BYTE_HEAD,
  OBJ_OFF_FOLIO_HEAD,
  PKRAM_BOOT_ID_SIZE,
  PKRAM_ENTRY_FL_RELOCATED,
  PKRAM_NAME_MAX,
  PKRAM_REGIONS_MAX,
  REGION_ENTRY_SIZE,
  REGION_OFF_PHYS,
  REGION_OFF_SIZE,
} from './abi.js';
import { PkramError } from './errors.js';
import { checkHandover, preservedRanges, readRegionList, regionListCrc } from './handover.js';
import { initNodePage, PkramNode, setNodeNext } from './node.js';
import type { PkramObject } from './object.js';
import { sealPage } from './seal.js';
import { LinkCursor } from './stream.js';
import { consumeSuper, type PkramExpect, writeSuper } from './super.js';
import { type NodeSummary, walkNode } from './walk.js';

/** Where PKRAM gets and returns pages (the kernel's page allocator). */
export interface PkramPageSource {
  /** A free block of 2^order pages (its head pfn), or null when none is left. */
  allocPages(order: number): number | null;
  /**
   * Returns a block. In a successor this is also called for blocks the
   * predecessor preserved (reserved since early boot): the source must take those too.
   */
  freePages(pfn: number, order: number): void;
}

export interface PkramOptions {
  device: MemoryDevice;
  pages: PkramPageSource;
  /** Written into the super block; the successor expects it. A safe non-negative integer. */
  generation: number;
  /** This boot's id, 16 bytes; the successor expects it. */
  bootId: Uint8Array;
  /** When set, PKRAM is off (e.g. "crash kernel") and every call is ENODEV with this reason. */
  disabled?: string;
  /** The other owners of preserved pages (KHO, pools), asked before a folio is saved. */
  ownership?: PageOwnership;
}

export interface PkramAttachOptions {
  device: MemoryDevice;
  pages: PkramPageSource;
  /** The predecessor's super block pfn (`pkram=<pfn>`). */
  superPfn: number;
  /** What the predecessor's super block must say. */
  expect: PkramExpect;
  /** This kernel's generation for its own finalize; default expect.generation + 1. */
  generation?: number;
  /** This boot's id; default 16 random bytes. */
  bootId?: Uint8Array;
  /** As PkramOptions.ownership. */
  ownership?: PageOwnership;
}

export interface PkramObjectInfo {
  folios: number;
  /** Folio count per order, index = order. */
  foliosByOrder: number[];
  relocatedFolios: number;
  bytes: number;
}

export interface PkramNodeInfo {
  name: string;
  objects: PkramObjectInfo[];
  folios: number;
  bytes: number;
  /** Pages PKRAM allocated for the node: node, object, link and data pages. */
  metadataPages: number;
}

/** A range PKRAM must not preserve pages in (kexec segments, `pkram_ban=`). */
export interface AvoidRange {
  phys: number;
  size: number;
}

export interface RelocateResult {
  /** Saved nodes rebuilt because a page of theirs collided. */
  nodes: number;
  /** Folios copied away from avoided ranges. */
  relocatedFolios: number;
}

interface NodeRecord {
  pfn: number;
  name: string;
  inherited: boolean;
}

interface Rebuilt {
  pfn: number;
  relocated: number;
  copies: Set<number>;
  /** (pfn, order) pairs of owned folios that were copied; freed on commit. */
  oldOwned: number[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class Pkram {
  readonly device: MemoryDevice;
  readonly generation: number;
  readonly bootId: Uint8Array;
  readonly #pages: PkramPageSource;
  readonly #disabled: string | null;
  #tree: KhoRadixTree;
  readonly #treeSource;
  /** Saved nodes: the preserved set, in node-list order. */
  #nodes: NodeRecord[] = [];
  readonly #saving = new Map<string, PkramNode>();
  /** The other owners' changes() when each node being saved was started. */
  readonly #savingSince = new Map<PkramNode, number>();
  /** Avoided pfn ranges as flat [start, end) pairs, sorted. */
  #avoid: number[] = [];
  #superPfn = 0;
  #regionPfn = 0;
  #metaPreserved = false;
  readonly #ownership: PageOwnership | null;

  /** @throws PkramError EINVAL (bad generation or boot id). */
  constructor(options: PkramOptions) {
    const { device, pages, generation, bootId } = options;
    if (!Number.isSafeInteger(generation) || generation < 0) {
      throw new PkramError('EINVAL', `generation ${generation} is not a safe non-negative integer`);
    }
    if (!(bootId instanceof Uint8Array) || bootId.length !== PKRAM_BOOT_ID_SIZE) {
      throw new PkramError('EINVAL', `boot id must be ${PKRAM_BOOT_ID_SIZE} bytes`);
    }
    this.device = device;
    this.generation = generation;
    this.bootId = bootId.slice();
    this.#pages = pages;
    this.#disabled = options.disabled ?? null;
    this.#ownership = options.ownership ?? null;
    this.#treeSource = {
      allocPage: (): number => this._allocPage() * PAGE_SIZE,
      freePage: (phys: number): void => this.#pages.freePages(phys / PAGE_SIZE, 0),
    };
    this.#tree = new KhoRadixTree(device, this.#treeSource);
  }

  /**
   * The successor's side: validates the predecessor's super block (magic,
   * version, crc, generation, boot id), its preserved-page table and every
   * node, and only then takes them over: the super block is marked consumed
   * (a second attach is refused), the old table's pages are freed and a new
   * table built. Loaded nodes' pages come back through `pages.freePages`.
   * @throws PkramError ENODEV (no super block), EINVAL (stale), EFAULT (corrupt), ENOMEM.
   */
  static attach(options: PkramAttachOptions): Pkram {
    const { device, pages, superPfn, expect } = options;
    const check = checkHandover(device, superPfn, expect);
    const pkram = new Pkram({
      device,
      pages,
      generation: options.generation ?? expect.generation + 1,
      bootId: options.bootId ?? randomBytes(PKRAM_BOOT_ID_SIZE),
      ownership: options.ownership,
    });
    pkram.#nodes = check.nodes.map((n) => ({ pfn: n.pfn, name: n.name, inherited: true }));
    pkram.#rebuildTable();
    consumeSuper(device, superPfn);
    for (const phys of check.tablePhys) pages.freePages(phys / PAGE_SIZE, 0);
    if (check.sb.regionPfn !== 0) pages.freePages(check.sb.regionPfn, 0);
    pkram.#superPfn = superPfn;
    return pkram;
  }

  /**
   * Reads a predecessor's PKRAM without taking it over (for `pkram ls`).
   * @throws PkramError as attach, except ENOMEM.
   */
  static inspect(
    device: MemoryDevice,
    superPfn: number,
    expect?: PkramExpect,
  ): { generation: number; bootId: Uint8Array; nodes: PkramNodeInfo[]; orphanPages: number } {
    const check = checkHandover(device, superPfn, expect);
    return {
      generation: check.sb.generation,
      bootId: check.sb.bootId,
      nodes: check.nodes.map(nodeInfo),
      orphanPages: check.orphanPages,
    };
  }

  /**
   * Coalesced preserved ranges for early boot to reserve (see handover.ts).
   * @throws PkramError ENODEV, EINVAL, EFAULT.
   */
  static preservedRanges(
    device: MemoryDevice,
    superPfn: number,
    maxEntries: number,
    expect?: PkramExpect,
  ): KhoExtent[] {
    return preservedRanges(device, superPfn, maxEntries, expect);
  }

  /** The region list written at finalize. @throws PkramError ENODEV, EINVAL, EFAULT. */
  static regionList(device: MemoryDevice, superPfn: number, expect?: PkramExpect): KhoExtent[] {
    return readRegionList(device, superPfn, expect);
  }

  /** The super block pfn (0 before the first finalize of a fresh PKRAM). */
  get superPfn(): number {
    return this.#superPfn;
  }

  /** Pages in preserved blocks (the table's count; the table's own pages excluded). */
  get preservedPages(): number {
    return this.#tree.preservedPages();
  }

  /** Changes to the preserved-page table (PageOwnership.changes). */
  get changes(): number {
    return this.#tree.changes;
  }

  /** Physical address of the preserved-page table's root (0 while nothing is saved). */
  get tableRoot(): number {
    return this.#tree.rootPhys;
  }

  /** Pages the preserved-page table itself uses. */
  get tablePages(): number {
    return this.#tree.metadataPageCount;
  }

  /**
   * Starts saving a node.
   * @throws PkramError ENODEV, EINVAL (not a string, empty, not well-formed UTF-16),
   *   ENAMETOOLONG (over 256 bytes of UTF-8), EEXIST (saved or being saved), ENOMEM.
   */
  prepareSave(name: string): PkramNode {
    this._check();
    const bytes = encodeName(name);
    if (this.#find(name) >= 0 || this.#saving.has(name)) {
      throw new PkramError('EEXIST', `node "${name}" already exists`);
    }
    const pfn = this._allocPage();
    initNodePage(this.device, pfn, bytes);
    const node = new PkramNode(this, pfn, name, 'save', false);
    this.#saving.set(name, node);
    this.#savingSince.set(node, this.#ownership?.changes() ?? 0);
    return node;
  }

  /**
   * Takes a saved node out of the preserved set to load it.
   * @throws PkramError ENODEV, ENOENT (no saved node of that name), EINVAL (bad name).
   */
  prepareLoad(name: string): PkramNode {
    this._check();
    encodeName(name);
    const i = this.#find(name);
    if (i < 0) throw new PkramError('ENOENT', `no saved node "${name}"`);
    const rec = this.#nodes[i];
    this.#unpreserveNode(rec.pfn);
    this.#nodes.splice(i, 1);
    return new PkramNode(this, rec.pfn, rec.name, 'load', rec.inherited);
  }

  /**
   * Frees a saved node by name, as loading nothing from it would.
   * @throws PkramError as prepareLoad.
   */
  remove(name: string): void {
    this.prepareLoad(name).finishLoad();
  }

  /** The saved nodes, in node-list order. @throws PkramError ENODEV. */
  list(): PkramNodeInfo[] {
    this._check();
    const budget = { left: 2 * this.device.pages };
    return this.#nodes.map((r) => nodeInfo(walkNode(this.device, r.pfn, null, budget)));
  }

  /**
   * Writes (or refreshes) the node list, region list and super block, and
   * returns the super block pfn: the value of `pkram=<pfn>`. Call it again
   * after any later change; nodes still being saved are not included.
   * @throws PkramError ENODEV, ENOMEM.
   */
  finalize(): number {
    this._check();
    if (this.#superPfn === 0) this.#superPfn = this._allocPage();
    if (this.#regionPfn === 0) this.#regionPfn = this._allocPage();
    if (!this.#metaPreserved) {
      this.#preserveBlocks(this.#tree, [this.#superPfn, 0, this.#regionPfn, 0]);
      this.#metaPreserved = true;
    }
    const nodes = this.#nodes;
    for (let i = 0; i < nodes.length; i++) {
      setNodeNext(this.device, nodes[i].pfn, i + 1 < nodes.length ? nodes[i + 1].pfn : 0);
    }
    let extents: KhoExtent[];
    try {
      extents = coalescedExtents(this.device, this.#tree.rootPhys, PKRAM_REGIONS_MAX);
    } catch (err) {
      throw new PkramError('EFAULT', `own preserved-page table: ${String(err)}`, 'table');
    }
    this.device.bytes(this.#regionPfn * PAGE_SIZE, PAGE_SIZE).fill(0);
    const rv = this.device.view(this.#regionPfn * PAGE_SIZE, PAGE_SIZE);
    extents.forEach((x, i) => {
      setU64(rv, i * REGION_ENTRY_SIZE + REGION_OFF_PHYS, x.phys);
      setU64(rv, i * REGION_ENTRY_SIZE + REGION_OFF_SIZE, x.size);
    });
    writeSuper(this.device, this.#superPfn, {
      generation: this.generation,
      bootId: this.bootId,
      nodePfn: nodes.length > 0 ? nodes[0].pfn : 0,
      regionPfn: this.#regionPfn,
      nrRegions: extents.length,
      nrNodes: nodes.length,
      tableRoot: this.#tree.rootPhys,
      tableCrc: treeChecksum(this.device, this.#tree.metadataPages()),
      regionCrc: regionListCrc(this.device, this.#regionPfn, extents.length),
    });
    return this.#superPfn;
  }

  /**
   * Sets the ranges PKRAM must keep out of (replacing earlier ones). Folios
   * saved from now on that collide are copied; pages PKRAM allocates avoid
   * them. Already saved nodes are moved by relocateCollisions().
   * @throws PkramError ENODEV, EINVAL (a range that is not non-negative integers).
   */
  setAvoidRanges(ranges: readonly AvoidRange[]): void {
    this._check();
    const pairs: [number, number][] = [];
    for (const r of ranges) {
      const { phys, size } = r ?? ({} as AvoidRange);
      if (!Number.isSafeInteger(phys) || !Number.isSafeInteger(size) || phys < 0 || size < 0) {
        throw new PkramError('EINVAL', `avoid range {${phys}, ${size}} is not a range`);
      }
      if (size === 0) continue;
      pairs.push([Math.floor(phys / PAGE_SIZE), Math.ceil((phys + size) / PAGE_SIZE)]);
    }
    pairs.sort((a, b) => a[0] - b[0]);
    this.#avoid = pairs.flat();
  }

  /**
   * Moves every saved node, the super block, the region list and the table
   * off the avoided ranges (for a kexec load that comes after the save).
   * A node that cannot be moved (ENOMEM) is left as it was.
   * @throws PkramError ENODEV, ENOMEM.
   */
  relocateCollisions(): RelocateResult {
    this._check();
    const out: RelocateResult = { nodes: 0, relocatedFolios: 0 };
    if (this.#avoid.length === 0) return out;
    for (const rec of this.#nodes) {
      if (!this.#nodeCollides(rec.pfn)) continue;
      const rebuilt = this.#rebuild(rec.pfn, rec.name, rec.inherited);
      // Carried-over folios are in both nodes: preserve only what is new, then unpreserve what went.
      const oldBlocks = this.#nodeBlocks(rec.pfn);
      const newBlocks = this.#nodeBlocks(rebuilt.pfn);
      try {
        this.#preserveBlocks(this.#tree, blocksMinus(newBlocks, oldBlocks));
      } catch (err) {
        this.#dropRebuild(rebuilt);
        throw err;
      }
      const gone = blocksMinus(oldBlocks, newBlocks);
      for (let i = 0; i < gone.length; i += 2) this.#tree.unpreserve(gone[i], gone[i + 1]);
      this.#commitRebuild(rec.pfn, rebuilt);
      rec.pfn = rebuilt.pfn;
      out.nodes++;
      out.relocatedFolios += rebuilt.relocated;
    }
    for (const which of ['super', 'region'] as const) {
      const pfn = which === 'super' ? this.#superPfn : this.#regionPfn;
      if (pfn === 0 || !this._collides(pfn, 1)) continue;
      if (this.#metaPreserved) {
        this.#tree.unpreserve(this.#superPfn, 0);
        this.#tree.unpreserve(this.#regionPfn, 0);
        this.#metaPreserved = false;
      }
      this._free(pfn, 0);
      if (which === 'super') this.#superPfn = 0;
      else this.#regionPfn = 0;
    }
    for (const phys of this.#tree.metadataPages()) {
      if (this._collides(phys / PAGE_SIZE, 1)) {
        this.#rebuildTable();
        break;
      }
    }
    return out;
  }

  // --- for PkramNode and PkramObject ---

  /** @internal @throws PkramError ENODEV when PKRAM is off. */
  _check(): void {
    if (this.#disabled !== null) {
      throw new PkramError('ENODEV', `PKRAM is disabled (${this.#disabled})`);
    }
  }

  /**
   * @internal One page for PKRAM's own use, outside avoided ranges and never pfn 0.
   * @throws PkramError ENOMEM, EINVAL (the page source returned garbage).
   */
  _allocPage(): number {
    const rejects: number[] = [];
    try {
      for (;;) {
        let pfn: number | null;
        try {
          pfn = this.#pages.allocPages(0);
        } catch (err) {
          throw new PkramError('ENOMEM', `page allocator failed: ${String(err)}`);
        }
        if (pfn === null) throw new PkramError('ENOMEM', 'no free page left for PKRAM');
        if (!Number.isSafeInteger(pfn) || pfn < 0 || pfn >= this.device.pages) {
          throw new PkramError('EINVAL', `page source returned pfn ${pfn}, outside the device`);
        }
        if (pfn === 0 || this._collides(pfn, 1)) {
          rejects.push(pfn);
          continue;
        }
        return pfn;
      }
    } finally {
      for (const p of rejects) this.#pages.freePages(p, 0);
    }
  }

  /** @internal */
  _free(pfn: number, order: number): void {
    this.#pages.freePages(pfn, order);
  }

  /** @internal Whether [pfn, pfn + n) touches an avoided range. */
  _collides(pfn: number, n: number): boolean {
    const a = this.#avoid;
    for (let i = 0; i < a.length; i += 2) {
      if (a[i] >= pfn + n) break;
      if (a[i + 1] > pfn) return true;
    }
    return false;
  }

  /** @internal */
  _isPreserved(pfn: number, order: number): boolean {
    return this.#tree.isPreserved(pfn, order);
  }

  /**
   * @internal A folio may be saved only when no other owner (KHO, a pool) holds any of its pages.
   * @throws PkramError EEXIST naming the owner.
   */
  _checkNotHeld(pfn: number, order: number): void {
    const other = this.#ownership?.otherHolder(pfn, 2 ** order);
    if (other) {
      throw new PkramError(
        'EEXIST',
        `folio pfn ${pfn} order ${order}: pfn ${other.pfn} is already preserved by ${other.holder}`,
      );
    }
  }

  /** Whether PKRAM holds any page of [pfn, pfn + count) in its saved nodes. */
  holder(pfn: number, count: number): PageHolder | null {
    if (!Number.isSafeInteger(pfn) || !Number.isSafeInteger(count))
      throw new PkramError(
        'EINVAL',
        `holder: pfn ${show(pfn)} and count ${show(count)} must be integers`,
      );
    if (this.#disabled !== null) return null;
    const at = this.#tree.firstPreservedIn(pfn, count);
    return at >= 0 ? { holder: 'PKRAM', pfn: at } : null;
  }

  /** @internal finishSave: relocate if needed, preserve, join the node list. */
  _nodeSaved(node: PkramNode): void {
    // Another owner may have taken one of the node's pages since it was started.
    const own = this.#ownership;
    if (own !== null && own.changes() !== this.#savingSince.get(node)) {
      walkNode(this.device, node.pfn, (p, order) => this._checkNotHeld(p, order), {
        left: 2 * this.device.pages,
      });
      this.#savingSince.set(node, own.changes());
    }
    if (this.#nodeCollides(node.pfn)) {
      const rebuilt = this.#rebuild(node.pfn, node.name, node.inherited);
      try {
        this.#preserveNode(this.#tree, rebuilt.pfn);
      } catch (err) {
        this.#dropRebuild(rebuilt);
        throw err;
      }
      this.#commitRebuild(node.pfn, rebuilt);
      node.pfn = rebuilt.pfn;
      node.relocatedFolios += rebuilt.relocated;
    } else {
      this.#preserveNode(this.#tree, node.pfn);
    }
    this.#saving.delete(node.name);
    this.#savingSince.delete(node);
    this.#nodes.push({ pfn: node.pfn, name: node.name, inherited: node.inherited });
  }

  /** @internal */
  _nodeDiscarded(node: PkramNode): void {
    this.#saving.delete(node.name);
    this.#savingSince.delete(node);
  }

  /** @internal */
  _nodeLoaded(_node: PkramNode): void {}

  /**
   * @internal Frees a node's node, object, link and data pages, and the folios
   * `freeFolio` picks (default: PKRAM's own relocated copies).
   */
  _freeNodePages(
    pfn: number,
    inherited: boolean,
    freeFolio: (pfn: number, order: number, flags: number) => boolean = (_p, _o, flags) =>
      inherited || (flags & PKRAM_ENTRY_FL_RELOCATED) !== 0,
  ): void {
    const blocks: number[] = [];
    walkNode(
      this.device,
      pfn,
      (p, order, kind, flags) => {
        if (kind !== 'folio' || freeFolio(p, order, flags)) blocks.push(p, order);
      },
      { left: 2 * this.device.pages },
    );
    for (let i = 0; i < blocks.length; i += 2) this.#pages.freePages(blocks[i], blocks[i + 1]);
  }

  // --- internals ---

  #find(name: string): number {
    return this.#nodes.findIndex((n) => n.name === name);
  }

  #nodeBlocks(pfn: number): number[] {
    const blocks: number[] = [];
    walkNode(this.device, pfn, (p, order) => blocks.push(p, order), {
      left: 2 * this.device.pages,
    });
    return blocks;
  }

  #nodeCollides(pfn: number): boolean {
    if (this.#avoid.length === 0) return false;
    const blocks = this.#nodeBlocks(pfn);
    for (let i = 0; i < blocks.length; i += 2) {
      if (this._collides(blocks[i], 2 ** blocks[i + 1])) return true;
    }
    return false;
  }

  /** Preserves (pfn, order) pairs in `tree`, all or nothing. */
  #preserveBlocks(tree: KhoRadixTree, blocks: number[]): void {
    let i = 0;
    try {
      for (; i < blocks.length; i += 2) tree.preserve(blocks[i], blocks[i + 1]);
    } catch (err) {
      for (let j = 0; j < i; j += 2) tree.unpreserve(blocks[j], blocks[j + 1]);
      if (err instanceof KhoError) {
        // PKRAM's own page source refused: that is the error, not KHO's wrapper.
        if (err.cause instanceof PkramError) throw err.cause;
        if (err.code === 'ENOMEM') {
          throw new PkramError('ENOMEM', err.message, undefined, { cause: err });
        }
        throw new PkramError(
          'EINVAL',
          `pfn ${blocks[i]} order ${blocks[i + 1]} cannot be preserved (saved twice?): ${err.message}`,
          undefined,
          { cause: err },
        );
      }
      throw err;
    }
  }

  #preserveNode(tree: KhoRadixTree, pfn: number): void {
    this.#preserveBlocks(tree, this.#nodeBlocks(pfn));
  }

  #unpreserveNode(pfn: number): void {
    const blocks = this.#nodeBlocks(pfn);
    for (let i = 0; i < blocks.length; i += 2) this.#tree.unpreserve(blocks[i], blocks[i + 1]);
  }

  /** Builds the table afresh from the saved nodes (attach; table pages in an avoided range). */
  #rebuildTable(): void {
    const fresh = new KhoRadixTree(this.device, this.#treeSource);
    try {
      for (const rec of this.#nodes) this.#preserveNode(fresh, rec.pfn);
      if (this.#metaPreserved) this.#preserveBlocks(fresh, [this.#superPfn, 0, this.#regionPfn, 0]);
    } catch (err) {
      fresh.clear();
      throw err;
    }
    const old = this.#tree;
    this.#tree = fresh;
    old.clear();
  }

  /**
   * Copies node `oldPfn` into new pages outside the avoided ranges: folios
   * that collide become relocated base-page copies, others are carried over,
   * bytes are copied into new data pages. The old node is untouched.
   */
  #rebuild(oldPfn: number, name: string, inherited: boolean): Rebuilt {
    const device = this.device;
    const newPfn = this._allocPage();
    initNodePage(device, newPfn, encoder.encode(name));
    const flags = device.view(oldPfn * PAGE_SIZE, PAGE_SIZE).getUint32(NODE_OFF_FLAGS, true);
    device.view(newPfn * PAGE_SIZE, PAGE_SIZE).setUint32(NODE_OFF_FLAGS, flags, true);
    const fresh = new PkramNode(this, newPfn, name, 'save', inherited);
    const objects: PkramObject[] = [];
    const oldOwned: number[] = [];
    const copiesOf = (): Set<number> => new Set(objects.flatMap((o) => o._copies));
    try {
      const summary = walkNode(device, oldPfn, null, { left: 2 * device.pages });
      for (const os of summary.objects) {
        const obj = fresh.prepareSaveObj();
        objects.push(obj);
        const ov = device.view(os.pfn * PAGE_SIZE, PAGE_SIZE);
        const folios = new LinkCursor(device, getU64(ov, OBJ_OFF_FOLIO_HEAD));
        for (let e = folios.next(); e !== null; e = folios.next()) {
          const owned = inherited || (e.flags & PKRAM_ENTRY_FL_RELOCATED) !== 0;
          if (this._collides(e.pfn, 2 ** e.order)) {
            obj._saveCopy(e.pfn, e.order, e.index);
            if (owned) oldOwned.push(e.pfn, e.order);
          } else {
            obj._append(e.pfn, e.order, e.flags, e.index);
          }
        }
        const data = new LinkCursor(device, getU64(ov, OBJ_OFF_BYTE_HEAD));
        let left = os.bytes;
        for (let e = data.next(); e !== null && left > 0; e = data.next()) {
          const n = Math.min(left, PAGE_SIZE);
          obj.write(device.bytes(e.pfn * PAGE_SIZE, n));
          left -= n;
        }
        obj.finishSaveObj();
      }
    } catch (err) {
      for (const o of objects) o._close();
      this.#dropRebuild({ pfn: newPfn, relocated: 0, copies: copiesOf(), oldOwned });
      throw err;
    }
    sealPage(device, newPfn, 'node');
    return { pfn: newPfn, relocated: fresh.relocatedFolios, copies: copiesOf(), oldOwned };
  }

  /** Frees a rebuilt node that will not be used: its pages and the copies it made. */
  #dropRebuild(r: Rebuilt): void {
    this._freeNodePages(
      r.pfn,
      false,
      (p, _o, flags) => (flags & PKRAM_ENTRY_FL_RELOCATED) !== 0 && r.copies.has(p),
    );
  }

  /** Frees the node a rebuild replaced: its own pages and the owned folios that were copied. */
  #commitRebuild(oldPfn: number, r: Rebuilt): void {
    this._freeNodePages(oldPfn, false, () => false);
    for (let i = 0; i < r.oldOwned.length; i += 2) this._free(r.oldOwned[i], r.oldOwned[i + 1]);
  }
}

/** The (pfn, order) pairs of `a` that are not in `b`. */
function blocksMinus(a: number[], b: number[]): number[] {
  const keys = new Set<number>();
  // pfn < 2^47 on any device a JS number can address, so pfn * 32 + order is exact.
  for (let i = 0; i < b.length; i += 2) keys.add(b[i] * 32 + b[i + 1]);
  const out: number[] = [];
  for (let i = 0; i < a.length; i += 2) {
    if (!keys.has(a[i] * 32 + a[i + 1])) out.push(a[i], a[i + 1]);
  }
  return out;
}

function encodeName(name: string): Uint8Array {
  if (typeof name !== 'string' || name.length === 0) {
    throw new PkramError('EINVAL', 'a node name is a non-empty string');
  }
  const bytes = encoder.encode(name);
  if (bytes.length > PKRAM_NAME_MAX) {
    throw new PkramError(
      'ENAMETOOLONG',
      `node name is ${bytes.length} bytes, at most ${PKRAM_NAME_MAX}`,
    );
  }
  if (decoder.decode(bytes) !== name) {
    throw new PkramError('EINVAL', 'node name is not well-formed Unicode (lone surrogate)');
  }
  return bytes;
}

function nodeInfo(s: NodeSummary): PkramNodeInfo {
  const objects = s.objects.map((o) => ({
    folios: o.folios,
    foliosByOrder: o.foliosByOrder,
    relocatedFolios: o.relocatedFolios,
    bytes: o.bytes,
  }));
  return {
    name: s.name,
    objects,
    folios: objects.reduce((n, o) => n + o.folios, 0),
    bytes: objects.reduce((n, o) => n + o.bytes, 0),
    metadataPages: s.metadataPages,
  };
}
