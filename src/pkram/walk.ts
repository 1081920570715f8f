/**
 * The node walkers.
 *
 * walkNode visits every block a node holds (its node page, object pages,
 * link pages, data pages and folios) while validating what it reads, so it
 * serves both this kernel's own listing and a successor's first look at
 * untrusted metadata. Work is bounded by a page budget shared across calls:
 * every page or entry visited spends one, so a cycle or an absurd count ends
 * in EFAULT, never a hang.
 *
 * collectNodeBlocks reads a node that was validated (or that this kernel
 * wrote) into a RunList, checking only enough to stay in bounds.
 *
 * Both read link pages as 32-bit words (stream.ts): an entry is a few loads.
 */

import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import {
  LINK_ENTRY_OFF_INDEX,
  LINK_ENTRY_SIZE,
  LINK_OFF_ENTRIES,
  NODE_OFF_FLAGS,
  NODE_OFF_MAGIC,
  NODE_OFF_NAME,
  NODE_OFF_NAME_LEN,
  NODE_OFF_NEXT,
  NODE_OFF_NR_OBJS,
  NODE_OFF_OBJ,
  OBJ_OFF_BYTE_HEAD,
  OBJ_OFF_BYTE_LEN,
  OBJ_OFF_FOLIO_HEAD,
  OBJ_OFF_MAGIC,
  OBJ_OFF_NEXT,
  OBJ_OFF_NR_FOLIOS,
  PKRAM_ENTRY_FL_RELOCATED,
  PKRAM_ENTRY_FLAGS_KNOWN,
  PKRAM_ENTRY_FLAGS_MASK,
  PKRAM_ENTRY_ORDER_MASK,
  PKRAM_LINK_ENTRIES,
  PKRAM_MAX_ORDER,
  PKRAM_NAME_MAX,
  PKRAM_NODE_FL_SAVED,
  PKRAM_NODE_MAGIC,
  PKRAM_OBJ_MAGIC,
} from './abi.js';
import { PkramError } from './errors.js';
import type { RunList } from './runs.js';
import { linkSealed, pageSealed, type SealedPage } from './seal.js';
import {
  entryIndex,
  entryLo,
  entryPfn,
  isLinkPage,
  linkCount,
  linkNext,
  pageWords,
  wordsU64,
} from './stream.js';

/** Where walkNode puts a node's blocks: its own pages (node, object, link, data), and its folios. */
export interface NodeRuns {
  readonly meta: RunList;
  readonly folios: RunList;
}

/** What one object of a walked node holds. */
export interface ObjectSummary {
  pfn: number;
  folios: number;
  /** Folio count per order, index = order. */
  foliosByOrder: number[];
  relocatedFolios: number;
  bytes: number;
}

export interface NodeSummary {
  pfn: number;
  name: string;
  flags: number;
  objects: ObjectSummary[];
  /** Pages of metadata and data PKRAM allocated (node, object, link, data pages). */
  metadataPages: number;
}

/** Mutable page budget shared by the walks of one handover. */
export interface WalkBudget {
  left: number;
  /** Check each page's crc before use: set for metadata this kernel did not write. */
  verify?: boolean;
}

const W_NODE_NEXT = NODE_OFF_NEXT / 4;
const W_NODE_OBJ = NODE_OFF_OBJ / 4;
const W_NODE_NR_OBJS = NODE_OFF_NR_OBJS / 4;
const W_OBJ_NEXT = OBJ_OFF_NEXT / 4;
const W_OBJ_FOLIO_HEAD = OBJ_OFF_FOLIO_HEAD / 4;
const W_OBJ_BYTE_HEAD = OBJ_OFF_BYTE_HEAD / 4;
const W_ENTRIES = LINK_OFF_ENTRIES / 4;
const W_ENTRY = LINK_ENTRY_SIZE / 4;
const W_INDEX = LINK_ENTRY_OFF_INDEX / 4;
const TWO_POW_20 = 2 ** 20;
/** An index's high word at or past this puts it past 2^53. */
const INDEX_HI_LIMIT = 2 ** 21;
/** Where checkEntries counts a page's relocated entries, after the per-order counts. */
const RELOCATED = PKRAM_MAX_ORDER + 1;

const decoder = new TextDecoder('utf-8', { fatal: true });

function corrupt(message: string): PkramError {
  return new PkramError('EFAULT', `corrupt PKRAM metadata: ${message}`, 'metadata');
}

