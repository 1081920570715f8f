/**
 * The node walker: visits every block a node holds (its node page, object
 * pages, link pages, data pages and folios) while validating what it reads,
 * so it serves both this kernel's own bookkeeping and a successor's first
 * look at untrusted metadata. Work is bounded by a page budget shared across
 * calls: every page or entry visited spends one, so a cycle or an absurd
 * count ends in EFAULT, never a hang.
 */

import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import { getU64 } from './_u64.js';
import {
  LINK_OFF_COUNT,
  LINK_OFF_MAGIC,
  LINK_OFF_NEXT,
  NODE_OFF_FLAGS,
  NODE_OFF_MAGIC,
  NODE_OFF_NAME,
  NODE_OFF_NAME_LEN,
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
  PKRAM_LINK_ENTRIES,
  PKRAM_LINK_MAGIC,
  PKRAM_MAX_ORDER,
  PKRAM_NAME_MAX,
  PKRAM_NODE_FL_SAVED,
  PKRAM_NODE_MAGIC,
  PKRAM_OBJ_MAGIC,
} from './abi.js';
import { PkramError } from './errors.js';
import { pageSealed, type SealedPage } from './seal.js';
import { type LinkEntry, readEntry } from './stream.js';

export type BlockKind = 'node' | 'object' | 'link' | 'data' | 'folio';

/** Called for each block; `flags` are the entry flags for folios and data pages, else 0. */
export type BlockVisitor = (pfn: number, order: number, kind: BlockKind, flags: number) => void;

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
      `corrupt PKRAM metadata: ${kind} page ${pfn} fails its crc32c`,
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

/**
 * Walks node `pfn`: checks every magic, count and pointer, calls `visit` for
 * every block (the node page first, folios as they come) and returns a summary.
 * @throws PkramError EFAULT on anything malformed (what `visit` throws passes through).
 */
export function walkNode(
  device: MemoryDevice,
  pfn: number,
  visit: BlockVisitor | null,
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
  visit?.(pfn, 0, 'node', 0);
  let obj = getU64(view, NODE_OFF_OBJ);
  for (let i = 0; i < nrObjs; i++) {
    const o = walkObject(device, obj, visit, budget, summary);
    summary.objects.push(o);
    obj = getU64(device.view(obj * PAGE_SIZE, PAGE_SIZE), OBJ_OFF_NEXT);
  }
  if (obj !== 0) throw corrupt(`node ${pfn} lists more than its ${nrObjs} objects`);
  return summary;
}

function walkObject(
  device: MemoryDevice,
  pfn: number,
  visit: BlockVisitor | null,
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
  visit?.(pfn, 0, 'object', 0);
  const bytes = getU64(view, OBJ_OFF_BYTE_LEN);
  const nrFolios = getU64(view, OBJ_OFF_NR_FOLIOS);
  if (bytes > device.size) throw corrupt(`object ${pfn} claims ${bytes} bytes`);
  if (nrFolios > device.pages) throw corrupt(`object ${pfn} claims ${nrFolios} folios`);
  const out: ObjectSummary = {
    pfn,
    folios: 0,
    foliosByOrder: [],
    relocatedFolios: 0,
    bytes,
  };
  walkChain(device, getU64(view, OBJ_OFF_FOLIO_HEAD), budget, node, visit, (e) => {
    out.folios++;
    out.foliosByOrder[e.order] = (out.foliosByOrder[e.order] ?? 0) + 1;
    if (e.flags & PKRAM_ENTRY_FL_RELOCATED) out.relocatedFolios++;
    visit?.(e.pfn, e.order, 'folio', e.flags);
  });
  if (out.folios !== nrFolios) {
    throw corrupt(`object ${pfn} has ${out.folios} folio entries, its count says ${nrFolios}`);
  }
  for (let o = 0; o < out.foliosByOrder.length; o++) out.foliosByOrder[o] ??= 0;
  const wantPages = Math.ceil(bytes / PAGE_SIZE);
  let dataPages = 0;
  walkChain(device, getU64(view, OBJ_OFF_BYTE_HEAD), budget, node, visit, (e) => {
    if (e.order !== 0 || e.index !== dataPages) {
      throw corrupt(`object ${pfn} data page ${dataPages} has order ${e.order} index ${e.index}`);
    }
    dataPages++;
    node.metadataPages++;
    visit?.(e.pfn, 0, 'data', e.flags);
  });
  if (dataPages !== wantPages) {
    throw corrupt(`object ${pfn} has ${dataPages} data pages for ${bytes} bytes`);
  }
  return out;
}

function walkChain(
  device: MemoryDevice,
  head: number,
  budget: WalkBudget,
  node: NodeSummary,
  visit: BlockVisitor | null,
  onEntry: (e: LinkEntry) => void,
): void {
  const e: LinkEntry = { pfn: 0, order: 0, flags: 0, index: 0 };
  let link = head;
  while (link !== 0) {
    checkMetaPfn(device, link, 'link page');
    spend(budget, 1);
    const view = device.view(link * PAGE_SIZE, PAGE_SIZE);
    if (view.getUint32(LINK_OFF_MAGIC, true) !== PKRAM_LINK_MAGIC) {
      throw corrupt(`pfn ${link} is not a link page`);
    }
    const count = view.getUint32(LINK_OFF_COUNT, true);
    if (count > PKRAM_LINK_ENTRIES) throw corrupt(`link page ${link} claims ${count} entries`);
    checkSeal(device, link, 'link', budget);
    node.metadataPages++;
    // Link pages are visited before their entries so a claimer sees the page first.
    visit?.(link, 0, 'link', 0);
    for (let i = 0; i < count; i++) {
      readEntry(view, i, e);
      if (e.order > PKRAM_MAX_ORDER)
        throw corrupt(`link page ${link} entry ${i} has order ${e.order}`);
      if ((e.flags & ~PKRAM_ENTRY_FLAGS_KNOWN) !== 0) {
        throw corrupt(`link page ${link} entry ${i} has unknown flags ${e.flags}`);
      }
      const size = 2 ** e.order;
      if (e.pfn % size !== 0 || e.pfn + size > device.pages) {
        throw corrupt(
          `link page ${link} entry ${i}: pfn ${e.pfn} order ${e.order} is misaligned or outside`,
        );
      }
      if (!Number.isSafeInteger(e.index))
        throw corrupt(`link page ${link} entry ${i} index is past 2^53`);
      spend(budget, 1);
      onEntry(e);
    }
    link = getU64(view, LINK_OFF_NEXT);
  }
}
