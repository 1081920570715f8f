/**
 * What a successor does with a predecessor's PKRAM before trusting any of it:
 * check the super block, walk the preserved-page table, then walk every node
 * and require that each page it references is preserved and referenced only
 * once. Nothing is changed here; Pkram.attach acts only on a full success.
 */

import type { PhysRange } from '../base/range.js';
import { getU64 } from '../base/u64.js';
import { KhoError } from '../kho/errors.js';
import {
  BlockRuns,
  type KhoPageSource,
  KhoRadixTree,
  type KhoTreeCheck,
  type KhoWalkResult,
} from '../kho/radix.js';
import { treeChecksum } from '../kho/tree-csum.js';
import { checkDeviceViews, type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import { PKRAM_NODE_FL_SAVED, REGION_ENTRY_SIZE, REGION_OFF_PHYS, REGION_OFF_SIZE } from './abi.js';
import { crc32 } from './crc32.js';
import { PkramError } from './errors.js';
import { RunList } from './runs.js';
import { type PkramExpect, readSuper, type SuperBlock } from './super.js';
import { type NodeSummary, nodeNext, walkNode } from './walk.js';

export interface HandoverCheck {
  sb: SuperBlock;
  /** The saved nodes, in node-list order. */
  nodes: NodeSummary[];
  /** Each node's preserved runs (node, object, link and data pages, then folios), as nodes. */
  nodeRuns: RunList[][];
  /** Pages of the predecessor's preserved-page table itself. */
  tablePhys: number[];
  /** Preserved pages that no node, nor the super block or region list, references. */
  orphanPages: number;
  /** The table taken over in place, when checkPkramHandover was given a page source for it. */
  tree: KhoRadixTree | null;
  /** The preserved blocks nothing references, as (pfn, order) pairs (computed on demand). */
  orphanBlocks(): number[];
}

/** Page states of a check: a preserved block's head page says its order (HEAD + order). */
const NONE = 0;
const BODY = 1;
const TABLE = 2;
const CLAIMED = 3;
const HEAD = 8;
/** Pages compared at a time against a page of one state. */
const SPAN = 4096;
const sameState = new Map<number, Buffer>();

function tableError(err: unknown): unknown {
  if (err instanceof KhoError) {
    return new PkramError('EFAULT', `preserved-page table: ${err.message}`, 'table');
  }
  return err;
}

/** The first page of [start, end) whose state is not `value`, or -1: memcmps of SPAN pages. */
function firstOther(state: Uint8Array, start: number, end: number, value: number): number {
  if (end - start === 1) return state[start] === value ? -1 : start;
  let ref = sameState.get(value);
  if (ref === undefined) {
    ref = Buffer.alloc(SPAN, value);
    sameState.set(value, ref);
  }
  for (let at = start; at < end; at += SPAN) {
    const n = Math.min(SPAN, end - at);
    if (ref.compare(state, at, at + n, 0, n) === 0) continue;
    for (let i = at; i < at + n; i++) if (state[i] !== value) return i;
  }
  return -1;
}

/**
 * Per-page state of a handover check: the only structure sized by the
 * device, a byte a page. The table's runs are marked with native fills; a
 * node's runs are claimed against them: each block must be the head of a
 * preserved block of the same order, not yet claimed. So every preserved
 * block is referenced at most once, and only as it was preserved, with a
 * memcmp and a fill per run of order-0 pages rather than a step per page.
 */
class PageClaims {
  readonly state: Uint8Array;
  preserved = 0;
  claimed = 0;

  constructor(pages: number) {
    this.state = new Uint8Array(pages);
  }

  /** A run of the table: `blocks` blocks of 2^order pages from pfn, none seen before. */
  mark(pfn: number, blocks: number, order: number): void {
    const size = 2 ** order;
    const end = pfn + blocks * size;
    const p = firstOther(this.state, pfn, end, NONE);
    if (p >= 0) throw new PkramError('EFAULT', `preserved blocks overlap at pfn ${p}`, 'table');
    if (order === 0) this.state.fill(HEAD, pfn, end);
    else {
      this.state.fill(BODY, pfn, end);
      for (let b = pfn; b < end; b += size) this.state[b] = HEAD + order;
    }
    this.preserved += end - pfn;
  }

  table(pfn: number): void {
    if (this.state[pfn] !== NONE) {
      throw new PkramError('EFAULT', `table page pfn ${pfn} is also a preserved block`, 'table');
    }
    this.state[pfn] = TABLE;
  }

  /** Claims every run of `runs`. @throws PkramError EFAULT naming the first page refused. */
  claim(runs: RunList, what: string): void {
    for (let r = 0; r < runs.length; r++) {
      const order = runs.orders[r];
      const size = 2 ** order;
      const pfn = runs.pfns[r];
      const end = pfn + runs.blocks[r] * size;
      if (order === 0) {
        const p = firstOther(this.state, pfn, end, HEAD);
        if (p >= 0) this.#refuse(p, 0, what);
        this.state.fill(CLAIMED, pfn, end);
      } else {
        for (let b = pfn; b < end; b += size) {
          if (this.state[b] !== HEAD + order) this.#refuse(b, order, what);
          this.state[b] = CLAIMED;
        }
      }
      this.claimed += end - pfn;
    }
  }

  /** Whether the block at pfn is preserved and nothing claimed it. */
  unclaimed(pfn: number): boolean {
    return this.state[pfn] >= HEAD;
  }

  #refuse(pfn: number, order: number, what: string): never {
    const s = this.state[pfn];
    const why =
      s === CLAIMED
        ? 'is referenced twice'
        : s >= HEAD
          ? `is preserved as order ${s - HEAD}, not ${order}`
          : 'is not preserved';
    throw new PkramError('EFAULT', `${what} page pfn ${pfn} ${why}`, 'metadata');
  }
}

