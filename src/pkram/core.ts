/**
 * PKRAM's state and its internal operations, behind the public Pkram
 * (pkram.ts). The core is what nodes and objects get as their owner
 * (NodeOwner, node.ts): a class, so their calls into it always reach the
 * same methods (closures made per Pkram would be new call targets for every
 * instance, and every new PKRAM would throw away the code V8 optimized for
 * the last one).
 *
 * The preserved-page table is a KHO radix tree in device pages. A node's
 * blocks are kept in memory as runs from the moment they are taken (save)
 * or checked (attach), so preserving, unpreserving and moving a node never
 * walk it again.
 */

import { messageOf } from '../base/errors.js';
import type { PhysRange } from '../base/range.js';
import { KhoError } from '../kho/errors.js';
import { BlockRuns, type KhoPageSource, KhoRadixTree } from '../kho/radix.js';
import { treeChecksum } from '../kho/tree-csum.js';
import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import type { PageOwnership } from '../mm/ownership.js';
import {
  NODE_OFF_FLAGS,
  NODE_OFF_NEXT,
  OBJ_OFF_BYTE_HEAD,
  OBJ_OFF_FOLIO_HEAD,
  PKRAM_ENTRY_FL_RELOCATED,
  PKRAM_REGIONS_MAX,
  REGION_ENTRY_SIZE,
} from './abi.js';
import { crc32 } from './crc32.js';
import { PkramError } from './errors.js';
import { type HandoverCheck, regionListCrc } from './handover.js';
import type { NodeOwner, PkramNode } from './node.js';
import { RunList } from './runs.js';
import { LinkCursor, pageWords, setWordsU64, wordsU64 } from './stream.js';
import { superIntact, writeSuper } from './super.js';
import { collectNodeBlocks, walkNode } from './walk.js';
import { NodeWriter, sealNode } from './writer.js';

/** Where PKRAM gets and returns pages (the kernel's page allocator). */
export interface PkramPageSource {
  /** A free block of 2^order pages (its head pfn), or null when none is left. */
  allocPages(order: number): number | null;
  /**
   * Returns a block. In a successor this is also called for pages the
   * predecessor preserved (reserved since early boot): the source must take
   * those too, and such a block may tile several of the predecessor's blocks.
   */
  freePages(pfn: number, order: number): void;
}

export interface RelocateResult {
  /** Saved nodes rebuilt because a page of theirs collided. */
  nodes: number;
  /** Folios copied away from avoided ranges. */
  relocatedFolios: number;
}

export interface NodeRecord {
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
const NODE_NEXT_WORD = NODE_OFF_NEXT / 4;

/** What #exactRuns derived from a tree at a change count. */
class RunsCache {
  tree: KhoRadixTree | null = null;
  changes = -1;
  runs = new BlockRuns();
}

/** The table's own pages, through the core (a class: one call target for every PKRAM). */
class TablePages implements KhoPageSource {
  constructor(private readonly core: PkramCore) {}

  allocPage(): number {
    return this.core.allocPage() * PAGE_SIZE;
  }

  freePage(phys: number): void {
    this.core.free(phys / PAGE_SIZE, 0);
  }
}

export class PkramCore implements NodeOwner {
  readonly tablePages: KhoPageSource = new TablePages(this);
  tree: KhoRadixTree;
  /** Saved nodes: the preserved set, in node-list order. */
  readonly nodes: NodeRecord[] = [];
  readonly saving = new Set<string>();
  /** The other owners' changes() when each node being saved was started. */
  readonly #savingSince = new Map<PkramNode, number>();
  /**
   * Avoided pfn ranges as flat [start, end) pairs, sorted. Typed arrays,
   * always: a field that held arrays of other kinds would change the core's
   * hidden class and throw away the code optimized for it.
   */
  avoid: Float64Array = new Float64Array(0);
  /** Transient pfn ranges (never preserved), the same way. */
  transient: Float64Array = new Float64Array(0);
  superPfn = 0;
  regionPfn = 0;
  metaPreserved = false;
  /** The table's exact runs, as of a tree and its change count. */
  readonly #runs = new RunsCache();
  /** The tree and its change count the super block was last written for. */
  #finalTree: KhoRadixTree | null = null;
  #finalChanges = -1;

  constructor(
    readonly device: MemoryDevice,
    readonly pages: PkramPageSource,
    readonly disabled: string | null,
    /** The other owners of preserved pages (KHO, pools), asked before a folio is saved. */
    readonly ownership: PageOwnership | null = null,
  ) {
    this.tree = new KhoRadixTree(device, this.tablePages);
  }