/**
 * Checks that pfn can hold a metadata page: a safe integer in 1..pages-1.
 * @throws PkramError EFAULT.
 */
export function checkMetaPfn(device: MemoryDevice, pfn: number, what: string): void {
  if (!Number.isSafeInteger(pfn) || pfn < 1 || pfn >= device.pages) {
    throw corrupt(`${what} pfn ${pfn} is outside ${device.name} (1..${device.pages - 1})`);
  }
}

function checkSeal(device: MemoryDevice, pfn: number, kind: SealedPage, budget: WalkBudget): void {
  if (budget.verify === true && !pageSealed(device, pfn, kind)) {
    throw new PkramError(
      'EFAULT',
      `corrupt PKRAM metadata: ${kind} page ${pfn} fails its crc`,
      'crc',
    );
  }
}

function spend(budget: WalkBudget, n: number): void {
  budget.left -= n;
  if (budget.left < 0) throw corrupt('more metadata than the device has pages (a cycle?)');
}

/** Reads and checks a node's name. @throws PkramError EFAULT. */
export function readNodeName(device: MemoryDevice, pfn: number): string {
  const view = device.view(pfn * PAGE_SIZE, PAGE_SIZE);
  const len = view.getUint32(NODE_OFF_NAME_LEN, true);
  if (len < 1 || len > PKRAM_NAME_MAX) throw corrupt(`node ${pfn} has a name of ${len} bytes`);
  try {
    return decoder.decode(device.bytes(pfn * PAGE_SIZE + NODE_OFF_NAME, len));
  } catch {
    throw corrupt(`node ${pfn} has a name that is not UTF-8`);
  }
}

/** The next-node pointer of a node page. */
export function nodeNext(device: MemoryDevice, pfn: number): number {
  return wordsU64(pageWords(device, pfn), W_NODE_NEXT);
}

/**
 * Walks node `pfn`: checks every magic, count and pointer, adds every
 * block to `runs` when given, and returns a summary.
 * @throws PkramError EFAULT on anything malformed.
 */
export function walkNode(
  device: MemoryDevice,
  pfn: number,
  runs: NodeRuns | null,
  budget: WalkBudget,
): NodeSummary {
  checkMetaPfn(device, pfn, 'node');
  spend(budget, 1);
  const view = device.view(pfn * PAGE_SIZE, PAGE_SIZE);
  if (view.getUint32(NODE_OFF_MAGIC, true) !== PKRAM_NODE_MAGIC) {
    throw corrupt(`pfn ${pfn} is not a node page`);
  }
  checkSeal(device, pfn, 'node', budget);
  const flags = view.getUint32(NODE_OFF_FLAGS, true);
  if ((flags & ~PKRAM_NODE_FL_SAVED) !== 0) throw corrupt(`node ${pfn} has unknown flags ${flags}`);
  const name = readNodeName(device, pfn);
  const nrObjs = view.getUint32(NODE_OFF_NR_OBJS, true);
  const summary: NodeSummary = { pfn, name, flags, objects: [], metadataPages: 1 };
  runs?.meta.add(pfn, 0);
  let obj = wordsU64(pageWords(device, pfn), W_NODE_OBJ);
  for (let i = 0; i < nrObjs; i++) {
    const o = walkObject(device, obj, runs, budget, summary);
    summary.objects.push(o);
    obj = wordsU64(pageWords(device, obj), W_OBJ_NEXT);
  }
  if (obj !== 0) throw corrupt(`node ${pfn} lists more than its ${nrObjs} objects`);
  return summary;
}

