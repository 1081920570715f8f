/**
 * What a successor does with a predecessor's PKRAM before trusting any of it:
 * check the super block, walk the preserved-page table, then walk every node
 * and require that each page it references is preserved and referenced only
 * once. Nothing is changed here; Pkram.attach acts only on a full success.
 */

import { KhoError } from '../kho/errors.js';
import { BlockRuns, type KhoExtent, KhoRadixTree, type KhoWalkResult } from '../kho/radix.js';
import { treeChecksum } from '../kho/tree-csum.js';
import { crc32c } from '../memory/crc32c.js';
import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import { getU64 } from './_u64.js';
import {
  NODE_OFF_NEXT,
  PKRAM_NODE_FL_SAVED,
  REGION_ENTRY_SIZE,
  REGION_OFF_PHYS,
  REGION_OFF_SIZE,
} from './abi.js';
import { PkramError } from './errors.js';
import { type PkramExpect, readSuper, type SuperBlock } from './super.js';
import { type BlockKind, type NodeSummary, walkNode } from './walk.js';

export interface HandoverCheck {
  sb: SuperBlock;
  /** The saved nodes, in node-list order. */
  nodes: NodeSummary[];
  /** Pages of the predecessor's preserved-page table itself. */
  tablePhys: number[];
  /** Preserved pages that no node, nor the super block or region list, references. */
  orphanPages: number;
}

const NONE = 0;
const PRESERVED = 1;
const TABLE = 2;
const CLAIMED = 3;

function tableError(err: unknown): unknown {
  if (err instanceof KhoError) {
    return new PkramError('EFAULT', `preserved-page table: ${err.message}`, 'table');
  }
  return err;
}

/**
 * Walks the super block's preserved-page table (bounded, every pointer
 * checked), then checks the pages it went through against the super block's
 * table crc: a flipped bit that still walks is caught before any block is used.
 * @throws PkramError EFAULT (reason 'table' or 'crc').
 */
function walkTable(
  device: MemoryDevice,
  sb: SuperBlock,
  onBlock: (pfn: number, order: number) => void,
): KhoWalkResult {
  let walk: KhoWalkResult;
  try {
    walk = KhoRadixTree.walk(device, sb.tableRoot, onBlock, { maxNodes: device.pages });
  } catch (err) {
    throw tableError(err);
  }
  if (treeChecksum(device, walk.nodePhys) !== sb.tableCrc) {
    throw new PkramError('EFAULT', 'preserved-page table fails its crc32c', 'crc');
  }
  return walk;
}

/**
 * The first index in [start, end) whose state is not `want` (states are
 * 0..3), or -1: one step for a page, native scans for a block.
 */
function firstNot(state: Uint8Array, start: number, end: number, want: number): number {
  if (end - start === 1) return state[start] === want ? -1 : start;
  const span = state.subarray(start, end);
  let first = -1;
  for (let v = NONE; v <= CLAIMED; v++) {
    if (v === want) continue;
    const i = span.indexOf(v);
    if (i >= 0 && (first < 0 || i < first)) first = i;
  }
  return first < 0 ? -1 : start + first;
}

/** crc32c of the region list's first nr entries. */
export function regionListCrc(device: MemoryDevice, regionPfn: number, nr: number): number {
  return crc32c(device.bytes(regionPfn * PAGE_SIZE, nr * REGION_ENTRY_SIZE));
}

/**
 * Validates a predecessor's PKRAM in full.
 * @throws PkramError ENODEV (no super block), EINVAL (stale), EFAULT (corrupt).
 */