  // --- NodeOwner ---

  /** @throws PkramError ENODEV when PKRAM is off. */
  check(): void {
    if (this.disabled !== null)
      throw new PkramError('ENODEV', `PKRAM is disabled (${this.disabled})`);
  }

  /**
   * One page for PKRAM's own use, outside avoided ranges and never pfn 0.
   * @throws PkramError ENOMEM, EINVAL (the page source returned garbage).
   */
  allocPage(): number {
    const rejects: number[] = [];
    try {
      for (;;) {
        let pfn: number | null;
        try {
          pfn = this.pages.allocPages(0);
        } catch (err) {
          throw new PkramError('ENOMEM', `page allocator failed: ${messageOf(err)}`, undefined, {
            cause: err,
          });
        }
        if (pfn === null) throw new PkramError('ENOMEM', 'no free page left for PKRAM');
        if (!Number.isSafeInteger(pfn) || pfn < 0 || pfn >= this.device.pages) {
          throw new PkramError('EINVAL', `page source returned pfn ${pfn}, outside the device`);
        }
        if (pfn === 0 || pairsTouch(this.avoid, pfn, 1)) {
          rejects.push(pfn);
          continue;
        }
        return pfn;
      }
    } finally {
      for (const p of rejects) this.pages.freePages(p, 0);
    }
  }

  free(pfn: number, order: number): void {
    this.pages.freePages(pfn, order);
  }

  collides(pfn: number, n: number): boolean {
    return this.avoid.length !== 0 && pairsTouch(this.avoid, pfn, n);
  }

  isTransient(pfn: number, n: number): boolean {
    return this.transient.length !== 0 && pairsTouch(this.transient, pfn, n);
  }

  isPreserved(pfn: number, order: number): boolean {
    return this.tree.isPreserved(pfn, order);
  }

  preservesNothing(): boolean {
    return this.tree.rootPhys === 0;
  }

  anyPreserved(pfn: number, blocks: number, order: number): boolean {
    return this.tree.anyPreserved(pfn, blocks, order);
  }

  heldByOther(pfn: number, n: number): boolean {
    return this.ownership !== null && this.ownership.otherHolder(pfn, n) !== null;
  }

  checkNotHeld(pfn: number, order: number): void {
    const other = this.ownership?.otherHolder(pfn, 2 ** order);
    if (other) {
      throw new PkramError(
        'EEXIST',
        `folio pfn ${pfn} order ${order}: pfn ${other.pfn} is already preserved by ${other.holder}`,
      );
    }
  }

  /** prepareSave: remembers the other owners' changes, so finishSave rechecks only when they moved. */
  savingStarted(node: PkramNode): void {
    this.#savingSince.set(node, this.ownership?.changes() ?? 0);
  }

  /** finishSave: relocate if needed, preserve what the writer recorded, join the node list. */
  nodeSaved(node: PkramNode, writer: NodeWriter): { pfn: number; relocated: number } {
    // Another owner may have taken one of the node's pages since it was started.
    const own = this.ownership;
    if (own !== null && own.changes() !== this.#savingSince.get(node)) {
      for (const runs of [writer.meta, writer.copies, writer.folios]) {
        for (let r = 0; r < runs.length; r++) {
          const pages = runs.blocks[r] * 2 ** runs.orders[r];
          if (own.otherHolder(runs.pfns[r], pages) === null) continue;
          for (let b = 0; b < runs.blocks[r]; b++)
            this.checkNotHeld(runs.pfns[r] + b * 2 ** runs.orders[r], runs.orders[r]);
        }
      }
      this.#savingSince.set(node, own.changes());
    }
    let saved = writer;
    let runs: RunList[];
    if (
      this.avoid.length > 0 &&
      runsTouch([writer.meta, writer.copies, writer.folios], this.avoid)
    ) {
      const rebuilt = this.#rebuild(writer.pfn, node.name, node.inherited);
      runs = writerRuns(rebuilt.writer);
      try {
        this.preserveAll(this.tree, runs);
      } catch (err) {
        rebuilt.writer.freePages();
        throw err;
      }
      this.#commitRebuild(writer.pfn, rebuilt);
      saved = rebuilt.writer;
    } else {
      runs = writerRuns(writer);
      this.preserveAll(this.tree, runs);
    }
    this.saving.delete(node.name);
    this.#savingSince.delete(node);
    this.nodes.push({ pfn: saved.pfn, name: node.name, inherited: node.inherited, runs });
    return { pfn: saved.pfn, relocated: saved === writer ? 0 : saved.relocatedFolios };
  }

