/**
 * PKRAM: preserved-over-kexec memory storage (the RFC's mm/pkram.c). A
 * program saves folios and bytes under a node name; a successor kernel
 * attaches to the super block and loads them back.
 *
 * All state a successor needs lives in device pages (abi.ts): node, object
 * and link pages written as the save goes, the node list and super block
 * written by finalize(), and every preserved page recorded in a preserved-page
 * table (a KHO radix tree) whose root the super block holds. In memory there
 * is only the list of saved nodes with their runs of blocks, the names being
 * saved, and the table's own counters (core.ts), all rebuilt by attach().
 */

import { messageOf, show } from '../base/errors.js';
import type { PhysRange } from '../base/range.js';
import type { KhoTreeCheck } from '../kho/radix.js';
import { checkDeviceViews, type MemoryDevice } from '../memory/device.js';
import { randomBytes } from '../memory/random.js';
import type { PageHolder, PageOwnership } from '../mm/ownership.js';
import { PKRAM_BOOT_ID_SIZE, PKRAM_NAME_MAX } from './abi.js';
import { PkramCore, type PkramPageSource, pfnPairs, type RelocateResult } from './core.js';
import { PkramError } from './errors.js';
import { checkPkramHandover, preservedRanges, readRegionList } from './handover.js';
import { PkramNode } from './node.js';
import { consumeSuper, type PkramExpect } from './super.js';
import { type NodeSummary, walkNode } from './walk.js';
import { NodeWriter } from './writer.js';

