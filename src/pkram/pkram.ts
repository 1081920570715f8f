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

import { messageOf } from '../base/errors.js';
import { KhoError } from '../kho/errors.js';
import { BlockRuns, type KhoExtent, KhoRadixTree } from '../kho/radix.js';
import { treeChecksum } from '../kho/tree-csum.js';
import { checkDeviceViews, type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import { randomBytes } from '../memory/random.js';
import {
  NODE_OFF_FLAGS,
  NODE_OFF_NEXT,
  OBJ_OFF_BYTE_HEAD,
  OBJ_OFF_FOLIO_HEAD,
  PKRAM_BOOT_ID_SIZE,
  PKRAM_ENTRY_FL_RELOCATED,
  PKRAM_NAME_MAX,
  PKRAM_REGIONS_MAX,
  REGION_ENTRY_SIZE,
} from './abi.js';
import { PkramError } from './errors.js';
import { checkHandover, preservedRanges, readRegionList, regionListCrc } from './handover.js';
import { type NodeOwner, PkramNode } from './node.js';
import { RunList } from './runs.js';
import { LinkCursor, pageWords, setWordsU64 } from './stream.js';
import { consumeSuper, type PkramExpect, writeSuper } from './super.js';
import { collectNodeBlocks, type NodeSummary, walkNode } from './walk.js';
import { NodeWriter, sealNode } from './writer.js';

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

/** A range PKRAM must not preserve pages in (kexec segments, `pkram_ban=`), or refuses folios from. */
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
  /** Its blocks in the table, as runs: kept from the save (or attach's check), never walked again. */
  runs: RunList[];
}

interface Rebuilt {
  writer: NodeWriter;
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
  /** What nodes and objects may do here (node.ts): nothing of it is public. */
  readonly #host: NodeOwner;
  /** Saved nodes: the preserved set, in node-list order. */
  #nodes: NodeRecord[] = [];
  readonly #saving = new Set<string>();
  /** Avoided pfn ranges as flat [start, end) pairs, sorted. */
  #avoid: number[] = [];
  /** Transient pfn ranges (never preserved), the same way. */
  #transient: number[] = [];
  #superPfn = 0;
  #regionPfn = 0;
  #metaPreserved = false;
  /** The table's exact runs, as of a tree and its change count. */
  #runs: { tree: KhoRadixTree; changes: number; runs: BlockRuns } | null = null;

  /** @throws PkramError EINVAL (bad generation or boot id, a device whose views are not 4-byte aligned). */
  constructor(options: PkramOptions) {
    const { device, pages, generation, bootId } = options;
    if (!Number.isSafeInteger(generation) || generation < 0) {
      throw new PkramError('EINVAL', `generation ${generation} is not a safe non-negative integer`);
    }
    if (!(bootId instanceof Uint8Array) || bootId.length !== PKRAM_BOOT_ID_SIZE) {
      throw new PkramError('EINVAL', `boot id must be ${PKRAM_BOOT_ID_SIZE} bytes`);
    }
    try {
      checkDeviceViews(device);
    } catch (err) {
      throw new PkramError('EINVAL', messageOf(err), undefined, { cause: err });
    }
    this.device = device;
    this.generation = generation;
    this.bootId = bootId.slice();
    this.#pages = pages;
    this.#disabled = options.disabled ?? null;
    this.#treeSource = {
      allocPage: (): number => this.#allocPage() * PAGE_SIZE,
      freePage: (phys: number): void => this.#pages.freePages(phys / PAGE_SIZE, 0),
    };
    this.#tree = new KhoRadixTree(device, this.#treeSource);
    this.#host = {
      device,
      check: () => this.#check(),
      allocPage: () => this.#allocPage(),
      free: (pfn, order) => this.#pages.freePages(pfn, order),
      collides: (pfn, n) => pairsTouch(this.#avoid, pfn, n),
      isTransient: (pfn, n) => pairsTouch(this.#transient, pfn, n),
      isPreserved: (pfn, order) => this.#tree.isPreserved(pfn, order),
      nodeSaved: (node, writer) => this.#nodeSaved(node, writer),
      nodeDiscarded: (node) => {
        this.#saving.delete(node.name);
      },
    };
  }