/**
 * Walks the super block's preserved-page table (bounded, every pointer
 * checked), or takes it over when `adopt` is given, then checks the pages
 * it went through against the super block's table crc: a flipped bit that
 * still walks is caught before any block is used. With `early`, the walk
 * early boot made of the same table (KhoTreeCheck) is used instead of
 * validating it again: the crc, checked again here, vouches that its pages
 * did not change since.
 * @throws PkramError EFAULT (reason 'table' or 'crc').
 */
function walkTable(
  device: MemoryDevice,
  sb: SuperBlock,
  onRun: (pfn: number, blocks: number, order: number) => void,
  adopt?: KhoPageSource,
  early?: KhoTreeCheck,
): { walk: KhoWalkResult; tree: KhoRadixTree | null; check: KhoTreeCheck } {
  let out: { walk: KhoWalkResult; tree: KhoRadixTree | null; check: KhoTreeCheck };
  try {
    const check =
      early !== undefined && early.device === device && early.rootPhys === sb.tableRoot
        ? early
        : KhoRadixTree.check(device, sb.tableRoot, { maxNodes: device.pages });
    out =
      adopt === undefined
        ? { walk: check.visit(onRun), tree: null, check }
        : { ...KhoRadixTree.adoptChecked(adopt, check, onRun), check };
  } catch (err) {
    throw tableError(err);
  }
  if (treeChecksum(device, out.walk.nodePhys, crc32) !== sb.tableCrc) {
    throw new PkramError('EFAULT', 'preserved-page table fails its crc32', 'crc');
  }
  return out;
}

/** zlib's crc32 of the region list's first nr entries. */
export function regionListCrc(device: MemoryDevice, regionPfn: number, nr: number): number {
  return crc32(device.bytes(regionPfn * PAGE_SIZE, nr * REGION_ENTRY_SIZE));
}

/**
 * Validates a predecessor's PKRAM in full: O(table pages + runs) for the
 * table, a few typed-array steps per node entry, a crc per metadata page.
 * With `adopt`, the table comes back taken over (nothing on the device is
 * changed either way: an adopted tree is only dropped if the caller gives up).
 * @throws PkramError ENODEV (no super block), EINVAL (stale), EFAULT (corrupt).
 */