  nodeDiscarded(node: PkramNode): void {
    this.saving.delete(node.name);
    this.#savingSince.delete(node);
  }

  // --- what Pkram does ---

  find(name: string): number {
    return this.nodes.findIndex((n) => n.name === name);
  }

  /**
   * Takes a checked handover's table over in place, and its nodes: orphans
   * (blocks no node references) stay reserved in this generation but are
   * not handed over again, nor the predecessor's super block and region list.
   */
  adopt(check: HandoverCheck, superPfn: number): void {
    const tree = check.tree as KhoRadixTree;
    this.tree = tree;
    check.nodes.forEach((n, i) => {
      this.nodes.push({ pfn: n.pfn, name: n.name, inherited: true, runs: check.nodeRuns[i] });
    });
    const orphans = check.orphanPages > 0 ? check.orphanBlocks() : [];
    for (let i = 0; i < orphans.length; i += 2) tree.unpreserve(orphans[i], orphans[i + 1]);
    tree.unpreserve(superPfn, 0);
    if (check.sb.regionPfn !== 0) {
      tree.unpreserve(check.sb.regionPfn, 0);
      this.free(check.sb.regionPfn, 0);
    }
    this.superPfn = superPfn;
  }

  /**
   * As adopt, for a successor on trial: the nodes are taken into a new
   * table and the predecessor's table, super block and region list are
   * left untouched (O(runs) instead of O(table pages)).
   */
  adoptCopy(check: HandoverCheck): void {
    const fresh = new KhoRadixTree(this.device, this.tablePages);
    check.nodes.forEach((n, i) => {
      this.nodes.push({ pfn: n.pfn, name: n.name, inherited: true, runs: check.nodeRuns[i] });
    });
    this.preserveAll(
      fresh,
      this.nodes.flatMap((n) => n.runs),
    );
    this.tree = fresh;
    // superPfn stays 0: finalize takes a new page, never the predecessor's super block.
  }

  /** Takes a saved node out of the table for loading. @throws PkramError ENOENT, EFAULT. */
  takeNode(name: string): NodeRecord {
    const i = this.find(name);
    if (i < 0) throw new PkramError('ENOENT', `no saved node "${name}"`);
    const rec = this.nodes[i];
    this.#unpreserveRuns(rec.runs, rec.pfn);
    this.nodes.splice(i, 1);
    return rec;
  }

  /** See Pkram.finalize. */
  finalize(generation: number, bootId: Uint8Array): number {
    // Every change to the nodes or their pages changes the table: unchanged, the super block,
    // node list and region list written last time stand (a kexec's freeze finalizes twice),
    // unless the super block itself changed since (a successor that attached consumed it).
    if (
      this.superPfn !== 0 &&
      this.#finalTree === this.tree &&
      this.#finalChanges === this.tree.changes &&
      superIntact(this.device, this.superPfn)
    ) {
      return this.superPfn;
    }
    if (this.superPfn === 0) this.superPfn = this.allocPage();
    if (this.regionPfn === 0) this.regionPfn = this.allocPage();
    if (!this.metaPreserved) {
      this.preserveAll(this.tree, [pairList([this.superPfn, 0, this.regionPfn, 0])]);
      this.metaPreserved = true;
    }
    const { device, nodes } = this;
    for (let i = 0; i < nodes.length; i++) {
      const w = pageWords(device, nodes[i].pfn);
      setWordsU64(w, NODE_NEXT_WORD, i + 1 < nodes.length ? nodes[i + 1].pfn : 0);
      sealNode(device, nodes[i].pfn, w[NODE_OFF_FLAGS / 4]);
    }
    const extents = this.preservedExtents(PKRAM_REGIONS_MAX);
    const rw = pageWords(device, this.regionPfn);
    rw.fill(0);
    extents.forEach((x, i) => {
      setWordsU64(rw, (i * REGION_ENTRY_SIZE) / 4, x.base);
      setWordsU64(rw, (i * REGION_ENTRY_SIZE + 8) / 4, x.size);
    });
    writeSuper(device, this.superPfn, {
      generation,
      bootId,
      nodePfn: nodes.length > 0 ? nodes[0].pfn : 0,
      regionPfn: this.regionPfn,
      nrRegions: extents.length,
      nrNodes: nodes.length,
      tableRoot: this.tree.rootPhys,
      tableCrc: treeChecksum(device, this.tree.metadataPages(), crc32),
      regionCrc: regionListCrc(device, this.regionPfn, extents.length),
    });
    this.#finalTree = this.tree;
    this.#finalChanges = this.tree.changes;
    return this.superPfn;
  }

