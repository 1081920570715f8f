/**
 * A running generation as the status model has it: its memory layout and
 * the status it publishes. Everything here is computed from the kernel's
 * own state (counters, block lists, the KHO and PKRAM trees), never per page.
 */
import type { ScratchArea } from '../kho/scratch.js';
import type { LuoSessionSummary } from '../luo/kernel-luo.js';
import { PAGE_SIZE, type PhysRange } from '../memory/device.js';
import type { MemoryMap } from '../memory/memmap.js';
import { E820 } from '../memory/memmap-types.js';
import type { BuddyAllocator, PageState } from '../mm/buddy.js';
import { coarsenRuns, type Paint, paintRuns } from '../status/layout.js';
import type {
  HandoverHistory,
  MemoryLayout,
  MemoryRun,
  PublishedStatus,
  RunKind,
  StatusRange,
} from '../status/model.js';

/** What a kernel's layout is made of. */
export interface LayoutSources {
  readonly size: number;
  readonly nodes: readonly PhysRange[];
  readonly pages: BuddyAllocator;
  readonly memoryMap: MemoryMap;
  readonly scratch: readonly ScratchArea[];
  readonly pools: readonly { name: string | null; base: number; size: number }[];
  readonly reserveMem: readonly { name: string; phys: number; size: number }[];
  readonly pkramExtents: readonly { phys: number; size: number }[];
  /** Blocks the predecessor preserved that no one has restored yet. */
  readonly incoming: readonly { pfn: number; count: number }[];
  readonly crashArea: PhysRange | null;
  readonly statusArea: StatusRange | null;
  readonly kexecSegment: PhysRange | null;
}

const KIND_OF_STATE: Record<PageState, RunKind> = {
  free: 'free',
  allocated: 'allocated',
  preserved: 'kho',
  reserved: 'reserved',
};

/**
 * The device's pages by use: the page allocator's states (KHO-preserved
 * blocks are its "preserved" state), with what owns reserved and allocated
 * memory painted over them.
 */
export function kernelLayout(src: LayoutSources): MemoryLayout {
  const runs: MemoryRun[] = [];
  for (const r of src.pages.stateRuns()) {
    runs.push({
      base: r.base * PAGE_SIZE,
      size: r.count * PAGE_SIZE,
      kind: KIND_OF_STATE[r.state],
    });
  }
  const paints: Paint[] = [{ base: 0, size: PAGE_SIZE, kind: 'header' }];
  for (const e of src.memoryMap.entries()) {
    // What the predecessor preserved and nobody has taken yet is still reserved.
    if (e.type === E820.PRESERVED)
      paints.push({ base: e.addr, size: e.size, kind: 'incoming', over: ['reserved'] });
  }
  for (const b of src.incoming) {
    paints.push({
      base: b.pfn * PAGE_SIZE,
      size: b.count * PAGE_SIZE,
      kind: 'incoming',
      over: ['reserved'],
    });
  }
  for (const a of src.scratch)
    paints.push({ base: a.base, size: a.size, kind: 'scratch', owner: scratchName(a) });
  for (const p of src.pools)
    paints.push({ base: p.base, size: p.size, kind: 'pmpool', owner: p.name ?? 'default' });
  for (const e of src.pkramExtents)
    paints.push({
      base: e.phys,
      size: e.size,
      kind: 'pkram',
      over: ['allocated', 'reserved', 'incoming'],
    });
  for (const r of src.reserveMem)
    paints.push({ base: r.phys, size: r.size, kind: 'reserve-mem', owner: r.name });
  if (src.crashArea) paints.push({ ...src.crashArea, kind: 'crashkernel' });
  if (src.statusArea) paints.push({ ...src.statusArea, kind: 'status' });
  if (src.kexecSegment)
    paints.push({ ...src.kexecSegment, kind: 'boot-block', owner: 'kexec load' });
  return {
    size: src.size,
    nodes: src.nodes.map((n) => ({ base: n.base, size: n.size })),
    runs: paintRuns(runs, paints),
  };
}

function scratchName(a: ScratchArea): string {
  return a.node === undefined ? a.kind : `${a.kind} ${a.node}`;
}

/** The rest of a running generation's status. */
export interface StatusSources {
  readonly generation: number;
  readonly bootId: string;
  readonly bootKind: string;
  readonly coldReason?: string;
  readonly bootedAtMs: number;
  readonly publishIntervalMs: number;
  readonly deviceSize: number;
  readonly history: HandoverHistory;
  readonly pages: BuddyAllocator;
  readonly kho: {
    enabled: boolean;
    preserved: { byOrder: { blocks: number }[]; bytes: number; metadataPages: number };
    subtrees: string[];
    scratch: readonly ScratchArea[];
  };
  readonly pkram: { enabled: boolean; nodes: string[]; preservedPages: number };
  readonly pools: PublishedStatus['pmpools'];
  readonly reserveMem: readonly { name: string; phys: number; size: number }[];
  readonly luo: LuoSessionSummary[] | null;
  readonly kexec: { segment: PhysRange; preload: boolean; cmdline: string } | null;
  readonly layout: MemoryLayout;
}

/** The status to publish, with the layout cut to `maxRuns` (then marked truncated). */
export function buildStatus(src: StatusSources, maxRuns: number): PublishedStatus {
  const stats = src.pages.stats();
  const layout = coarsenRuns(src.layout, maxRuns);
  return {
    generation: src.generation,
    bootId: src.bootId,
    bootKind: src.bootKind,
    ownerPid: process.pid,
    bootedAtMs: src.bootedAtMs,
    publishedAtMs: Date.now(),
    publishIntervalMs: src.publishIntervalMs,
    deviceSize: src.deviceSize,
    ...(src.coldReason === undefined ? {} : { coldReason: src.coldReason }),
    truncated: layout !== src.layout,
    handover: src.history,
    pages: {
      total: stats.totalPages,
      free: stats.freePages,
      allocated: stats.allocatedPages,
      reserved: stats.reservedPages,
      preserved: stats.preservedPages,
      freeByOrder: stats.freeByOrder,
    },
    kho: {
      enabled: src.kho.enabled,
      preservedBytes: src.kho.preserved.bytes,
      preservedBlocks: src.kho.preserved.byOrder.reduce((n, o) => n + o.blocks, 0),
      metadataPages: src.kho.preserved.metadataPages,
      subtrees: src.kho.subtrees,
      scratch: src.kho.scratch.map((a) => ({ base: a.base, size: a.size })),
    },
    pkram: src.pkram,
    pmpools: src.pools,
    reserveMem: src.reserveMem.map((r) => ({ name: r.name, base: r.phys, size: r.size })),
    luo:
      src.luo === null
        ? null
        : {
            sessions: src.luo.map((s) => ({
              name: s.name,
              direction: s.direction,
              files: s.files.map((f) => ({
                token: String(f.token),
                kind: f.kind,
                description: f.description,
              })),
            })),
          },
    kexec: src.kexec,
    layout,
  };
}
