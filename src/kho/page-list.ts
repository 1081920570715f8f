import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import type { Folio } from '../mm/folio.js';
import {
  KHO_PAGE_LIST_ENTRIES_PER_CHUNK,
  KHO_PAGE_LIST_MAGIC,
  KHO_PAGE_LIST_OFF_COUNT,
  KHO_PAGE_LIST_OFF_ENTRIES,
  KHO_PAGE_LIST_OFF_MAGIC,
  KHO_PAGE_LIST_OFF_NEXT,
} from './abi.js';
import { KhoError } from './errors.js';

/** What preservePageList needs from KHO. */
export interface PageListHost {
  readonly device: MemoryDevice;
  preserveFolio(f: Folio): void;
  unpreserveFolio(f: Folio): void;
  allocPreserve(size: number): Folio;
  unpreserveFree(f: Folio): void;
}

/**
 * Preserves `folios` and a chain of chunk pages listing them (layout in
 * abi.ts); all or nothing.
 * @returns the physical address of the first chunk (0 for an empty list).
 */
export function preservePageList(host: PageListHost, folios: readonly Folio[]): number {
  const done: Folio[] = [];
  const chunks: Folio[] = [];
  try {
    for (const f of folios) {
      host.preserveFolio(f);
      done.push(f);
    }
    let next = 0;
    for (
      let start =
        Math.floor((folios.length - 1) / KHO_PAGE_LIST_ENTRIES_PER_CHUNK) *
        KHO_PAGE_LIST_ENTRIES_PER_CHUNK;
      start >= 0;
      start -= KHO_PAGE_LIST_ENTRIES_PER_CHUNK
    ) {
      const chunk = host.allocPreserve(PAGE_SIZE);
      chunks.push(chunk);
      const part = folios.slice(start, start + KHO_PAGE_LIST_ENTRIES_PER_CHUNK);
      const v = host.device.view(chunk.pfn * PAGE_SIZE, PAGE_SIZE);
      v.setUint32(KHO_PAGE_LIST_OFF_MAGIC, KHO_PAGE_LIST_MAGIC, true);
      v.setUint32(KHO_PAGE_LIST_OFF_COUNT, part.length, true);
      v.setBigUint64(KHO_PAGE_LIST_OFF_NEXT, BigInt(next), true);
      part.forEach((f, i) => {
        v.setBigUint64(
          KHO_PAGE_LIST_OFF_ENTRIES + 8 * i,
          BigInt(f.pfn * PAGE_SIZE + f.order),
          true,
        );
      });
      next = chunk.pfn * PAGE_SIZE;
    }
    return next;
  } catch (err) {
    for (const c of chunks) host.unpreserveFree(c);
    for (const f of done) host.unpreserveFolio(f);
    throw err;
  }
}

/** Undoes preservePageList for a list this generation made. */
export function unpreservePageList(
  host: PageListHost,
  phys: number,
  orderAt: (pfn: number) => number,
): void {
  const list = readPageList(host.device, phys, orderAt);
  for (const e of list.entries) host.unpreserveFolio(e);
  for (const c of list.chunks) host.unpreserveFree({ pfn: c, order: 0 });
}

/**
 * Reads and validates a page list: every chunk a preserved order-0 block with
 * the magic, counts in range, no cycle, every entry a preserved block of its
 * order, named once and not a chunk of the list (so restoring the entries
 * one by one cannot fail halfway). `orderAt(pfn)` says which blocks are
 * preserved (-1 for none).
 * @throws KhoError EFAULT with the reason; nothing is changed.
 */
export function readPageList(
  device: MemoryDevice,
  phys: number,
  orderAt: (pfn: number) => number,
): { chunks: number[]; entries: Folio[] } {
  const chunks: number[] = [];
  const entries: Folio[] = [];
  const seen = new Set<number>();
  const named = new Set<number>();
  for (let at = phys; at !== 0; ) {
    if (!Number.isSafeInteger(at) || at % PAGE_SIZE !== 0 || at < 0 || at >= device.size) {
      throw new KhoError(
        'EFAULT',
        `page list chunk 0x${at.toString(16)} is not a page inside the device`,
      );
    }
    const pfn = at / PAGE_SIZE;
    if (seen.has(pfn))
      throw new KhoError('EFAULT', `page list chunk 0x${at.toString(16)} appears twice (a cycle)`);
    if (named.has(pfn))
      throw new KhoError('EFAULT', `page list chunk 0x${at.toString(16)} is also a list entry`);
    seen.add(pfn);
    if (orderAt(pfn) !== 0)
      throw new KhoError('EFAULT', `page list chunk 0x${at.toString(16)} is not a preserved page`);
    const v = device.view(at, PAGE_SIZE);
    if (v.getUint32(KHO_PAGE_LIST_OFF_MAGIC, true) !== KHO_PAGE_LIST_MAGIC) {
      throw new KhoError('EFAULT', `page list chunk 0x${at.toString(16)} has a bad magic`);
    }
    const count = v.getUint32(KHO_PAGE_LIST_OFF_COUNT, true);
    if (count > KHO_PAGE_LIST_ENTRIES_PER_CHUNK) {
      throw new KhoError('EFAULT', `page list chunk 0x${at.toString(16)} claims ${count} entries`);
    }
    for (let i = 0; i < count; i++) {
      const raw = v.getBigUint64(KHO_PAGE_LIST_OFF_ENTRIES + 8 * i, true);
      const order = Number(raw & 0xfffn);
      const epfn = Number(raw >> 12n);
      if (orderAt(epfn) !== order) {
        throw new KhoError(
          'EFAULT',
          `page list entry ${i} (pfn ${epfn}, order ${order}) is not a preserved block`,
        );
      }
      if (named.has(epfn) || seen.has(epfn)) {
        throw new KhoError(
          'EFAULT',
          `page list entry ${i} (pfn ${epfn}) is named twice or is a chunk of the list`,
        );
      }
      named.add(epfn);
      entries.push({ pfn: epfn, order });
    }
    chunks.push(pfn);
    const next = v.getBigUint64(KHO_PAGE_LIST_OFF_NEXT, true);
    if (next > BigInt(Number.MAX_SAFE_INTEGER))
      throw new KhoError('EFAULT', 'page list link is past 2^53');
    at = Number(next);
  }
  return { chunks, entries };
}
