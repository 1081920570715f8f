/**
 * PKRAM in a booted generation (`kernel.pkram`): the Pkram save/load API over
 * the kernel's page allocator, and PKRAM's part of kexec.
 *
 * - Late boot takes over the super block early boot accepted (Pkram.attach);
 *   if that still fails, the reserved pages stay reserved, never handed out.
 * - Handover: with KHO on, a KHO finalize notifier adds the subtree `pkram`
 *   pointing at the super block; always, freeze finalizes, marks PKRAM's
 *   extents PRESERVED in the handed-over map and records the super block and
 *   those marks in setup_data SETUP.PKRAM (standalone successors get
 *   `pkram=<pfn>`, the value finalize() returns, on their command line).
 * - kexec interplay: segmentsPlaced() makes PKRAM avoid the segments and the
 *   `pkram_ban=` ranges and moves saved nodes out of them. livekexec's kexec
 *   places segments in free pages (or in KHO scratch, which the allocator
 *   hands out only to transient allocations, and which PKRAM refuses to
 *   save, as KHO refuses to preserve it), so a saved folio cannot collide
 *   with a segment by construction; what does get moved is memory in a
 *   `pkram_ban=` range, for example nodes a predecessor saved there before
 *   the ban was given.
 */

import { show } from '../base/errors.js';
import type { PhysRange } from '../base/range.js';
import type { HandoverPart, HandoverSubsystem } from '../boot/handover.js';
import { FdtWriter } from '../fdt/write.js';
import { KhoError } from '../kho/errors.js';
import type { Kho } from '../kho/kho.js';
import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import { E820, type MemoryRange } from '../memory/memmap-types.js';
import { type BuddyAllocator, MAX_PAGE_ORDER } from '../mm/buddy.js';
import type { Folio } from '../mm/folio.js';
import type { PageHolder, PageOwnership } from '../mm/ownership.js';
import { addToCells } from '../mm/page-census.js';
import {
  PKRAM_KHO_COMPATIBLE,
  PKRAM_KHO_PROP_SUPER,
  PKRAM_KHO_SUBTREE,
  PKRAM_MAX_MAP_MARKS,
} from './abi.js';
import { PkramError } from './errors.js';
import { encodePkramSetup, type PkramEarly, type PkramVia } from './kernel-early.js';
import type { PkramNode } from './node.js';
import { Pkram, type PkramNodeInfo, type PkramPageSource, type RelocateResult } from './pkram.js';

export interface KernelPkramDeps {
  device: MemoryDevice;
  pages: BuddyAllocator;
  kho: Kho;
  /** KHO scratch, where transient allocations live: PKRAM refuses folios from it. */
  scratch?: readonly PhysRange[];
  /** Null in a crash kernel (no early boot of its own): PKRAM is off. */
  early: PkramEarly | null;
  generation: number;
  bootId: Uint8Array;
  log(line: string): void;
  /** @throws when the generation was replaced. */
  assertAlive(): void;
  /** The other owners of preserved pages (KHO, pools). */
  ownership?: PageOwnership;
  /** This generation boots on trial: the predecessor's PKRAM stays untouched until endTrial(). */
  trial?: boolean;
}

export interface KernelPkramStatus {
  enabled: boolean;
  disabledReason?: string;
  /** How the predecessor's super block came, when one was taken over. */
  attached: { superPfn: number; via: PkramVia; nodes: number } | null;
  refused?: string;
  superPfn: number;
  nodes: string[];
  preservedPages: number;
  bans: PhysRange[];
  lastRelocation: RelocateResult | null;
}

/** The kernel's page allocator as PKRAM's page source: preserved-at-boot blocks are released, others freed. */
export function buddyPageSource(pages: BuddyAllocator): PkramPageSource {
  return {
    allocPages: (order) => pages.allocPages(order),
    freePages: (pfn, order) => {
      if (pages.pageState(pfn) === 'reserved') pages.releaseRange(pfn, 2 ** order);
      else pages.freePages(pfn, order);
    },
  };
}

export class KernelPkram implements HandoverSubsystem {
  readonly name = 'pkram';
  readonly #deps: KernelPkramDeps;
  readonly #pkram: Pkram;
  readonly #attached: KernelPkramStatus['attached'];
  readonly #refused: string | undefined;
  readonly #disabled: string | undefined;
  readonly #bans: PhysRange[];
  /** The super block the KHO subtree points at, once added. */
  #khoSuper = 0;
  #lastRelocation: RelocateResult | null = null;
  /** pagesPerCell() as of the table it was derived from. */
  #cells: { key: string; cells: Map<number, number> } | null = null;

