/**
 * A running generation as the status model has it: its memory layout and
 * the status it publishes. Everything here is computed from the kernel's
 * own metadata (counters, the page allocator's census, subsystem extents),
 * never per page or per block: a process publishes it every second.
 */
import type { ScratchArea } from '../kho/scratch.js';
import type { LuoSessionSummary } from '../luo/kernel-luo.js';
import { PAGE_SIZE, type PhysRange } from '../memory/device.js';
import type { MemoryMap } from '../memory/memmap.js';
import { E820 } from '../memory/memmap-types.js';
import type { BuddyAllocator } from '../mm/buddy.js';
import { addToCells, type CensusView } from '../mm/page-census.js';
import { coarsenRuns, layCells, type Paint, paintRuns } from '../status/layout.js';
import type {
  HandoverHistory,
  MemoryLayout,
  PublishedStatus,
  RunKind,
  StatusRange,
} from '../status/model.js';

/** What a kernel's layout is made of. */
export interface LayoutSources {
  readonly size: number;
  readonly nodes: readonly PhysRange[];
  /** The page allocator's census of pages by state. */
  readonly census: CensusView;
  /** PKRAM's pages per census cell. */
  readonly pkramCells: ReadonlyMap<number, number>;
  /** Pages per census cell the predecessor preserved in KHO that no one has restored yet. */
  readonly incomingCells: ReadonlyMap<number, number>;
  readonly memoryMap: MemoryMap;
  readonly scratch: readonly ScratchArea[];
  readonly pools: readonly { name: string | null; base: number; size: number }[];
  readonly reserveMem: readonly { name: string; phys: number; size: number }[];
  readonly crashArea: PhysRange | null;
  readonly statusArea: StatusRange | null;
  readonly kexecSegment: PhysRange | null;
}

/**
 * The device's pages by use. What owns memory in a few extents (header,
 * scratch, pools, reserve_mem, preserved ranges kept by the map, the crash
 * area, the status area, a loaded boot block: reserved pages all) is drawn
 * at its exact bounds; the rest of each census cell is laid out as its
 * counts say, exact in number, in the order free, allocated, PKRAM's,
 * KHO-preserved, incoming, reserved. O(cells + extents).
 */
export function kernelLayout(src: LayoutSources): MemoryLayout {
  const { census, pkramCells, incomingCells } = src;
  const owned = paintRuns([{ base: 0, size: src.size, kind: 'free' }], ownedExtents(src)).filter(
    (r) => r.kind !== 'free',
  );
  const cellBytes = 2 ** census.shift * PAGE_SIZE;
  // Owned extents are reserved pages: each cell's reserved count lends them their room.
  const ownedIn = new Map<number, number>();
  for (const r of owned) addToCells(ownedIn, r.base / PAGE_SIZE, r.size / PAGE_SIZE, census.shift);
  const counts = (c: number): [RunKind, number][] => {
    let allocated = census.count(c, 'allocated');
    let reserved = census.count(c, 'reserved');
    // PKRAM's pages are allocated (its own) or reserved (a predecessor's, not yet loaded).
    const pkram = Math.min(pkramCells.get(c) ?? 0, allocated + reserved);
    const fromAllocated = Math.min(pkram, allocated);
    allocated -= fromAllocated;
    reserved -= pkram - fromAllocated;
    // The predecessor's KHO blocks stay reserved until restored.
    const incoming = Math.min(incomingCells.get(c) ?? 0, reserved);
    reserved -= incoming;
    const pages: [RunKind, number][] = [
      ['free', census.count(c, 'free')],
      ['allocated', allocated],
      ['pkram', pkram],
      ['kho', census.count(c, 'preserved')],
      ['incoming', incoming],
      ['reserved', reserved],
    ];
    // Were the counts to disagree with the extents, the room comes from the last kinds.
    let room = ownedIn.get(c) ?? 0;
    for (let k = pages.length - 1; k >= 0 && room > 0; k--) {
      const entry = pages[k] as [RunKind, number];
      const take = Math.min(room, entry[1]);
      entry[1] -= take;
      room -= take;
    }
    return pages.map(([kind, n]) => [kind, n * PAGE_SIZE]);
  };
  return {
    size: src.size,
    nodes: src.nodes.map((n) => ({ base: n.base, size: n.size })),
    runs: layCells(src.size, cellBytes, counts, owned),
  };
}

/** What owns memory in a few extents, later ones drawn over earlier ones. */
function ownedExtents(src: LayoutSources): Paint[] {
  const paints: Paint[] = [{ base: 0, size: PAGE_SIZE, kind: 'header' }];
  for (const e of src.memoryMap.entries()) {
    // Preserved ranges this generation keeps without reading them (kho=off, a refused handover).
    if (e.type === E820.PRESERVED) paints.push({ base: e.addr, size: e.size, kind: 'incoming' });
  }
  for (const a of src.scratch)
    paints.push({ base: a.base, size: a.size, kind: 'scratch', owner: scratchName(a) });
  for (const p of src.pools)
    paints.push({ base: p.base, size: p.size, kind: 'pmpool', owner: p.name ?? 'default' });
  for (const r of src.reserveMem)
    paints.push({ base: r.phys, size: r.size, kind: 'reserve-mem', owner: r.name });
  if (src.crashArea) paints.push({ ...src.crashArea, kind: 'crashkernel' });
  if (src.statusArea) paints.push({ ...src.statusArea, kind: 'status' });
  if (src.kexecSegment)
    paints.push({ ...src.kexecSegment, kind: 'boot-block', owner: 'kexec load' });
  return paints;
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
