import { show } from '../base/errors.js';
import { hex } from '../base/hex.js';
import type { PfnRange } from '../base/range.js';
import type { HandoverPart, HandoverSubsystem } from '../boot/handover.js';
import { FdtError } from '../fdt/errors.js';
import { FdtWriter } from '../fdt/write.js';
import { KhoError } from '../kho/errors.js';
import type { Kho } from '../kho/kho.js';
import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import { E820 } from '../memory/memmap-types.js';
import type { PageHolder } from '../mm/ownership.js';
import {
  BITMAP_OFFSET,
  FDT_COMPATIBLE,
  FDT_NODE_DEFAULT,
  FDT_PROP_BASE,
  FDT_PROP_BITMAP,
  FDT_PROP_COMPATIBLE,
  FDT_PROP_SIZE,
} from './abi.js';
import { type CheckReport, CmaPool, type PoolStats } from './cma.js';
import { PmpoolError } from './errors.js';
import { label, type PmpoolEarly, type PmpoolRange } from './pool-early.js';
import type { PmpoolOrigin, PmpoolStatus, PmpoolsStatus } from './status.js';

/** Named pools are handed over as `pmpool_<name>` (the default one as `default_pmpool`). */
const FDT_NODE_PREFIX = 'pmpool_';
/** KHO subtree names are FDT node names: at most 31 characters. */
const FDT_NODE_NAME_MAX = 31;

/** The v2 FDT node a predecessor handed over for one pool. */
export interface PmpoolNode {
  readonly base: number;
  readonly size: number;
  readonly bitmap: number;
}

/** How to bring one pool up, and what to report. */
export interface BringUpPlan {
  readonly action: 'attach' | 'format';
  readonly origin: PmpoolOrigin;
  readonly reason: string | null;
}

/**
 * Decides how a pool comes up from what the predecessor left: its v2 node
 * (or why that node is unusable) and whether the map kept the range (v3).
 * A node that does not match the command line is never trusted: over a
 * range the map did not keep, the pool is reinitialised and the mismatch
 * reported, as the v2 restore requires; over a kept range, what is in place
 * is attached (v3), since formatting it would free pages that may be held.
 */
export function planBringUp(range: PmpoolRange, node: PmpoolNode | string | null): BringUpPlan {
  const unusable = nodeProblem(range, node);
  if (unusable !== null) {
    // The node lies outside every checksum; the handed-over map does not. Over
    // a range the map kept, a node that disagrees is damage, and formatting
    // would free pages that may be held: attach what is in place (its header
    // and check words are verified, a damaged pool is rebuilt) and say why.
    if (range.marked)
      return {
        action: 'attach',
        origin: 'v3',
        reason: `${unusable}; the node ignored, the map kept the range`,
      };
    return { action: 'format', origin: 'reinitialised', reason: unusable };
  }
  if (node !== null) return { action: 'attach', origin: 'v2', reason: null };
  if (range.marked) return { action: 'attach', origin: 'v3', reason: null };
  return { action: 'format', origin: 'fresh', reason: null };
}

/** Why the predecessor's v2 node cannot be used for `range`, or null (also when there is none). */
function nodeProblem(range: PmpoolRange, node: PmpoolNode | string | null): string | null {
  if (typeof node === 'string') return `the handed-over node: ${node}`;
  if (node === null) return null;
  if (node.base !== range.base || node.size !== range.size) {
    return (
      `base/size mismatch: the predecessor's pool was [${hex(node.base)}, +${hex(node.size)}), ` +
      `the command line says [${hex(range.base)}, +${hex(range.size)})`
    );
  }
  if (node.bitmap !== range.base + BITMAP_OFFSET) {
    return `the handed-over bitmap at ${hex(node.bitmap)} is not the pool's own (${hex(range.base + BITMAP_OFFSET)})`;
  }
  return null;
}

/** The KHO subtree name of a pool, or null when the name makes it too long for one. */
export function fdtNodeName(name: string | null): string | null {
  if (name === null) return FDT_NODE_DEFAULT;
  const node = `${FDT_NODE_PREFIX}${name}`;
  return node.length <= FDT_NODE_NAME_MAX ? node : null;
}

/**
 * One persistent memory pool of this generation (`kernel.pmpool`,
 * `kernel.pmpools.get(name)`): the CMA-style allocator over its range, and
 * how it came up.
 */
export class Pmpool {
  readonly name: string | null;
  readonly base: number;
  readonly size: number;
  readonly origin: PmpoolOrigin;
  /** Why it was reinitialised, or what attach recovered; null otherwise. */
  readonly reason: string | null;
  readonly fdtNode: string | null;
  /** The allocator itself. */
  readonly cma: CmaPool;
  readonly #assertAlive: () => void;