  constructor(deps: KernelPkramDeps) {
    this.#deps = deps;
    const { device, early, kho } = deps;
    const source = buddyPageSource(deps.pages);
    const fresh = (disabled?: string): Pkram =>
      new Pkram({
        device,
        pages: source,
        generation: deps.generation,
        bootId: deps.bootId,
        disabled,
        ownership: deps.ownership,
      });
    this.#bans = [...(early?.bans ?? [])];
    this.#refused = early?.refused;
    this.#attached = null;
    if (early === null || !early.enabled) {
      this.#disabled = early === null ? 'crash kernel' : (early.disabledReason ?? 'off');
      this.#pkram = fresh(this.#disabled);
      return;
    }
    let pkram: Pkram | null = null;
    if (early.incoming) {
      const { superPfn, via, expect, table } = early.incoming;
      try {
        pkram = Pkram.attach({
          device,
          pages: source,
          superPfn,
          expect,
          generation: deps.generation,
          bootId: deps.bootId,
          table,
          ownership: deps.ownership,
          trial: deps.trial === true,
        });
        this.#attached = { superPfn, via, nodes: pkram.names().length };
        deps.log(`PKRAM: attached super block at pfn ${superPfn}: ${this.#attached.nodes} nodes`);
      } catch (err) {
        if (!(err instanceof PkramError)) throw err;
        this.#refused = err.message;
        deps.log(
          `PKRAM: refusing the super block at pfn ${superPfn}: ${err.message}; its pages stay reserved`,
        );
      }
    }
    this.#pkram = pkram ?? fresh();
    this.#pkram.setAvoidRanges(this.#bans);
    this.#pkram.setTransientRanges(
      (deps.scratch ?? []).map((s) => ({ base: s.base, size: s.size })),
    );
    // The predecessor's subtree page is KHO's to free; claim it so it is not carried on.
    if (kho.hasIncomingSubtree(PKRAM_KHO_SUBTREE)) {
      try {
        kho.retrieveSubtree(PKRAM_KHO_SUBTREE);
      } catch (err) {
        if (!(err instanceof KhoError)) throw err;
        deps.log(`PKRAM: KHO subtree: ${err.message}`);
      }
    }
    if (kho.enabled) {
      kho.registerNotifier({
        finalize: () => this.#addSubtree(),
        abort: () => {
          if (kho.subtreeNames().includes(PKRAM_KHO_SUBTREE)) kho.removeSubtree(PKRAM_KHO_SUBTREE);
          this.#khoSuper = 0;
        },
      });
    }
  }

  /** Whether PKRAM is on in this generation. */
  get enabled(): boolean {
    return this.#disabled === undefined;
  }

  /** The underlying PKRAM (for tools and tests). @throws PkramError ENODEV when off. */
  get raw(): Pkram {
    this.#check();
    return this.#pkram;
  }

  /** The super block pfn (0 before the first finalize). */
  get superPfn(): number {
    return this.#pkram.superPfn;
  }

  /** Pages in preserved blocks. */
  get preservedPages(): number {
    return this.#pkram.preservedPages;
  }

  /** The generation on trial was marked good: the predecessor's super block is consumed now. */
  endTrial(): void {
    this.#pkram.endTrial();
  }

  /** Changes to what PKRAM preserves (PageOwnership.changes). */
  get changes(): number {
    return this.#pkram.tableChanges;
  }

  /** Whether a saved node holds a page of [pfn, pfn + count). */
  holder(pfn: number, count: number): PageHolder | null {
    return this.#pkram.holder(pfn, count);
  }

  /**
   * The pages PKRAM keeps (saved folios, node and link pages, the table's
   * own pages) per cell of 2^shift pages (cell index -> pages), for memory
   * layouts: one walk of the table each time it has changed, O(its blocks);
   * O(1) otherwise.
   */
  pagesPerCell(shift: number): ReadonlyMap<number, number> {
    const root = this.enabled ? this.#pkram.tableRoot : 0;
    if (root === 0) return new Map();
    const key = `${root}/${this.#pkram.tableChanges}/${shift}`;
    if (this.#cells?.key !== key) {
      const cells = new Map<number, number>();
      for (const e of this.#pkram.preservedExtents(Number.MAX_SAFE_INTEGER))
        addToCells(cells, e.base / PAGE_SIZE, e.size / PAGE_SIZE, shift);
      this.#cells = { key, cells };
    }
    return this.#cells.cells;
  }

  /**
   * Starts saving a node. @throws PkramError ENODEV, EINVAL, ENAMETOOLONG, EEXIST, ENOMEM;
   * KexecError ESRCH once replaced.
   */
  prepareSave(name: string): PkramNode {
    this.#check();
    return this.#pkram.prepareSave(name);
  }

  /** Takes a saved node out of the preserved set to load it. @throws PkramError ENODEV, ENOENT, EINVAL. */
  prepareLoad(name: string): PkramNode {
    this.#check();
    return this.#pkram.prepareLoad(name);
  }

  /** Frees a saved node by name. @throws PkramError ENODEV, ENOENT, EINVAL. */
  remove(name: string): void {
    this.#check();
    this.#pkram.remove(name);
  }

  /** The saved nodes. @throws PkramError ENODEV. */
  list(): PkramNodeInfo[] {
    this.#check();
    return this.#pkram.list();
  }

  /**
   * Writes the super block and returns its pfn: the value of `pkram=<pfn>`
   * for a standalone successor (freeze calls it again; the pfn stays).
   * @throws PkramError ENODEV, ENOMEM.
   */
  finalize(): number {
    this.#check();
    return this.#pkram.finalize();
  }

  /**
   * Makes a folio loaded from a node an allocated folio of this generation
   * (a predecessor's folio is still reserved from early boot), so that
   * `kernel.freePages` takes it. A folio of this generation is returned as is.
   * @throws PkramError EINVAL (not a whole reserved or allocated block), ENODEV.
   */
  takeFolio(folio: Folio): Folio {
    this.#check();
    const pages = this.#deps.pages;
    const { pfn, order } = typeof folio === 'object' && folio !== null ? folio : ({} as Folio);
    if (!Number.isSafeInteger(pfn) || pfn < 0 || pfn >= this.#deps.device.pages)
      throw new PkramError('EINVAL', `folio pfn ${show(pfn)} is outside the device`);
    if (!Number.isInteger(order) || order < 0)
      throw new PkramError('EINVAL', `folio order ${show(order)} is not an order`);
    const state = pages.pageState(pfn);
    if (state === 'allocated' && pages.headOrder(pfn) === order) return folio;
    if (state !== 'reserved' || order > MAX_PAGE_ORDER) {
      throw new PkramError('EINVAL', `pfn ${pfn} order ${order} is ${state}, not a loaded folio`);
    }
    try {
      pages.releaseRange(pfn, 2 ** order);
      pages.allocPagesAt(pfn, order);
    } catch (err) {
      throw new PkramError('EINVAL', `pfn ${pfn} order ${order}: ${String(err)}`);
    }
    return folio;
  }

  status(): KernelPkramStatus {
    return {
      enabled: this.enabled,
      disabledReason: this.#disabled,
      attached: this.#attached,
      refused: this.#refused,
      superPfn: this.#pkram.superPfn,
      nodes: this.enabled ? this.#pkram.names() : [],
      preservedPages: this.enabled ? this.#pkram.preservedPages : 0,
      bans: [...this.#bans],
      lastRelocation: this.#lastRelocation,
    };
  }

  // ------------------------------------------------------------ kexec

  /** Keeps PKRAM out of the segments and `pkram_ban=` ranges, moving saved nodes that are in them. */
  segmentsPlaced(segments: readonly PhysRange[]): void {
    if (!this.enabled) return;
    if (!Array.isArray(segments) || !segments.every((s) => typeof s === 'object' && s !== null))
      throw new PkramError('EINVAL', `segments must be an array of ranges, got ${show(segments)}`);
    this.#pkram.setAvoidRanges([
      ...segments.map((s) => ({ base: s.base, size: s.size })),
      ...this.#bans,
    ]);
    this.#lastRelocation = this.#pkram.relocateCollisions();
    if (this.#lastRelocation.nodes > 0) {
      this.#deps.log(
        `PKRAM: moved ${this.#lastRelocation.nodes} nodes (${this.#lastRelocation.relocatedFolios} folios copied) out of avoided ranges`,
      );
    }
  }

  /**
   * Finalizes and hands over: PRESERVED marks and the SETUP.PKRAM record.
   * @throws PkramError ENOMEM; EINVAL when KHO was finalized by hand before
   *   the super block moved (the subtree would point at the old one).
   */
  freeze(): HandoverPart {
    if (!this.#inUse()) return {};
    const { kho } = this.#deps;
    const superPfn = this.#pkram.finalize();
    if (kho.enabled && this.#khoSuper !== superPfn) {
      throw new PkramError(
        'EINVAL',
        `KHO subtree pkram points at pfn ${this.#khoSuper}, the super block is at ${superPfn} (KHO finalized too early?)`,
      );
    }
    const marks = this.#pkram.preservedExtents(PKRAM_MAX_MAP_MARKS);
    const mapMarks: MemoryRange[] = marks.map((m) => ({
      base: m.base,
      size: m.size,
      type: E820.PRESERVED,
    }));
    return { setupData: [encodePkramSetup({ superPfn, marks })], marks: mapMarks };
  }

  /** PKRAM hands nothing over (and allocates nothing) until a node is saved or finalize is called. */
  #inUse(): boolean {
    return this.enabled && (this.#pkram.superPfn !== 0 || this.#pkram.names().length > 0);
  }

  #addSubtree(): void {
    if (!this.#inUse()) return;
    const { kho } = this.#deps;
    const superPfn = this.#pkram.finalize();
    if (kho.subtreeNames().includes(PKRAM_KHO_SUBTREE)) kho.removeSubtree(PKRAM_KHO_SUBTREE);
    const w = new FdtWriter();
    w.finishReservations();
    w.beginNode('');
    w.propertyString('compatible', PKRAM_KHO_COMPATIBLE);
    w.propertyU64(PKRAM_KHO_PROP_SUPER, superPfn * PAGE_SIZE);
    w.endNode();
    kho.addSubtree(PKRAM_KHO_SUBTREE, w.finish());
    this.#khoSuper = superPfn;
  }

  #check(): void {
    this.#deps.assertAlive();
    if (this.#disabled !== undefined) {
      throw new PkramError('ENODEV', `PKRAM is disabled (${this.#disabled})`);
    }
  }
}