function walkObject(
  device: MemoryDevice,
  pfn: number,
  runs: NodeRuns | null,
  budget: WalkBudget,
  node: NodeSummary,
): ObjectSummary {
  checkMetaPfn(device, pfn, 'object');
  spend(budget, 1);
  const view = device.view(pfn * PAGE_SIZE, PAGE_SIZE);
  if (view.getUint32(OBJ_OFF_MAGIC, true) !== PKRAM_OBJ_MAGIC) {
    throw corrupt(`pfn ${pfn} is not an object page`);
  }
  checkSeal(device, pfn, 'object', budget);
  node.metadataPages++;
  runs?.meta.add(pfn, 0);
  const words = pageWords(device, pfn);
  const bytes = wordsU64(words, OBJ_OFF_BYTE_LEN / 4);
  const nrFolios = wordsU64(words, OBJ_OFF_NR_FOLIOS / 4);
  if (bytes > device.size) throw corrupt(`object ${pfn} claims ${bytes} bytes`);
  if (nrFolios > device.pages) throw corrupt(`object ${pfn} claims ${nrFolios} folios`);
  const byOrder = new Float64Array(RELOCATED + 1);
  const folios = walkChain(
    device,
    pfn,
    wordsU64(words, W_OBJ_FOLIO_HEAD),
    budget,
    node,
    runs,
    byOrder,
  );
  if (folios.entries !== nrFolios) {
    throw corrupt(`object ${pfn} has ${folios.entries} folio entries, its count says ${nrFolios}`);
  }
  let top = PKRAM_MAX_ORDER;
  while (top >= 0 && byOrder[top] === 0) top--;
  const data = walkChain(device, pfn, wordsU64(words, W_OBJ_BYTE_HEAD), budget, node, runs, null);
  if (data.entries !== Math.ceil(bytes / PAGE_SIZE)) {
    throw corrupt(`object ${pfn} has ${data.entries} data pages for ${bytes} bytes`);
  }
  node.metadataPages += data.entries;
  return {
    pfn,
    folios: folios.entries,
    foliosByOrder: Array.from(byOrder.subarray(0, top + 1)),
    relocatedFolios: folios.relocated,
    bytes,
  };
}

/**
 * Walks one chain of object `obj`. With `byOrder` it is a folio stream
 * (counted per order); without, a byte stream, whose entries must be
 * order-0 data pages numbered 0, 1, 2... Each page is checked here and its
 * entries by checkEntries: the per-folio loop is a small function of its
 * own, which V8 optimizes quickly (a successor runs it once, cold).
 */
function walkChain(
  device: MemoryDevice,
  obj: number,
  head: number,
  budget: WalkBudget,
  node: NodeSummary,
  runs: NodeRuns | null,
  byOrder: Float64Array | null,
): { entries: number; relocated: number } {
  let entries = 0;
  let relocated = 0;
  const out = runs === null ? null : byOrder === null ? runs.meta : runs.folios;
  for (let link = head; link !== 0; ) {
    checkMetaPfn(device, link, 'link page');
    spend(budget, 1);
    const w = pageWords(device, link);
    if (!isLinkPage(w)) throw corrupt(`pfn ${link} is not a link page`);
    const count = linkCount(w);
    if (count > PKRAM_LINK_ENTRIES) throw corrupt(`link page ${link} claims ${count} entries`);
    if (budget.verify === true && !linkSealed(device, link)) {
      throw new PkramError(
        'EFAULT',
        `corrupt PKRAM metadata: link page ${link} fails its crc`,
        'crc',
      );
    }
    spend(budget, count);
    node.metadataPages++;
    runs?.meta.add(link, 0);
    const bad = checkEntries(w, count, device.pages, byOrder === null ? entries : -1, byOrder, out);
    if (bad >= 0)
      throw entryRefusal(w, bad, link, obj, device.pages, entries + bad, byOrder === null);
    if (byOrder !== null) relocated += byOrder[RELOCATED];
    entries += count;
    link = linkNext(w);
  }
  return { entries, relocated };
}

/**
 * Checks `count` entries of a link page and adds them to `out`, a call per
 * run of consecutive blocks; with `byOrder` counts them per order, and
 * byOrder[RELOCATED] is set to the page's relocated entries. For a byte
 * stream (`dataIndex` >= 0) each must be an order-0 page numbered from
 * dataIndex on. Returns the first refused entry, or -1.
 */
