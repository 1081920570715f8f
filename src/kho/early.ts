import { hex } from '../base/hex.js';
import type { PhysRange } from '../base/range.js';
import { SETUP } from '../boot/abi.js';
import type { EarlyContext } from '../boot/early-context.js';
import { MEMBLOCK_RSRV_NOINIT } from '../boot/memblock.js';
import { describeKhoScratch, KHO, KHO_SCRATCH } from '../boot/params.js';
import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import type { MemoryMap } from '../memory/memmap.js';
import { E820, type MemoryRange } from '../memory/memmap-types.js';
import { KHO_MAX_MAP_MARKS } from './abi.js';
import { KhoError } from './errors.js';
import { BlockRuns, type KhoBlockRuns, KhoRadixTree } from './radix.js';
import { type KhoRoot, parseRootFdt } from './root-fdt.js';
import {
  allocateScratch,
  decodeScratch,
  planScratch,
  type ScratchArea,
  type ScratchPlan,
} from './scratch.js';
import { treeChecksum } from './tree-csum.js';

/** The handover a KHO boot received, read and reserved in early boot. */
export interface KhoIncoming extends KhoBlockRuns {
  readonly root: KhoRoot;
  /** The root FDT as received (for status). */
  readonly rootFdt: Uint8Array;
  /** Pages of the predecessor's radix tree, freed once the boot is done with them. */
  readonly treePages: readonly number[];
}

/** What KHO's early boot decided. */
export interface KhoEarly {
  readonly enabled: boolean;
  /** Why KHO is off or revival was refused, for the boot log and status. */
  readonly disabledReason?: string;
  readonly revivalRefused?: string;
  readonly scratch: readonly ScratchArea[];
  readonly incoming: KhoIncoming | null;
  /** Set until khoScratchInit has reserved the scratch areas of a boot without a revived handover. */
  readonly scratchPending?: ScratchPlan;
}

/**
 * A KhoEarly with every field, in one order: the object literals of a cold
 * boot, a revival and a disabled KHO had three shapes, and KHO's code that
 * rehearsals optimized on one deoptimized on another in a successor's
 * restore.
 */
export function khoEarly(e: KhoEarly): KhoEarly {
  return {
    enabled: e.enabled,
    disabledReason: e.disabledReason,
    revivalRefused: e.revivalRefused,
    scratch: e.scratch,
    incoming: e.incoming,
    scratchPending: e.scratchPending,
  };
}

/**
 * KHO's part of early boot. A KHO boot (root FDT and scratch in setup_data,
 * `kho=on`) runs memblock scratch-only while it reads the handover, reserves
 * every preserved block with no-init, turns the preserved extents of the
 * memory map back into memory and keeps the same scratch areas for the next
 * kexec. Anything wrong in the handover refuses revival with a message; the
 * preserved extents then stay out of the page allocator.
 */
export function khoEarlyInit(ctx: EarlyContext, options: { disabled?: string } = {}): KhoEarly {
  const enabled = options.disabled === undefined && (ctx.params.get(KHO) ?? true);
  const rootData = ctx.setupData.find((s) => s.type === SETUP.KHO_FDT);
  // Scratch belongs to the boot that receives it; whatever else the map calls
  // scratch (an earlier generation's, seen again after a cold boot) is plain memory.
  const handedScratch = unmarkScratch(ctx);
  if (!enabled) {
    const why = options.disabled ?? 'kho=off';
    if (rootData)
      ctx.log(`KHO: ${why}: not reviving the handover; preserved memory stays reserved`);
    return khoEarly({ enabled: false, disabledReason: why, scratch: [], incoming: null });
  }
  let revivalRefused: string | undefined;
  const asked = ctx.params.get(KHO_SCRATCH);
  if (rootData) {
    try {
      const revived = revive(ctx, rootData.data, handedScratch);
      if (asked)
        ctx.log('KHO: kho_scratch= ignored: a KHO boot keeps the scratch areas it was handed');
      return revived;
    } catch (err) {
      if (!(err instanceof KhoError)) throw err;
      revivalRefused = err.message;
      ctx.memblock.setScratchOnly(false);
      unmarkScratch(ctx);
      ctx.log(`KHO: disabling KHO revival: ${err.message}`);
    }
  }
  // Sized now, from the kernel's own reservations; placed after the fixed ranges of other subsystems.
  if (asked) ctx.log(`KHO: kho_scratch=: ${describeKhoScratch(asked)}`);
  const plan = planScratch(ctx.memblock, ctx.nodes, asked);
  return khoEarly({
    enabled: true,
    revivalRefused,
    scratch: [],
    incoming: null,
    scratchPending: plan,
  });
}

/**
 * Reserves the scratch areas of a boot that revived no handover, after the
 * other subsystems have taken their fixed ranges (pmpool=, reserve_mem=), so
 * scratch never lands on a range the command line asks for.
 */