export function checkPkramHandover(
  device: MemoryDevice,
  superPfn: number,
  expect?: PkramExpect,
  adopt?: KhoPageSource,
  early?: KhoTreeCheck,
): HandoverCheck {
  const sb = readSuper(device, superPfn, expect);
  if (sb.tableRoot === 0) {
    throw new PkramError('EFAULT', 'super block has no preserved-page table', 'table');
  }
  checkViews(device);
  const claims = new PageClaims(device.pages);
  const runs: number[] = [];
  const { walk, tree } = walkTable(
    device,
    sb,
    (pfn, blocks, order) => {
      claims.mark(pfn, blocks, order);
      runs.push(pfn, blocks, order);
    },
    adopt,
    early,
  );
  for (const phys of walk.nodePhys) claims.table(phys / PAGE_SIZE);
  const single = (pfn: number): RunList => {
    const l = new RunList();
    l.add(pfn, 0);
    return l;
  };
  claims.claim(single(superPfn), 'super');
  if (sb.regionPfn !== 0) claims.claim(single(sb.regionPfn), 'regions');
  if (sb.regionPfn !== 0 && regionListCrc(device, sb.regionPfn, sb.nrRegions) !== sb.regionCrc) {
    throw new PkramError('EFAULT', 'the region list fails its crc32', 'crc');
  }
  const budget = { left: 2 * device.pages + 1, verify: true };
  const nodes: NodeSummary[] = [];
  const nodeRuns: RunList[][] = [];
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
    const r = { meta: new RunList(), folios: new RunList() };
    const node = walkNode(device, pfn, r, budget);
    if ((node.flags & PKRAM_NODE_FL_SAVED) === 0) {
      throw new PkramError('EFAULT', `node "${node.name}" on the list was never saved`, 'metadata');
    }
    if (names.has(node.name)) {
      throw new PkramError('EFAULT', `node name "${node.name}" appears twice`, 'metadata');
    }
    claims.claim(r.meta, `node "${node.name}" metadata`);
    claims.claim(r.folios, `node "${node.name}" folio`);
    names.add(node.name);
    nodes.push(node);
    nodeRuns.push([r.meta.compacted(), r.folios.compacted()]);
    pfn = nodeNext(device, pfn);
  }
  if (pfn !== 0) {
    throw new PkramError('EFAULT', `node list runs past its ${sb.nrNodes} nodes`, 'metadata');
  }
  const orphanBlocks = (): number[] => {
    const out: number[] = [];
    for (let r = 0; r < runs.length; r += 3) {
      const size = 2 ** runs[r + 2];
      for (let b = 0; b < runs[r + 1]; b++) {
        const p = runs[r] + b * size;
        if (claims.unclaimed(p)) out.push(p, runs[r + 2]);
      }
    }
    return out;
  };
  // Every claim turned preserved pages into claimed ones: the rest are orphans.
  return {
    sb,
    nodes,
    nodeRuns,
    tablePhys: walk.nodePhys,
    orphanPages: claims.preserved - claims.claimed,
    tree,
    orphanBlocks,
  };
}

/** Metadata pages are read as 32-bit words: a device whose views cannot be is refused. */
function checkViews(device: MemoryDevice): void {
  try {
    checkDeviceViews(device);
  } catch (err) {
    throw new PkramError('EINVAL', `${device.name}: ${String(err)}`, undefined, { cause: err });
  }
}

/**
 * The exact runs of preserved pages behind a super block (table pages not
 * included) and the table's pages: one walk, from which any number of
 * coalesced range lists are cut (BlockRuns.extents); and the check of the
 * table, which checkPkramHandover can take over later without a second walk.
 * @throws PkramError ENODEV, EINVAL (stale), EFAULT.
 */
export function preservedRuns(
  device: MemoryDevice,
  superPfn: number,
  expect?: PkramExpect,
): { runs: BlockRuns; tablePhys: number[]; table: KhoTreeCheck } {
  const sb = readSuper(device, superPfn, expect);
  const runs = new BlockRuns();
  const { walk, check } = walkTable(device, sb, (pfn, blocks, order) =>
    runs.addPages(pfn, blocks * 2 ** order),
  );
  return { runs, tablePhys: walk.nodePhys, table: check };
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
): PhysRange[] {
  if (!Number.isInteger(maxEntries) || maxEntries < 1) {
    throw new PkramError('EINVAL', `maxEntries ${maxEntries} is not a positive integer`);
  }
  const { runs, tablePhys } = preservedRuns(device, superPfn, expect);
  return runs.extents(tablePhys, maxEntries);
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
): PhysRange[] {
  const sb = readSuper(device, superPfn, expect);
  if (sb.regionPfn === 0) return [];
  if (regionListCrc(device, sb.regionPfn, sb.nrRegions) !== sb.regionCrc) {
    throw new PkramError('EFAULT', 'the region list fails its crc32', 'crc');
  }
  const view = device.view(sb.regionPfn * PAGE_SIZE, PAGE_SIZE);
  const out: PhysRange[] = [];
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
    out.push({ base: phys, size });
  }
  return out;
}