  /** @hidden built by Pmpools. */
  constructor(init: {
    range: PmpoolRange;
    origin: PmpoolOrigin;
    reason: string | null;
    cma: CmaPool;
    assertAlive: () => void;
  }) {
    this.name = init.range.name;
    this.base = init.range.base;
    this.size = init.range.size;
    this.origin = init.origin;
    this.reason = init.reason;
    this.fdtNode = fdtNodeName(init.range.name);
    this.cma = init.cma;
    this.#assertAlive = init.assertAlive;
  }

  /**
   * `count` free pages whose first pfn is a multiple of `align`.
   * @returns the range, or null when the pool has no such run.
   * @throws PmpoolError EINVAL, EFAULT (see CmaPool.alloc); KexecError ESRCH once replaced.
   */
  alloc(count: number, align = 1): PfnRange | null {
    this.#assertAlive();
    return this.cma.alloc(count, align);
  }

  /**
   * Gives back pages alloc handed out.
   * @returns false, changing nothing, for a range this pool did not hand out.
   * @throws PmpoolError EINVAL, EFAULT; KexecError ESRCH once replaced.
   */
  release(pfn: number, count: number): boolean {
    this.#assertAlive();
    return this.cma.release(pfn, count);
  }

  /** v1's interface: 2^order pages, aligned, not capped by MAX_ORDER. @throws PmpoolError EINVAL. */
  allocPages(order: number): number | null {
    this.#assertAlive();
    return this.cma.allocPages(order);
  }

  /** v1's interface. @returns false for pages this pool did not hand out. @throws PmpoolError EINVAL. */
  freePages(pfn: number, order: number): boolean {
    this.#assertAlive();
    return this.cma.freePages(pfn, order);
  }

  isAllocated(pfn: number): boolean {
    return this.cma.isAllocated(pfn);
  }

  stats(): PoolStats {
    return this.cma.stats();
  }

  /** Checks the metadata; with `repair`, recovers a killed operation. */
  check(options: { repair?: boolean } = {}): CheckReport {
    return this.cma.check(options);
  }

  status(): PmpoolStatus {
    const s = this.cma.stats();
    return {
      name: this.name,
      base: this.base,
      size: this.size,
      totalPages: s.totalPages,
      metadataPages: s.metadataPages,
      usedPages: s.usedPages,
      freePages: s.freePages,
      largestFreeRun: s.largestFreeRun,
      origin: this.origin,
      reason: this.reason,
      fdtNode: this.fdtNode,
    };
  }

  /** The v2 node handed to the successor. */
  subtree(): Uint8Array {
    const w = new FdtWriter();
    w.finishReservations();
    w.beginNode('');
    w.propertyString(FDT_PROP_COMPATIBLE, FDT_COMPATIBLE);
    w.propertyU64(FDT_PROP_BASE, this.base);
    w.propertyU64(FDT_PROP_SIZE, this.size);
    w.propertyU64(FDT_PROP_BITMAP, this.cma.bitmapPhys);
    w.endNode();
    return w.finish();
  }
}

export interface PmpoolsDeps {
  readonly device: MemoryDevice;
  readonly kho: Kho;
  readonly early: PmpoolEarly;
  /** Appends a line to the boot log. */
  readonly log: (line: string) => void;
  /** Throws once the generation is replaced (KexecError ESRCH). */
  readonly assertAlive?: () => void;
}

/**
 * The pools' late part (`kernel.pmpools`): brings every pool reserved in
 * early boot up (v2, v3, fresh or reinitialised, each logged), claims the
 * predecessor's v2 nodes, and takes part in kexec: freeze marks every pool
 * range "reserved by kernel" (v3) and a KHO notifier writes each pool's v2
 * node at finalize.
 */
export class Pmpools implements HandoverSubsystem {
  readonly name = 'pmpool';
  readonly #pools: Pmpool[] = [];