export function khoScratchInit(ctx: EarlyContext, early: KhoEarly): KhoEarly {
  if (!early.scratchPending) return early;
  try {
    const scratch = allocateScratch(ctx.memblock, ctx.nodes, early.scratchPending);
    for (const a of scratch) ctx.memoryMap.add(a.base, a.size, E820.SCRATCH);
    return khoEarly({ ...early, scratch, scratchPending: undefined });
  } catch (err) {
    if (!(err instanceof KhoError)) throw err;
    ctx.log(`KHO: ${err.message}: disabling kexec handover`);
    return khoEarly({
      ...early,
      enabled: false,
      disabledReason: err.message,
      scratch: [],
      scratchPending: undefined,
    });
  }
}

/** Turns every scratch range of the map into usable memory (map and memblock); returns what it was. */
function unmarkScratch(ctx: EarlyContext): MemoryRange[] {
  const scratch = ctx.memoryMap.entries().filter((r) => r.type === E820.SCRATCH);
  for (const r of scratch) {
    ctx.memoryMap.update(r.base, r.size, E820.SCRATCH, E820.USABLE);
    ctx.memblock.clearScratch(r.base, r.size);
  }
  return scratch;
}

/**
 * Revives a handover: the scratch it was handed, then (scratch-only) the
 * preserved-memory tree, checked whole before anything is reserved.
 * @throws KhoError EFAULT anything in the handover that is not sound
 */
function revive(
  ctx: EarlyContext,
  rootFdt: Uint8Array,
  handedScratch: readonly MemoryRange[],
): KhoEarly {
  const scratch = readHandedScratch(ctx, handedScratch);
  enterScratchOnly(ctx, scratch);
  // The boot block's crc32c, over its setup_data, matched when it was read.
  const root = parseRootFdt(rootFdt, ctx.device.size, { crcChecked: true });
  checkTreeChecksum(ctx.device, root);
  const walk = walkPreserved(ctx.device, root);
  checkSubtreesPreserved(root, walk);
  checkInPreservedMemory(ctx.memoryMap, walk);
  reservePreserved(ctx, walk);
  ctx.memblock.setScratchOnly(false);
  // Scratch stays set aside: the next kexec's boot block goes there.
  for (const a of scratch) ctx.memblock.reserve(a.base, a.size);
  ctx.log(
    `KHO: handover read: ${walk.blocks} preserved blocks (${walk.pages} pages), ${root.subtrees.size} subtrees, ${scratch.length} scratch areas`,
  );
  const { runPfn, runBlocks, runOrder, runs } = walk.blockRuns;
  const incoming = { root, rootFdt, runPfn, runBlocks, runOrder, runs, treePages: walk.nodePhys };
  return khoEarly({ enabled: true, scratch, incoming });
}

/**
 * The scratch areas the boot block hands over: each must be memory, and
 * scratch in the map the predecessor left.
 * @throws KhoError EFAULT
 */
export function readHandedScratch(
  ctx: Pick<EarlyContext, 'device' | 'memblock' | 'setupData'>,
  handedScratch: readonly MemoryRange[],
): ScratchArea[] {
  const scratchData = ctx.setupData.find((s) => s.type === SETUP.KHO_SCRATCH);
  if (!scratchData) throw new KhoError('EFAULT', 'the boot block carries no KHO scratch areas');
  const scratch = decodeScratch(scratchData.data, ctx.device.size);
  for (const a of scratch) {
    if (
      !ctx.memblock.isMemory(a.base, a.size) ||
      !handedScratch.some((r) => r.base <= a.base && a.base + a.size <= r.base + r.size)
    ) {
      throw new KhoError('EFAULT', `scratch area ${hex(a.base)} is not scratch memory in the map`);
    }
  }
  return scratch;
}

/** Only the areas handed over are scratch in this boot, and until the handover is read only they may be allocated. */
function enterScratchOnly(ctx: EarlyContext, scratch: readonly ScratchArea[]): void {
  ctx.memoryMap.updateAll(scratch, E820.USABLE, E820.SCRATCH);
  for (const a of scratch) ctx.memblock.markScratch(a.base, a.size);
  ctx.memblock.setScratchOnly(true);
  ctx.log('KHO: memblock is scratch-only until the handover is read');
}

/**
 * The tree's pages match the handover's checksum: checked before any
 * pointer in them is followed.
 * @throws KhoError EFAULT
 */
export function checkTreeChecksum(device: MemoryDevice, root: KhoRoot): void {
  const csum = treeChecksum(device, root.memoryMapPages);
  if (csum !== root.memoryMapCsum) {
    throw new KhoError(
      'EFAULT',
      `preserved-memory map checksum mismatch (handover says ${hex(root.memoryMapCsum)}, tree has ${hex(csum)})`,
    );
  }
}