function checkEntries(
  w: Uint32Array,
  count: number,
  pages: number,
  dataIndex: number,
  byOrder: Float64Array | null,
  out: RunList | null,
): number {
  let runPfn = 0;
  let runBlocks = 0;
  let runOrder = -1;
  let next = -1;
  let relocated = 0;
  let bad = -1;
  for (let i = 0, at = W_ENTRIES; i < count; i++, at += W_ENTRY) {
    const lo = w[at];
    const order = lo & PKRAM_ENTRY_ORDER_MASK;
    if (order > PKRAM_MAX_ORDER || (lo & PKRAM_ENTRY_FLAGS_MASK & ~PKRAM_ENTRY_FLAGS_KNOWN) !== 0) {
      bad = i;
      break;
    }
    const pfn = w[at + 1] * TWO_POW_20 + (lo >>> 12);
    const size = 1 << order;
    // `&` keeps the low bits of pfn (it reads pfn modulo 2^32), enough for an alignment of 2^18.
    if ((pfn & (size - 1)) !== 0 || pfn + size > pages || w[at + W_INDEX + 1] >= INDEX_HI_LIMIT) {
      bad = i;
      break;
    }
    if (dataIndex >= 0) {
      if (order !== 0 || w[at + W_INDEX + 1] !== 0 || w[at + W_INDEX] !== dataIndex + i) {
        bad = i;
        break;
      }
    } else if (byOrder !== null) {
      byOrder[order]++;
      relocated += (lo & PKRAM_ENTRY_FL_RELOCATED) === 0 ? 0 : 1;
    }
    if (pfn === next && order === runOrder) runBlocks++;
    else {
      if (runBlocks > 0) out?.addRun(runPfn, runBlocks, runOrder);
      runPfn = pfn;
      runBlocks = 1;
      runOrder = order;
    }
    next = pfn + size;
  }
  if (runBlocks > 0) out?.addRun(runPfn, runBlocks, runOrder);
  if (byOrder !== null) byOrder[RELOCATED] = relocated;
  return bad;
}

/** What is wrong with entry i, which checkEntries refused. */
function entryRefusal(
  w: Uint32Array,
  i: number,
  link: number,
  obj: number,
  pages: number,
  nth: number,
  data: boolean,
): PkramError {
  const lo = entryLo(w, i);
  const order = lo & PKRAM_ENTRY_ORDER_MASK;
  const flags = lo & PKRAM_ENTRY_FLAGS_MASK;
  const pfn = entryPfn(w, i);
  const index = entryIndex(w, i);
  if (order > PKRAM_MAX_ORDER || (flags & ~PKRAM_ENTRY_FLAGS_KNOWN) !== 0) {
    return corrupt(`link page ${link} entry ${i} has order ${order} flags ${flags}`);
  }
  if (pfn % 2 ** order !== 0 || pfn + 2 ** order > pages) {
    return corrupt(
      `link page ${link} entry ${i}: pfn ${pfn} order ${order} is misaligned or outside`,
    );
  }
  if (!Number.isSafeInteger(index))
    return corrupt(`link page ${link} entry ${i} index is past 2^53`);
  return corrupt(
    data
      ? `object ${obj} data page ${nth} has order ${order} index ${index}`
      : `link page ${link} entry ${i} is refused`,
  );
}

/**
 * Appends every block of node `pfn` to `out`: node page, object pages, link
 * pages, data pages and folios; with `folios` false, the folios are left
 * out. For nodes validated at attach or written by this kernel: it checks
 * only what keeps it inside the device and finite.
 * @throws PkramError EFAULT when a pointer leaves the device or the node never ends.
 */
export function collectNodeBlocks(
  device: MemoryDevice,
  pfn: number,
  out: RunList,
  folios = true,
): void {
  const pages = device.pages;
  let budget = 2 * pages;
  const page = (p: number, what: string): Uint32Array => {
    checkMetaPfn(device, p, what);
    if (--budget < 0) throw corrupt(`node ${pfn} does not end (a cycle?)`);
    out.add(p, 0);
    return pageWords(device, p);
  };
  const chain = (head: number, withFolios: boolean): void => {
    for (let link = head; link !== 0; ) {
      const w = page(link, 'link page');
      const count = Math.min(linkCount(w), PKRAM_LINK_ENTRIES);
      budget -= count;
      if (withFolios) {
        for (let i = 0; i < count; i++) {
          out.add(entryPfn(w, i), entryLo(w, i) & PKRAM_ENTRY_ORDER_MASK);
        }
      }
      link = linkNext(w);
    }
  };
  const node = page(pfn, 'node');
  let obj = wordsU64(node, W_NODE_OBJ);
  for (let i = node[W_NODE_NR_OBJS]; i > 0 && obj !== 0; i--) {
    const o = page(obj, 'object');
    chain(wordsU64(o, W_OBJ_FOLIO_HEAD), folios);
    chain(wordsU64(o, W_OBJ_BYTE_HEAD), true);
    obj = wordsU64(o, W_OBJ_NEXT);
  }
}