  /** See Pkram.preservedExtents. */
  preservedExtents(maxEntries: number): PhysRange[] {
    return this.#exactRuns().extents([...this.tree.metadataPages()], maxEntries);
  }

  /** See Pkram.relocateCollisions. */
  relocateCollisions(): RelocateResult {
    const out: RelocateResult = { nodes: 0, relocatedFolios: 0 };
    if (this.avoid.length === 0) return out;
    const runs = this.#exactRuns();
    let touched = false;
    for (let i = 0; i < runs.starts.length && !touched; i++) {
      touched = pairsTouch(this.avoid, runs.starts[i], runs.ends[i] - runs.starts[i]);
    }
    for (const rec of touched ? this.nodes : []) {
      if (!runsTouch(rec.runs, this.avoid)) continue;
      const rebuilt = this.#rebuild(rec.pfn, rec.name, rec.inherited);
      // Carried-over folios are in both nodes: preserve only what is new, then unpreserve what went.
      const oldBlocks = blockPairs(rec.runs);
      const newBlocks = blockPairs(writerRuns(rebuilt.writer));
      try {
        this.preserveAll(this.tree, [pairList(blocksMinus(newBlocks, oldBlocks))]);
      } catch (err) {
        rebuilt.writer.freePages();
        throw err;
      }
      const gone = blocksMinus(oldBlocks, newBlocks);
      for (let i = 0; i < gone.length; i += 2) this.tree.unpreserve(gone[i], gone[i + 1]);
      this.#commitRebuild(rec.pfn, rebuilt);
      rec.pfn = rebuilt.writer.pfn;
      rec.runs = writerRuns(rebuilt.writer);
      out.nodes++;
      out.relocatedFolios += rebuilt.writer.relocatedFolios;
    }
    for (const which of ['super', 'region'] as const) {
      const pfn = which === 'super' ? this.superPfn : this.regionPfn;
      if (pfn === 0 || !pairsTouch(this.avoid, pfn, 1)) continue;
      if (this.metaPreserved) {
        this.tree.unpreserve(this.superPfn, 0);
        this.tree.unpreserve(this.regionPfn, 0);
        this.metaPreserved = false;
      }
      this.free(pfn, 0);
      if (which === 'super') this.superPfn = 0;
      else this.regionPfn = 0;
    }
    for (const phys of this.tree.metadataPages()) {
      if (pairsTouch(this.avoid, phys / PAGE_SIZE, 1)) {
        this.#rebuildTable();
        break;
      }
    }
    return out;
  }