  /**
   * The successor's side: validates the predecessor's super block (magic,
   * version, crc, generation, boot id), its preserved-page table and every
   * node, and only then takes them over: the super block is marked consumed
   * (a second attach is refused) and the table becomes this kernel's, in
   * place (O(table pages), not O(blocks)), less the super block, the region
   * list and any block no node references. Loaded nodes' pages come back
   * through `pages.freePages`.
   * @throws PkramError ENODEV (no super block), EINVAL (stale), EFAULT (corrupt).
   */
  static attach(options: PkramAttachOptions): Pkram {
    const { device, pages, superPfn, expect } = options;
    const pkram = new Pkram({
      device,
      pages,
      generation: options.generation ?? expect.generation + 1,
      bootId: options.bootId ?? randomBytes(PKRAM_BOOT_ID_SIZE),
    });
    const check = checkHandover(device, superPfn, expect, pkram.#treeSource);
    // Everything checked: from here on nothing fails.
    const tree = check.tree as KhoRadixTree;
    pkram.#tree = tree;
    pkram.#nodes = check.nodes.map((n, i) => ({
      pfn: n.pfn,
      name: n.name,
      inherited: true,
      runs: check.nodeRuns[i],
    }));
    // Orphans stay reserved in this generation, but are not handed over again.
    const orphans = check.orphanPages > 0 ? check.orphanBlocks() : [];
    for (let i = 0; i < orphans.length; i += 2) tree.unpreserve(orphans[i], orphans[i + 1]);
    tree.unpreserve(superPfn, 0);
    if (check.sb.regionPfn !== 0) tree.unpreserve(check.sb.regionPfn, 0);
    consumeSuper(device, superPfn);
    if (check.sb.regionPfn !== 0) pages.freePages(check.sb.regionPfn, 0);
    pkram.#superPfn = superPfn;
    return pkram;
  }

  /**
   * Reads a predecessor's PKRAM without taking it over (for `pkram ls`).
   * @throws PkramError as attach.
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

  /** Physical address of the preserved-page table's root (0 while nothing is saved). */
  get tableRoot(): number {
    return this.#tree.rootPhys;
  }

  /** Changes whenever the preserved-page table does (with tableRoot: a key for what is derived from it). */
  get tableChanges(): number {
    return this.#tree.changes;
  }

  /** Pages the preserved-page table itself uses. */
  get tablePages(): number {
    return this.#tree.metadataPageCount;
  }

  /**
   * The preserved pages, the table's own included, as at most maxEntries
   * coalesced ranges: what Pkram.preservedRanges reads back from the super
   * block a finalize wrote, computed from the live table (one walk of it per
   * change, O(its pages + runs)).
   * @throws PkramError EINVAL (maxEntries not a positive integer).
   */
  preservedExtents(maxEntries: number): KhoExtent[] {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new PkramError('EINVAL', `maxEntries ${maxEntries} is not a positive integer`);
    }
    return this.#exactRuns().extents([...this.#tree.metadataPages()], maxEntries);
  }

  /**
   * Starts saving a node.
   * @throws PkramError ENODEV, EINVAL (not a string, empty, not well-formed UTF-16),
   *   ENAMETOOLONG (over 256 bytes of UTF-8), EEXIST (saved or being saved), ENOMEM.
   */
  prepareSave(name: string): PkramNode {
    this.#check();
    const bytes = encodeName(name);
    if (this.#find(name) >= 0 || this.#saving.has(name)) {
      throw new PkramError('EEXIST', `node "${name}" already exists`);
    }
    const node = new PkramNode(this.#host, name, false, new NodeWriter(this.#host, bytes), 0);
    this.#saving.add(name);
    return node;
  }

  /**
   * Takes a saved node out of the preserved set to load it.
   * @throws PkramError ENODEV, ENOENT (no saved node of that name), EINVAL (bad name),
   *   EFAULT (its pages are not all in the preserved-page table: nothing changed).
   */
  prepareLoad(name: string): PkramNode {
    this.#check();
    encodeName(name);
    const i = this.#find(name);
    if (i < 0) throw new PkramError('ENOENT', `no saved node "${name}"`);
    const rec = this.#nodes[i];
    this.#unpreserveRuns(rec.runs, rec.pfn);
    this.#nodes.splice(i, 1);
    return new PkramNode(this.#host, rec.name, rec.inherited, null, rec.pfn);
  }

  /**
   * Frees a saved node by name, as loading nothing from it would.
   * @throws PkramError as prepareLoad.
   */
  remove(name: string): void {
    this.prepareLoad(name).finishLoad();
  }

  /** The saved nodes' names, in node-list order, without walking them. @throws PkramError ENODEV. */
  names(): string[] {
    this.#check();
    return this.#nodes.map((r) => r.name);
  }

  /** The saved nodes, in node-list order: a walk of every node, O(entries). @throws PkramError ENODEV. */
  list(): PkramNodeInfo[] {
    this.#check();
    const budget = { left: 2 * this.device.pages };
    return this.#nodes.map((r) => nodeInfo(walkNode(this.device, r.pfn, null, budget)));
  }

  /**
   * Writes (or refreshes) the node list, region list and super block, and
   * returns the super block pfn: the value of `pkram=<pfn>`. Call it again
   * after any later change; nodes still being saved are not included.
   * O(nodes + table pages + preserved runs).
   * @throws PkramError ENODEV, ENOMEM.
   */
  finalize(): number {
    this.#check();
    if (this.#superPfn === 0) this.#superPfn = this.#allocPage();
    if (this.#regionPfn === 0) this.#regionPfn = this.#allocPage();
    if (!this.#metaPreserved) {
      this.#preserveAll(this.#tree, [pairList([this.#superPfn, 0, this.#regionPfn, 0])]);
      this.#metaPreserved = true;
    }
    const { device } = this;
    const nodes = this.#nodes;
    for (let i = 0; i < nodes.length; i++) {
      const w = pageWords(device, nodes[i].pfn);
      setWordsU64(w, NODE_OFF_NEXT_WORD, i + 1 < nodes.length ? nodes[i + 1].pfn : 0);
      sealNode(device, nodes[i].pfn, w[NODE_OFF_FLAGS / 4]);
    }
    const extents = this.preservedExtents(PKRAM_REGIONS_MAX);
    const rw = pageWords(device, this.#regionPfn);
    rw.fill(0);
    extents.forEach((x, i) => {
      setWordsU64(rw, (i * REGION_ENTRY_SIZE) / 4, x.phys);
      setWordsU64(rw, (i * REGION_ENTRY_SIZE + 8) / 4, x.size);
    });
    writeSuper(device, this.#superPfn, {
      generation: this.generation,
      bootId: this.bootId,
      nodePfn: nodes.length > 0 ? nodes[0].pfn : 0,
      regionPfn: this.#regionPfn,
      nrRegions: extents.length,
      nrNodes: nodes.length,
      tableRoot: this.#tree.rootPhys,
      tableCrc: treeChecksum(device, this.#tree.metadataPages()),
      regionCrc: regionListCrc(device, this.#regionPfn, extents.length),
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
    this.#check();
    this.#avoid = pfnPairs(ranges);
  }

  /**
   * Sets the ranges of memory that is never preserved (KHO scratch serving
   * transient allocations, replacing earlier ones): saveFolio refuses a
   * folio there, as KHO refuses to preserve one. Copying it out instead
   * would cost O(data) and hide that the caller asked for the wrong memory.
   * @throws PkramError ENODEV, EINVAL (a range that is not non-negative integers).
   */
  setTransientRanges(ranges: readonly AvoidRange[]): void {
    this.#check();
    this.#transient = pfnPairs(ranges);
  }

  /**
   * Moves every saved node, the super block, the region list and the table
   * off the avoided ranges (for a kexec load that comes after the save).
   * A node that cannot be moved (ENOMEM) is left as it was. When no
   * preserved page touches an avoided range, no node is walked.
   * @throws PkramError ENODEV, ENOMEM.
   */
  relocateCollisions(): RelocateResult {
    this.#check();
    const out: RelocateResult = { nodes: 0, relocatedFolios: 0 };
    if (this.#avoid.length === 0) return out;
    const runs = this.#exactRuns();
    let touched = false;
    for (let i = 0; i < runs.starts.length && !touched; i++) {
      touched = pairsTouch(this.#avoid, runs.starts[i], runs.ends[i] - runs.starts[i]);
    }
    for (const rec of touched ? this.#nodes : []) {
      if (!runsTouch(rec.runs, this.#avoid)) continue;
      const rebuilt = this.#rebuild(rec.pfn, rec.name, rec.inherited);
      // Carried-over folios are in both nodes: preserve only what is new, then unpreserve what went.
      const oldBlocks = blockPairs(rec.runs);
      const newBlocks = blockPairs(writerLists(rebuilt.writer));
      try {
        this.#preserveAll(this.#tree, [pairList(blocksMinus(newBlocks, oldBlocks))]);
      } catch (err) {
        rebuilt.writer.freePages();
        throw err;
      }
      const gone = blocksMinus(oldBlocks, newBlocks);
      for (let i = 0; i < gone.length; i += 2) this.#tree.unpreserve(gone[i], gone[i + 1]);
      this.#commitRebuild(rec.pfn, rebuilt);
      rec.pfn = rebuilt.writer.pfn;
      rec.runs = writerLists(rebuilt.writer);
      out.nodes++;
      out.relocatedFolios += rebuilt.writer.relocatedFolios;
    }
    for (const which of ['super', 'region'] as const) {
      const pfn = which === 'super' ? this.#superPfn : this.#regionPfn;
      if (pfn === 0 || !pairsTouch(this.#avoid, pfn, 1)) continue;
      if (this.#metaPreserved) {
        this.#tree.unpreserve(this.#superPfn, 0);
        this.#tree.unpreserve(this.#regionPfn, 0);
        this.#metaPreserved = false;
      }
      this.#pages.freePages(pfn, 0);
      if (which === 'super') this.#superPfn = 0;
      else this.#regionPfn = 0;
    }
    for (const phys of this.#tree.metadataPages()) {
      if (pairsTouch(this.#avoid, phys / PAGE_SIZE, 1)) {
        this.#rebuildTable();
        break;
      }
    }
    return out;
  }

  // --- internals ---

  /** @throws PkramError ENODEV when PKRAM is off. */
  #check(): void {
    if (this.#disabled !== null) {
      throw new PkramError('ENODEV', `PKRAM is disabled (${this.#disabled})`);
    }
  }

  /**
   * One page for PKRAM's own use, outside avoided ranges and never pfn 0.
   * @throws PkramError ENOMEM, EINVAL (the page source returned garbage).
   */
  #allocPage(): number {
    const rejects: number[] = [];
    try {
      for (;;) {
        let pfn: number | null;
        try {
          pfn = this.#pages.allocPages(0);
        } catch (err) {
          throw new PkramError('ENOMEM', `page allocator failed: ${messageOf(err)}`, undefined, {
            cause: err,
          });
        }
        if (pfn === null) throw new PkramError('ENOMEM', 'no free page left for PKRAM');
        if (!Number.isSafeInteger(pfn) || pfn < 0 || pfn >= this.device.pages) {
          throw new PkramError('EINVAL', `page source returned pfn ${pfn}, outside the device`);
        }
        if (pfn === 0 || pairsTouch(this.#avoid, pfn, 1)) {
          rejects.push(pfn);
          continue;
        }
        return pfn;
      }
    } finally {
      for (const p of rejects) this.#pages.freePages(p, 0);
    }
  }

  /** finishSave: relocate if needed, preserve what the writer recorded, join the node list. */
  #nodeSaved(node: PkramNode, writer: NodeWriter): { pfn: number; relocated: number } {
    let saved = writer;
    if (this.#avoid.length > 0 && runsTouch(writerLists(writer), this.#avoid)) {
      const rebuilt = this.#rebuild(writer.pfn, node.name, node.inherited);
      try {
        this.#preserveAll(this.#tree, writerLists(rebuilt.writer));
      } catch (err) {
        rebuilt.writer.freePages();
        throw err;
      }
      this.#commitRebuild(writer.pfn, rebuilt);
      saved = rebuilt.writer;
    } else {
      this.#preserveAll(this.#tree, writerLists(writer));
    }
    this.#saving.delete(node.name);
    const runs = writerLists(saved);
    this.#nodes.push({ pfn: saved.pfn, name: node.name, inherited: node.inherited, runs });
    return { pfn: saved.pfn, relocated: saved === writer ? 0 : saved.relocatedFolios };
  }

  #find(name: string): number {
    return this.#nodes.findIndex((n) => n.name === name);
  }

  /** The exact runs of the table's blocks (its own pages not included), walked once per change. */
  #exactRuns(): BlockRuns {
    const tree = this.#tree;
    const cached = this.#runs;
    if (cached !== null && cached.tree === tree && cached.changes === tree.changes) {
      return cached.runs;
    }
    const runs = new BlockRuns();
    try {
      KhoRadixTree.walkRuns(this.device, tree.rootPhys, (pfn, blocks, order) =>
        runs.addPages(pfn, blocks * 2 ** order),
      );
    } catch (err) {
      throw new PkramError('EFAULT', `own preserved-page table: ${messageOf(err)}`, 'table', {
        cause: err,
      });
    }
    runs.close();
    this.#runs = { tree, changes: tree.changes, runs };
    return runs;
  }

  /** Preserves every run of `lists` in `tree`, all or nothing. */
  #preserveAll(tree: KhoRadixTree, lists: readonly RunList[]): void {
    let li = 0;
    let i = 0;
    try {
      for (; li < lists.length; li++) {
        const { pfns, blocks, orders, length } = lists[li];
        for (i = 0; i < length; i++) tree.preserveRun(pfns[i], blocks[i], orders[i]);
      }
    } catch (err) {
      const failed = `pfn ${lists[li].pfns[i]} order ${lists[li].orders[i]}`;
      for (let k = 0; k <= li; k++) {
        const l = lists[k];
        for (let j = 0; j < (k < li ? l.length : i); j++) {
          tree.unpreserveRun(l.pfns[j], l.blocks[j], l.orders[j]);
        }
      }
      if (err instanceof KhoError) {
        // PKRAM's own page source refused: that is the error, not KHO's wrapper.
        if (err.cause instanceof PkramError) throw err.cause;
        if (err.code === 'ENOMEM') {
          throw new PkramError('ENOMEM', err.message, undefined, { cause: err });
        }
        throw new PkramError(
          'EINVAL',
          `${failed} cannot be preserved (saved twice?): ${err.message}`,
          undefined,
          { cause: err },
        );
      }
      throw err;
    }
  }

  /**
   * Takes a node's runs out of the table, all or nothing: they were put
   * there by this kernel or checked at attach, so a miss means the table
   * was damaged since.
   * @throws PkramError EFAULT (nothing changed).
   */
  #unpreserveRuns(lists: readonly RunList[], pfn: number): void {
    const done: [RunList, number][] = [];
    try {
      for (const l of lists) {
        for (let i = 0; i < l.length; i++) {
          this.#tree.unpreserveRun(l.pfns[i], l.blocks[i], l.orders[i]);
          done.push([l, i]);
        }
      }
    } catch (err) {
      for (const [l, i] of done) this.#tree.preserveRun(l.pfns[i], l.blocks[i], l.orders[i]);
      throw new PkramError('EFAULT', `node at pfn ${pfn}: ${messageOf(err)}`, 'metadata', {
        cause: err,
      });
    }
  }

  /** Builds the table afresh from the saved nodes (table pages in an avoided range). */
  #rebuildTable(): void {
    const fresh = new KhoRadixTree(this.device, this.#treeSource);
    try {
      for (const rec of this.#nodes) this.#preserveAll(fresh, rec.runs);
      if (this.#metaPreserved) {
        this.#preserveAll(fresh, [pairList([this.#superPfn, 0, this.#regionPfn, 0])]);
      }
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
    const writer = new NodeWriter(this.#host, encoder.encode(name));
    const oldOwned: number[] = [];
    try {
      const summary = walkNode(device, oldPfn, null, { left: 2 * device.pages });
      for (const os of summary.objects) {
        const obj = writer.beginObject();
        try {
          const ow = pageWords(device, os.pfn);
          const folios = new LinkCursor(device, wordsAt(ow, OBJ_OFF_FOLIO_HEAD));
          for (let e = folios.next(); e !== null; e = folios.next()) {
            const owned = inherited || (e.flags & PKRAM_ENTRY_FL_RELOCATED) !== 0;
            if (pairsTouch(this.#avoid, e.pfn, 2 ** e.order)) {
              obj.saveCopy(e.pfn, e.order, e.index);
              if (owned) oldOwned.push(e.pfn, e.order);
            } else {
              obj.append(e.pfn, e.order, e.flags, e.index);
            }
          }
          const data = new LinkCursor(device, wordsAt(ow, OBJ_OFF_BYTE_HEAD));
          let left = os.bytes;
          for (let e = data.next(); e !== null && left > 0; e = data.next()) {
            const n = Math.min(left, PAGE_SIZE);
            obj.write(device.bytes(e.pfn * PAGE_SIZE, n));
            left -= n;
          }
        } finally {
          obj.close();
        }
      }
    } catch (err) {
      writer.freePages();
      throw err;
    }
    sealNode(device, writer.pfn, pageWords(device, oldPfn)[NODE_OFF_FLAGS / 4]);
    return { writer, oldOwned };
  }

  /** Frees the node a rebuild replaced: its own pages and the owned folios that were copied. */
  #commitRebuild(oldPfn: number, r: Rebuilt): void {
    const own = new RunList();
    collectNodeBlocks(this.device, oldPfn, own, false);
    const pairs = own.blockPairs();
    for (let i = 0; i < pairs.length; i += 2) this.#pages.freePages(pairs[i], pairs[i + 1]);
    for (let i = 0; i < r.oldOwned.length; i += 2) {
      this.#pages.freePages(r.oldOwned[i], r.oldOwned[i + 1]);
    }
  }
}

const NODE_OFF_NEXT_WORD = NODE_OFF_NEXT / 4;

function wordsAt(w: Uint32Array, off: number): number {
  return w[off / 4 + 1] * 2 ** 32 + w[off / 4];
}

function writerLists(w: NodeWriter): RunList[] {
  return [w.meta, w.copies, w.folios];
}

/** Every block of `lists`, as (pfn, order) pairs. */
function blockPairs(lists: readonly RunList[]): number[] {
  const out: number[] = [];
  for (const l of lists) l.blockPairs(out);
  return out;
}

/** Whether a run of `lists` touches one of the sorted avoided pairs. */
function runsTouch(lists: readonly RunList[], avoid: readonly number[]): boolean {
  for (const l of lists) {
    for (let i = 0; i < l.length; i++) {
      if (pairsTouch(avoid, l.pfns[i], l.blocks[i] * 2 ** l.orders[i])) return true;
    }
  }
  return false;
}

/** (pfn, order) pairs as a RunList. */
function pairList(pairs: readonly number[]): RunList {
  const l = new RunList();
  for (let i = 0; i < pairs.length; i += 2) l.add(pairs[i], pairs[i + 1]);
  return l;
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

/**
 * Byte ranges as sorted flat [start, end) pfn pairs (partial pages count whole).
 * @throws PkramError EINVAL (a range that is not non-negative integers).
 */
function pfnPairs(ranges: readonly AvoidRange[]): number[] {
  const pairs: [number, number][] = [];
  for (const r of ranges) {
    const { phys, size } = r ?? ({} as AvoidRange);
    if (!Number.isSafeInteger(phys) || !Number.isSafeInteger(size) || phys < 0 || size < 0) {
      throw new PkramError('EINVAL', `range {${phys}, ${size}} is not a range`);
    }
    if (size === 0) continue;
    pairs.push([Math.floor(phys / PAGE_SIZE), Math.ceil((phys + size) / PAGE_SIZE)]);
  }
  pairs.sort((a, b) => a[0] - b[0]);
  return pairs.flat();
}

/** Whether [pfn, pfn + n) touches one of the sorted pairs. */
function pairsTouch(pairs: readonly number[], pfn: number, n: number): boolean {
  for (let i = 0; i < pairs.length; i += 2) {
    if ((pairs[i] as number) >= pfn + n) break;
    if ((pairs[i + 1] as number) > pfn) return true;
  }
  return false;
}