export type { PkramPageSource, RelocateResult };

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
  /**
   * The predecessor's preserved-page table as early boot checked it
   * (PkramEarly.incoming.table): taken over without validating it again,
   * once its crc32c matches the super block's again.
   */
  table?: KhoTreeCheck;
  /** As PkramOptions.ownership. */
  ownership?: PageOwnership;
  /**
   * The successor is on trial (boot counting): the predecessor's super
   * block, table and region list stay as they are, so a retry or the
   * fallback attaches them again; this kernel works on a copy of the table
   * until endTrial().
   */
  trial?: boolean;
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

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class Pkram {
  readonly device: MemoryDevice;
  readonly generation: number;
  readonly bootId: Uint8Array;
  /** The state, and what nodes and objects may do here (node.ts): nothing of it is public. */
  readonly #core: PkramCore;
  /** The predecessor's super block, attached on trial and not consumed yet (0: none). */
  #trialSuper = 0;

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
    this.#core = new PkramCore(device, pages, options.disabled ?? null, options.ownership ?? null);
  }

  /**
   * The successor's side: validates the predecessor's super block (magic,
   * version, crc, generation, boot id), its preserved-page table and every
   * node, and only then takes them over: the super block is marked consumed
   * (a second attach is refused) and the table becomes this kernel's, in
   * place (O(table pages), not O(blocks)), less the super block, the region
   * list and any block no node references. Loaded nodes' pages come back
   * through `pages.freePages`.
   * @throws PkramError ENODEV (no super block), EINVAL (stale), EFAULT (corrupt),
   *   ENOMEM (on trial: no page for the copy of the table).
   */
  static attach(options: PkramAttachOptions): Pkram {
    const { device, pages, superPfn, expect } = options;
    const pkram = new Pkram({
      device,
      pages,
      generation: options.generation ?? expect.generation + 1,
      bootId: options.bootId ?? randomBytes(PKRAM_BOOT_ID_SIZE),
      ownership: options.ownership,
    });
    const core = pkram.#core;
    const check = checkPkramHandover(device, superPfn, expect, core.tablePages, options.table);
    // Everything checked: from here on nothing fails, but for the copy of the table
    // on trial (ENOMEM, with the predecessor's left as it was for a retry).
    if (options.trial === true) {
      core.adoptCopy(check);
      pkram.#trialSuper = superPfn;
    } else {
      core.adopt(check, superPfn);
      consumeSuper(device, superPfn);
    }
    return pkram;
  }

  /**
   * The successor attached on trial was marked good: the predecessor's super
   * block is consumed now (its table and region list pages stay unused until
   * the next handover, which does not preserve them).
   */
  endTrial(): void {
    if (this.#trialSuper === 0) return;
    consumeSuper(this.device, this.#trialSuper);
    this.#trialSuper = 0;
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
    const check = checkPkramHandover(device, superPfn, expect);
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
  ): PhysRange[] {
    return preservedRanges(device, superPfn, maxEntries, expect);
  }

  /** The region list written at finalize. @throws PkramError ENODEV, EINVAL, EFAULT. */
  static regionList(device: MemoryDevice, superPfn: number, expect?: PkramExpect): PhysRange[] {
    return readRegionList(device, superPfn, expect);
  }

  /** The super block pfn (0 before the first finalize of a fresh PKRAM). */
  get superPfn(): number {
    return this.#core.superPfn;
  }

  /** Pages in preserved blocks (the table's count; the table's own pages excluded). */
  get preservedPages(): number {
    return this.#core.tree.preservedPages();
  }

  /** Physical address of the preserved-page table's root (0 while nothing is saved). */
  get tableRoot(): number {
    return this.#core.tree.rootPhys;
  }

  /** Changes whenever the preserved-page table does (with tableRoot: a key for what is derived from it). */
  get tableChanges(): number {
    return this.#core.tree.changes;
  }

  /** Pages the preserved-page table itself uses. */
  get tablePages(): number {
    return this.#core.tree.metadataPageCount;
  }

  /**
   * The preserved pages, the table's own included, as at most maxEntries
   * coalesced ranges: what Pkram.preservedRanges reads back from the super
   * block a finalize wrote, computed from the live table (one walk of it per
   * change, O(its pages + runs)).
   * @throws PkramError EINVAL (maxEntries not a positive integer).
   */
  preservedExtents(maxEntries: number): PhysRange[] {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new PkramError('EINVAL', `maxEntries ${maxEntries} is not a positive integer`);
    }
    return this.#core.preservedExtents(maxEntries);
  }

  /**
   * Starts saving a node.
   * @throws PkramError ENODEV, EINVAL (not a string, empty, not well-formed UTF-16),
   *   ENAMETOOLONG (over 256 bytes of UTF-8), EEXIST (saved or being saved), ENOMEM.
   */
  prepareSave(name: string): PkramNode {
    const core = this.#core;
    core.check();
    const bytes = encodeName(name);
    if (core.find(name) >= 0 || core.saving.has(name)) {
      throw new PkramError('EEXIST', `node "${name}" already exists`);
    }
    const node = new PkramNode(core, name, false, new NodeWriter(core, bytes), 0);
    core.saving.add(name);
    core.savingStarted(node);
    return node;
  }

  /**
   * Takes a saved node out of the preserved set to load it: O(its runs).
   * @throws PkramError ENODEV, ENOENT (no saved node of that name), EINVAL (bad name),
   *   EFAULT (its pages are not all in the preserved-page table: nothing changed).
   */
  prepareLoad(name: string): PkramNode {
    const core = this.#core;
    core.check();
    encodeName(name);
    const rec = core.takeNode(name);
    return new PkramNode(core, rec.name, rec.inherited, null, rec.pfn);
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
    this.#core.check();
    return this.#core.nodes.map((r) => r.name);
  }

  /** The saved nodes, in node-list order: a walk of every node, O(entries). @throws PkramError ENODEV. */
  list(): PkramNodeInfo[] {
    this.#core.check();
    const budget = { left: 2 * this.device.pages };
    return this.#core.nodes.map((r) => nodeInfo(walkNode(this.device, r.pfn, null, budget)));
  }

  /**
   * Writes (or refreshes) the node list, region list and super block, and
   * returns the super block pfn: the value of `pkram=<pfn>`. Call it again
   * after any later change; nodes still being saved are not included.
   * O(nodes + table pages + preserved runs).
   * @throws PkramError ENODEV, ENOMEM.
   */
  finalize(): number {
    this.#core.check();
    return this.#core.finalize(this.generation, this.bootId);
  }

  /**
   * Sets the ranges PKRAM must keep out of (replacing earlier ones). Folios
   * saved from now on that collide are copied; pages PKRAM allocates avoid
   * them. Already saved nodes are moved by relocateCollisions().
   * @throws PkramError ENODEV, EINVAL (a range that is not non-negative integers).
   */
  setAvoidRanges(ranges: readonly PhysRange[]): void {
    this.#core.check();
    this.#core.avoid = pfnPairs(ranges);
  }

  /**
   * Sets the ranges of memory that is never preserved (KHO scratch serving
   * transient allocations, replacing earlier ones): saveFolio refuses a
   * folio there, as KHO refuses to preserve one. Copying it out instead
   * would cost O(data) and hide that the caller asked for the wrong memory.
   * @throws PkramError ENODEV, EINVAL (a range that is not non-negative integers).
   */
  setTransientRanges(ranges: readonly PhysRange[]): void {
    this.#core.check();
    this.#core.transient = pfnPairs(ranges);
  }

  /**
   * Moves every saved node, the super block, the region list and the table
   * off the avoided ranges (for a kexec load that comes after the save).
   * A node that cannot be moved (ENOMEM) is left as it was. When no
   * preserved page touches an avoided range, no node is walked.
   * @throws PkramError ENODEV, ENOMEM.
   */
  relocateCollisions(): RelocateResult {
    this.#core.check();
    return this.#core.relocateCollisions();
  }

  /**
   * Whether PKRAM holds any page of [pfn, pfn + count) in its saved nodes
   * (what the other owners of preserved pages ask before they take one).
   * @throws PkramError EINVAL (not integers).
   */
  holder(pfn: number, count: number): PageHolder | null {
    if (!Number.isSafeInteger(pfn) || !Number.isSafeInteger(count))
      throw new PkramError(
        'EINVAL',
        `holder: pfn ${show(pfn)} and count ${show(count)} must be integers`,
      );
    if (this.#core.disabled !== null) return null;
    const at = this.#core.tree.firstPreservedIn(pfn, count);
    return at >= 0 ? { holder: 'PKRAM', pfn: at } : null;
  }
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