  /** Preserves every run of `lists` in `tree`, all or nothing. */
  preserveAll(tree: KhoRadixTree, lists: readonly RunList[]): void {
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
   * The exact runs of preserved pages (the table's own pages not included),
   * from the nodes' runs and the super block and region pages: the very set
   * the table holds, without walking it. O(runs log runs), once per change.
   */
  #exactRuns(): BlockRuns {
    const tree = this.tree;
    const cached = this.#runs;
    if (cached.tree === tree && cached.changes === tree.changes) return cached.runs;
    let n = this.metaPreserved ? 2 : 0;
    for (const rec of this.nodes) for (const l of rec.runs) n += l.length;
    const starts = new Float64Array(n);
    const ends = new Float64Array(n);
    let k = 0;
    if (this.metaPreserved) {
      for (const pfn of [this.superPfn, this.regionPfn]) {
        starts[k] = pfn;
        ends[k++] = pfn + 1;
      }
    }
    for (const rec of this.nodes) {
      for (const l of rec.runs) {
        for (let i = 0; i < l.length; i++) {
          starts[k] = l.pfns[i];
          ends[k++] = l.pfns[i] + l.blocks[i] * 2 ** l.orders[i];
        }
      }
    }
    const runs = unionRuns(starts, ends);
    cached.tree = tree;
    cached.changes = tree.changes;
    cached.runs = runs;
    return runs;
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
          this.tree.unpreserveRun(l.pfns[i], l.blocks[i], l.orders[i]);
          done.push([l, i]);
        }
      }
    } catch (err) {
      for (const [l, i] of done) this.tree.preserveRun(l.pfns[i], l.blocks[i], l.orders[i]);
      throw new PkramError('EFAULT', `node at pfn ${pfn}: ${messageOf(err)}`, 'metadata', {
        cause: err,
      });
    }
  }

  /** Builds the table afresh from the saved nodes (table pages in an avoided range). */
  #rebuildTable(): void {
    const fresh = new KhoRadixTree(this.device, this.tablePages);
    try {
      for (const rec of this.nodes) this.preserveAll(fresh, rec.runs);
      if (this.metaPreserved) {
        this.preserveAll(fresh, [pairList([this.superPfn, 0, this.regionPfn, 0])]);
      }
    } catch (err) {
      fresh.clear();
      throw err;
    }
    const old = this.tree;
    this.tree = fresh;
    old.clear();
  }

  /**
   * Copies node `oldPfn` into new pages outside the avoided ranges: folios
   * that collide become relocated base-page copies, others are carried over,
   * bytes are copied into new data pages. The old node is untouched.
   */
  #rebuild(oldPfn: number, name: string, inherited: boolean): Rebuilt {
    const device = this.device;
    const writer = new NodeWriter(this, encoder.encode(name));
    const oldOwned: number[] = [];
    try {
      const summary = walkNode(device, oldPfn, null, { left: 2 * device.pages });
      for (const os of summary.objects) {
        const obj = writer.beginObject();
        try {
          const ow = pageWords(device, os.pfn);
          const folios = new LinkCursor(device, wordsU64(ow, OBJ_OFF_FOLIO_HEAD / 4));
          for (let e = folios.next(); e !== null; e = folios.next()) {
            const owned = inherited || (e.flags & PKRAM_ENTRY_FL_RELOCATED) !== 0;
            if (pairsTouch(this.avoid, e.pfn, 2 ** e.order)) {
              obj.saveCopy(e.pfn, e.order, e.index);
              if (owned) oldOwned.push(e.pfn, e.order);
            } else {
              obj.append(e.pfn, e.order, e.flags, e.index);
            }
          }
          const data = new LinkCursor(device, wordsU64(ow, OBJ_OFF_BYTE_HEAD / 4));
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
    const pairs = own.blockPairs(r.oldOwned);
    for (let i = 0; i < pairs.length; i += 2) this.free(pairs[i], pairs[i + 1]);
  }
}

/** A writer's runs, compacted: what the table and the node record hold. */
function writerRuns(w: NodeWriter): RunList[] {
  return [w.meta.compacted(), w.copies.compacted(), w.folios.compacted()];
}

/**
 * The union of [starts[i], ends[i]) page ranges as sorted runs: both arrays
 * sorted natively, then one sweep (a range opens at a start, closes at an end).
 */
function unionRuns(starts: Float64Array, ends: Float64Array): BlockRuns {
  starts.sort();
  ends.sort();
  const runs = new BlockRuns();
  let open = 0;
  let from = 0;
  for (let s = 0, e = 0; e < ends.length; ) {
    if (s < starts.length && starts[s] < ends[e]) {
      if (open++ === 0) from = starts[s];
      s++;
    } else {
      if (--open === 0) runs.addPages(from, ends[e] - from);
      e++;
    }
  }
  return runs.close();
}

/** Every block of `lists`, as (pfn, order) pairs. */
function blockPairs(lists: readonly RunList[]): number[] {
  const out: number[] = [];
  for (const l of lists) l.blockPairs(out);
  return out;
}

/** Whether a run of `lists` touches one of the sorted avoided pairs. */
function runsTouch(lists: readonly RunList[], avoid: Float64Array): boolean {
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

/**
 * Byte ranges as sorted flat [start, end) pfn pairs (partial pages count whole).
 * @throws PkramError EINVAL (a range that is not non-negative integers).
 */
export function pfnPairs(ranges: readonly PhysRange[]): Float64Array {
  const pairs: [number, number][] = [];
  for (const r of ranges) {
    const { base: phys, size } = r ?? ({} as PhysRange);
    if (!Number.isSafeInteger(phys) || !Number.isSafeInteger(size) || phys < 0 || size < 0) {
      throw new PkramError('EINVAL', `range {${phys}, ${size}} is not a range`);
    }
    if (size === 0) continue;
    pairs.push([Math.floor(phys / PAGE_SIZE), Math.ceil((phys + size) / PAGE_SIZE)]);
  }
  pairs.sort((a, b) => a[0] - b[0]);
  return Float64Array.from(pairs.flat());
}

/** Whether [pfn, pfn + n) touches one of the sorted pairs. */
function pairsTouch(pairs: Float64Array, pfn: number, n: number): boolean {
  for (let i = 0; i < pairs.length; i += 2) {
    if (pairs[i] >= pfn + n) break;
    if (pairs[i + 1] > pfn) return true;
  }
  return false;
}
