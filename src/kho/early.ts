import { SETUP } from '../boot/abi.js';
import type { EarlyContext } from '../boot/early-context.js';
import { MEMBLOCK_RSRV_NOINIT } from '../boot/memblock.js';
import { describeKhoScratch, KHO, KHO_SCRATCH } from '../boot/params.js';
import { PAGE_SIZE } from '../memory/device.js';
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
    return { enabled: false, disabledReason: why, scratch: [], incoming: null };
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
  return { enabled: true, revivalRefused, scratch: [], incoming: null, scratchPending: plan };
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
    return { ...early, scratch, scratchPending: undefined };
  } catch (err) {
    if (!(err instanceof KhoError)) throw err;
    ctx.log(`KHO: ${err.message}: disabling kexec handover`);
    return {
      ...early,
      enabled: false,
      disabledReason: err.message,
      scratch: [],
      scratchPending: undefined,
    };
  }
}

/** Turns every scratch range of the map into usable memory (map and memblock); returns what it was. */
function unmarkScratch(ctx: EarlyContext): MemoryRange[] {
  const scratch = ctx.memoryMap.entries().filter((r) => r.type === E820.SCRATCH);
  for (const r of scratch) {
    ctx.memoryMap.update(r.addr, r.size, E820.SCRATCH, E820.USABLE);
    ctx.memblock.clearScratch(r.addr, r.size);
  }
  return scratch;
}

function revive(
  ctx: EarlyContext,
  rootFdt: Uint8Array,
  handedScratch: readonly MemoryRange[],
): KhoEarly {
  const { device, memblock, memoryMap } = ctx;
  const scratchData = ctx.setupData.find((s) => s.type === SETUP.KHO_SCRATCH);
  if (!scratchData) throw new KhoError('EFAULT', 'the boot block carries no KHO scratch areas');
  const scratch = decodeScratch(scratchData.data, device.size);
  for (const a of scratch) {
    if (
      !memblock.isMemory(a.base, a.size) ||
      !handedScratch.some((r) => r.addr <= a.base && a.base + a.size <= r.addr + r.size)
    ) {
      throw new KhoError(
        'EFAULT',
        `scratch area 0x${a.base.toString(16)} is not scratch memory in the map`,
      );
    }
  }
  // Only the areas handed over are scratch in this boot (unmarkScratch cleared the rest).
  for (const a of scratch) {
    memoryMap.update(a.base, a.size, E820.USABLE, E820.SCRATCH);
    memblock.markScratch(a.base, a.size);
  }
  // Until the handover is read, only scratch memory may be allocated.
  memblock.setScratchOnly(true);
  ctx.log('KHO: memblock is scratch-only until the handover is read');
  // The boot block's crc32c, over its setup_data, matched when it was read.
  const root = parseRootFdt(rootFdt, device.size, { crcChecked: true });
  // Check the tree's pages against the checksum before following any pointer in them.
  const csum = treeChecksum(device, root.memoryMapPages);
  if (csum !== root.memoryMapCsum) {
    throw new KhoError(
      'EFAULT',
      `preserved-memory map checksum mismatch (handover says 0x${root.memoryMapCsum.toString(16)}, tree has 0x${csum.toString(16)})`,
    );
  }
  // The whole tree is validated before anything in it is used; its blocks come as
  // runs (a million consecutive order-0 blocks are one), never one call per block.
  const walk = KhoRadixTree.readRuns(device, root.memoryMapPhys);
  const runs = new BlockRuns();
  for (let i = 0; i < walk.runs; i++) {
    runs.addPages(walk.runPfn[i], walk.runBlocks[i] * 2 ** walk.runOrder[i]);
  }
  if (walk.nodePhys.length !== root.memoryMapPages.length) {
    throw new KhoError(
      'EFAULT',
      `the tree has ${walk.nodePhys.length} pages, the handover lists ${root.memoryMapPages.length}`,
    );
  }
  // The same extents the predecessor marked, from the blocks already collected.
  const extents = root.memoryMapPhys === 0 ? [] : runs.extents(walk.nodePhys, KHO_MAX_MAP_MARKS);
  for (const [name, phys] of root.subtrees) {
    if (!startsBlock(walk, phys / PAGE_SIZE)) {
      throw new KhoError(
        'EFAULT',
        `subtree '${name}' at 0x${phys.toString(16)} is not a preserved block`,
      );
    }
  }
  // The map handed over must say "preserved" under every block and tree page: the
  // extents become memory below, and a block over anything else (the device header,
  // a kept pool, a hole) would be memory the allocator may one day hand out.
  const outside = (first: number, end: number) => {
    const r = memoryMap.find(first);
    return r === undefined || r.type !== E820.PRESERVED || end > r.addr + r.size;
  };
  for (let i = 0; i < runs.starts.length; i++) {
    if (outside(runs.starts[i] * PAGE_SIZE, runs.ends[i] * PAGE_SIZE)) {
      throw new KhoError(
        'EFAULT',
        `preserved pages at pfn ${runs.starts[i]} are not preserved memory in the map`,
      );
    }
  }
  for (const p of walk.nodePhys) {
    if (outside(p, p + PAGE_SIZE)) {
      throw new KhoError(
        'EFAULT',
        `preserved-memory map page 0x${p.toString(16)} is not preserved memory in the map`,
      );
    }
  }
  // Only the preserved parts of an extent become memory, never a gap of another type.
  const preserved = memoryMap.entries().filter((r) => r.type === E820.PRESERVED);
  // Valid: reserve every preserved block and the tree, then give back the extents' gaps.
  // Reserving runs, not blocks: one call per contiguous run of preserved pages.
  for (let i = 0; i < runs.starts.length; i++) {
    memblock.reserve(
      runs.starts[i] * PAGE_SIZE,
      (runs.ends[i] - runs.starts[i]) * PAGE_SIZE,
      MEMBLOCK_RSRV_NOINIT,
    );
  }
  for (const p of walk.nodePhys) memblock.reserve(p, PAGE_SIZE, MEMBLOCK_RSRV_NOINIT);
  for (const e of extents) {
    const end = e.phys + e.size;
    for (const r of preserved) {
      const a = Math.max(e.phys, r.addr);
      const b = Math.min(end, r.addr + r.size);
      if (b > a) memblock.addMemory(a, b - a);
    }
    memoryMap.update(e.phys, e.size, E820.PRESERVED, E820.USABLE);
  }
  memblock.setScratchOnly(false);
  // Scratch stays set aside: the next kexec's boot block goes there.
  for (const a of scratch) memblock.reserve(a.base, a.size);
  ctx.log(
    `KHO: handover read: ${walk.blocks} preserved blocks (${walk.pages} pages), ${root.subtrees.size} subtrees, ${scratch.length} scratch areas`,
  );
  return {
    enabled: true,
    scratch,
    incoming: {
      root,
      rootFdt,
      runPfn: walk.runPfn,
      runBlocks: walk.runBlocks,
      runOrder: walk.runOrder,
      runs: walk.runs,
      treePages: walk.nodePhys,
    },
  };
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