  constructor(deps: PmpoolsDeps) {
    const assertAlive = deps.assertAlive ?? (() => {});
    for (const range of deps.early.pools) {
      const pool = bringUp(deps, range, assertAlive);
      this.#pools.push(pool);
      const s = pool.stats();
      deps.log(
        `pmpool: ${label(pool.name)} at ${hex(pool.base)}: ${pool.origin}` +
          (pool.reason ? ` (${pool.reason})` : '') +
          `, ${s.usedPages - s.metadataPages} of ${s.totalPages - s.metadataPages} data pages in use`,
      );
    }
    const kho = deps.kho;
    if (!kho.enabled || this.#pools.length === 0) return;
    kho.registerNotifier({
      finalize: () => {
        const names = kho.subtreeNames();
        for (const p of this.#pools) {
          if (p.fdtNode === null) continue;
          if (names.includes(p.fdtNode)) kho.removeSubtree(p.fdtNode);
          kho.addSubtree(p.fdtNode, p.subtree());
        }
      },
    });
  }

  /** The default pool (`pmpool=<base>,<size>`), or null. */
  get default(): Pmpool | null {
    return this.#pools.find((p) => p.name === null) ?? null;
  }

  /** The pool `name`, or the default pool without a name; undefined when there is none. */
  get(name?: string): Pmpool | undefined {
    const key = name ?? null;
    return this.#pools.find((p) => p.name === key);
  }

  /** The pool whose range holds a page of [pfn, pfn + count): every page of a pool is the pool's. */
  holder(pfn: number, count: number): PageHolder | null {
    if (!Number.isSafeInteger(pfn) || !Number.isSafeInteger(count))
      throw new PmpoolError(
        'EINVAL',
        `holder: pfn ${show(pfn)} and count ${show(count)} must be integers`,
      );
    for (const p of this.#pools) {
      const first = p.base / PAGE_SIZE;
      const end = first + p.size / PAGE_SIZE;
      if (pfn < end && first < pfn + count) {
        return { holder: `pmpool ${label(p.name)}`, pfn: Math.max(pfn, first) };
      }
    }
    return null;
  }

  /** Every pool, in command-line order. */
  list(): Pmpool[] {
    return [...this.#pools];
  }

  status(): PmpoolsStatus {
    return { pools: this.#pools.map((p) => p.status()) };
  }

  /** Every pool range goes to the successor marked "reserved by kernel" (v3). */
  freeze(): HandoverPart {
    return {
      marks: this.#pools.map((p) => ({ base: p.base, size: p.size, type: E820.RESERVED_KERN })),
    };
  }
}

/** Brings one pool up: reads and claims its v2 node, then attaches or formats. */
function bringUp(deps: PmpoolsDeps, range: PmpoolRange, assertAlive: () => void): Pmpool {
  const node = claimNode(deps.kho, fdtNodeName(range.name));
  const plan = planBringUp(range, node);
  let origin = plan.origin;
  let reason = plan.reason;
  let cma: CmaPool | null = null;
  if (plan.action === 'attach') {
    try {
      cma = CmaPool.attach(deps.device, range.base, range.size);
      const report = cma.attachReport;
      if (report && report.problems.length > 0)
        reason = [reason, `recovered: ${report.problems.join('; ')}`].filter(Boolean).join('; ');
    } catch (err) {
      if (!(err instanceof PmpoolError)) throw err;
      if (err.code === 'ESTALE') {
        // A whole, valid pool of another shape: the configuration changed, as a v2 mismatch.
        origin = 'reinitialised';
        reason = `${plan.origin} attach failed: ${err.message}`;
      } else {
        // Damage: its pages may be held (lent out), so nothing that may be held is freed.
        cma = CmaPool.rebuild(deps.device, range.base, range.size);
        const r = cma.attachReport;
        origin = 'rebuilt';
        reason =
          `${plan.origin} attach failed: ${err.message}; rebuilt: ` +
          `${r?.damagedChunks ?? 0} bitmap chunks damaged, ${r?.markedInUse ?? 0} pages marked in use` +
          (r && r.problems.length > 0 ? ` (${r.problems.join('; ')})` : '');
      }
    }
  }
  // Early boot checked the range and its size, so format cannot fail here.
  cma ??= CmaPool.format(deps.device, range.base, range.size);
  return new Pmpool({ range, origin, reason, cma, assertAlive });
}

/** The predecessor's v2 node for a pool, claimed; a string says why it is unusable. */
function claimNode(kho: Kho, name: string | null): PmpoolNode | string | null {
  if (name === null || !kho.enabled || !kho.isKhoBoot()) return null;
  if (!kho.hasIncomingSubtree(name)) return null;
  try {
    const fdt = kho.retrieveSubtree(name);
    if (!fdt.getStringList(0, FDT_PROP_COMPATIBLE).includes(FDT_COMPATIBLE)) {
      return `'${name}' is not compatible with "${FDT_COMPATIBLE}"`;
    }
    const base = fdt.getU64(0, FDT_PROP_BASE);
    const size = fdt.getU64(0, FDT_PROP_SIZE);
    const bitmap = fdt.getU64(0, FDT_PROP_BITMAP);
    if (typeof base !== 'number' || typeof size !== 'number' || typeof bitmap !== 'number') {
      return `'${name}' holds an address beyond 2^53`;
    }
    return { base, size, bitmap };
  } catch (err) {
    if (err instanceof FdtError || err instanceof KhoError) return `'${name}': ${err.message}`;
    throw err;
  }
}