export function checkHandover(
  device: MemoryDevice,
  superPfn: number,
  expect?: PkramExpect,
): HandoverCheck {
  const sb = readSuper(device, superPfn, expect);
  if (sb.tableRoot === 0) {
    throw new PkramError('EFAULT', 'super block has no preserved-page table', 'table');
  }
  // Per-page state: the only structure sized by the device, one byte a page.
  // A block's pages are checked and set by native scans and fills, so a
  // large block costs a memchr, not a JS step per page.
  const state = new Uint8Array(device.pages);
  let preserved = 0;
  let claimed = 0;
  const walk = walkTable(device, sb, (pfn, order) => {
    const end = pfn + 2 ** order;
    preserved += end - pfn;
    const p = firstNot(state, pfn, end, NONE);
    if (p >= 0) throw new PkramError('EFAULT', `preserved blocks overlap at pfn ${p}`, 'table');
    state.fill(PRESERVED, pfn, end);
  });
  for (const phys of walk.nodePhys) {
    const p = phys / PAGE_SIZE;
    if (state[p] !== NONE) {
      throw new PkramError('EFAULT', `table page pfn ${p} is also a preserved block`, 'table');
    }
    state[p] = TABLE;
  }
  const claim = (pfn: number, order: number, what: BlockKind | 'super' | 'regions'): void => {
    const end = pfn + 2 ** order;
    const p = firstNot(state, pfn, end, PRESERVED);
    if (p >= 0) {
      const why = state[p] === CLAIMED ? 'is referenced twice' : 'is not preserved';
      throw new PkramError('EFAULT', `${what} page pfn ${p} ${why}`, 'metadata');
    }
    state.fill(CLAIMED, pfn, end);
    claimed += end - pfn;
  };
  claim(superPfn, 0, 'super');
  if (sb.regionPfn !== 0) claim(sb.regionPfn, 0, 'regions');
  if (sb.regionPfn !== 0 && regionListCrc(device, sb.regionPfn, sb.nrRegions) !== sb.regionCrc) {
    throw new PkramError('EFAULT', 'the region list fails its crc32c', 'crc');
  }
  const budget = { left: 2 * device.pages + 1, verify: true };
  const nodes: NodeSummary[] = [];
  const names = new Set<string>();
  let pfn = sb.nodePfn;
  for (let i = 0; i < sb.nrNodes; i++) {
    if (pfn === 0) {
      throw new PkramError(
        'EFAULT',
        `node list ends after ${i} of ${sb.nrNodes} nodes`,
        'metadata',
      );
    }
    const node = walkNode(device, pfn, (p, order, kind) => claim(p, order, kind), budget);
    if ((node.flags & PKRAM_NODE_FL_SAVED) === 0) {
      throw new PkramError('EFAULT', `node "${node.name}" on the list was never saved`, 'metadata');
    }
    if (names.has(node.name)) {
      throw new PkramError('EFAULT', `node name "${node.name}" appears twice`, 'metadata');
    }
    names.add(node.name);
    nodes.push(node);
    pfn = getU64(device.view(pfn * PAGE_SIZE, PAGE_SIZE), NODE_OFF_NEXT);
  }
  if (pfn !== 0) {
    throw new PkramError('EFAULT', `node list runs past its ${sb.nrNodes} nodes`, 'metadata');
  }
  // Every claim turned preserved pages into claimed ones: the rest are orphans.
  return { sb, nodes, tablePhys: walk.nodePhys, orphanPages: preserved - claimed };
}

/**
 * The preserved memory behind a super block as at most maxEntries coalesced
 * page ranges (table pages included), for early boot to reserve before the
 * allocator hands anything out. Checks the super block and the table, not the nodes.
 * @throws PkramError ENODEV, EINVAL (stale, or maxEntries not a positive integer), EFAULT.
 */
export function preservedRanges(
  device: MemoryDevice,
  superPfn: number,
  maxEntries: number,
  expect?: PkramExpect,
): KhoExtent[] {
  if (!Number.isInteger(maxEntries) || maxEntries < 1) {
    throw new PkramError('EINVAL', `maxEntries ${maxEntries} is not a positive integer`);
  }
  const sb = readSuper(device, superPfn, expect);
  const runs = new BlockRuns();
  const walk = walkTable(device, sb, (pfn, order) => runs.add(pfn, order));
  return runs.extents(walk.nodePhys, maxEntries);
}

/**
 * The region list the predecessor wrote at finalize: the same ranges as
 * preservedRanges(..., PKRAM_REGIONS_MAX), readable without walking the table.
 * @throws PkramError ENODEV, EINVAL (stale), EFAULT (a range unaligned, outside, or out of order).
 */
export function readRegionList(
  device: MemoryDevice,
  superPfn: number,
  expect?: PkramExpect,
): KhoExtent[] {
  const sb = readSuper(device, superPfn, expect);
  if (sb.regionPfn === 0) return [];
  if (regionListCrc(device, sb.regionPfn, sb.nrRegions) !== sb.regionCrc) {
    throw new PkramError('EFAULT', 'the region list fails its crc32c', 'crc');
  }
  const view = device.view(sb.regionPfn * PAGE_SIZE, PAGE_SIZE);
  const out: KhoExtent[] = [];
  let lastEnd = 0;
  for (let i = 0; i < sb.nrRegions; i++) {
    const phys = getU64(view, i * REGION_ENTRY_SIZE + REGION_OFF_PHYS);
    const size = getU64(view, i * REGION_ENTRY_SIZE + REGION_OFF_SIZE);
    if (
      phys % PAGE_SIZE !== 0 ||
      size % PAGE_SIZE !== 0 ||
      size === 0 ||
      phys < lastEnd ||
      phys + size > device.size
    ) {
      throw new PkramError(
        'EFAULT',
        `region ${i} [${phys}, +${size}) is not a valid range`,
        'metadata',
      );
    }
    lastEnd = phys + size;
    out.push({ phys, size });
  }
  return out;
}