/** Every preserved block of the tree (as the walk's runs of blocks, in typed arrays), its runs of pages and its own pages. */
export interface PreservedWalk {
  /** The blocks, a run of consecutive blocks of one order at a time (a million order-0 folios can be one). */
  readonly blockRuns: KhoBlockRuns;
  readonly runs: BlockRuns;
  /** The same extents the predecessor marked, from the blocks collected. */
  readonly extents: readonly PhysRange[];
  readonly nodePhys: number[];
  readonly blocks: number;
  readonly pages: number;
}

/**
 * Walks the preserved-memory tree (the walk validates the whole tree before
 * it visits anything); the tree must have the pages the handover lists.
 * @throws KhoError EFAULT
 */
export function walkPreserved(device: MemoryDevice, root: KhoRoot): PreservedWalk {
  // No call per block: the tree's blocks come as runs.
  const walk = KhoRadixTree.readRuns(device, root.memoryMapPhys);
  const runs = new BlockRuns();
  for (let i = 0; i < walk.runs; i++) {
    runs.addPages(walk.runPfn[i], walk.runBlocks[i] * 2 ** walk.runOrder[i]);
  }
  if (root.memoryMapPhys === 0) {
    return { blockRuns: walk, runs, extents: [], nodePhys: [], blocks: 0, pages: 0 };
  }
  if (walk.nodePhys.length !== root.memoryMapPages.length) {
    throw new KhoError(
      'EFAULT',
      `the tree has ${walk.nodePhys.length} pages, the handover lists ${root.memoryMapPages.length}`,
    );
  }
  const extents = runs.extents(walk.nodePhys, KHO_MAX_MAP_MARKS);
  const { nodePhys, blocks, pages } = walk;
  return { blockRuns: walk, runs, extents, nodePhys, blocks, pages };
}

/**
 * Each subtree the root names is the head of a preserved block.
 * @throws KhoError EFAULT
 */
export function checkSubtreesPreserved(root: KhoRoot, walk: PreservedWalk): void {
  for (const [name, phys] of root.subtrees) {
    if (!startsBlock(walk.blockRuns, phys / PAGE_SIZE))
      throw new KhoError('EFAULT', `subtree '${name}' at ${hex(phys)} is not a preserved block`);
  }
}

/** Whether a block of `r` starts at `pfn`. */
function startsBlock(r: KhoBlockRuns, pfn: number): boolean {
  for (let i = 0; i < r.runs; i++) {
    const size = 2 ** r.runOrder[i];
    const at = pfn - r.runPfn[i];
    if (at >= 0 && at < r.runBlocks[i] * size && at % size === 0) return true;
  }
  return false;
}

/**
 * The map handed over says "preserved" under every block and tree page: the
 * extents become memory, and a block over anything else (the device header,
 * a kept pool, a hole) would be memory the allocator may one day hand out.
 * @throws KhoError EFAULT
 */
export function checkInPreservedMemory(memoryMap: MemoryMap, walk: PreservedWalk): void {
  const outside = (first: number, end: number) => {
    const r = memoryMap.find(first);
    return r === undefined || r.type !== E820.PRESERVED || end > r.base + r.size;
  };
  const { starts, ends } = walk.runs;
  for (let i = 0; i < starts.length; i++) {
    if (outside(starts[i] * PAGE_SIZE, ends[i] * PAGE_SIZE)) {
      throw new KhoError(
        'EFAULT',
        `preserved pages at pfn ${starts[i]} are not preserved memory in the map`,
      );
    }
  }
  for (const p of walk.nodePhys) {
    if (outside(p, p + PAGE_SIZE)) {
      throw new KhoError(
        'EFAULT',
        `preserved-memory map page ${hex(p)} is not preserved memory in the map`,
      );
    }
  }
}

/**
 * The commit, once everything is checked: every preserved run of pages and
 * the tree are reserved (no-init), then the extents become memory again,
 * only where the map says preserved (never a gap of another type).
 */
function reservePreserved(ctx: EarlyContext, walk: PreservedWalk): void {
  const { memblock, memoryMap } = ctx;
  const preserved = memoryMap.entries().filter((r) => r.type === E820.PRESERVED);
  const { starts, ends } = walk.runs;
  for (let i = 0; i < starts.length; i++) {
    memblock.reserve(
      starts[i] * PAGE_SIZE,
      (ends[i] - starts[i]) * PAGE_SIZE,
      MEMBLOCK_RSRV_NOINIT,
    );
  }
  for (const p of walk.nodePhys) memblock.reserve(p, PAGE_SIZE, MEMBLOCK_RSRV_NOINIT);
  for (const e of walk.extents) {
    const end = e.base + e.size;
    for (const r of preserved) {
      const a = Math.max(e.base, r.base);
      const b = Math.min(end, r.base + r.size);
      if (b > a) memblock.addMemory(a, b - a);
    }
  }
  memoryMap.updateAll(walk.extents, E820.PRESERVED, E820.USABLE);
}
