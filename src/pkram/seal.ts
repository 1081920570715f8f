/**
 * The crc each node, object and link page carries (abi.ts). A page is
 * sealed once, when it is complete, so the cost is one pass over metadata a
 * save already wrote; a successor checks a page's seal before it reads any
 * field past the magic.
 *
 * The seal is CRC-32 (zlib's, the polynomial of gzip and PNG), not the
 * crc32c of livekexec's other headers: node's zlib computes it with the
 * CPU's carry-less multiply (4.7 GB/s here), while crc32c has no native path
 * in node and its WebAssembly loop ran at 0.3 GB/s on a save's cold first
 * pass, a third of an order-0 save's time (a thousand link pages a GiB).
 * Both detect every 1-, 2- and 3-bit error and every burst up to 32 bits
 * in a 4 KiB page.
 *
 * Link pages have their own small functions: a kind switched on per call
 * would be a larger function for V8 to optimize, and deoptimized when a
 * kind it had not seen comes.
 */

import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import {
  LINK_ENTRY_SIZE,
  LINK_OFF_COUNT,
  LINK_OFF_CRC,
  LINK_OFF_ENTRIES,
  NODE_OFF_CRC,
  OBJ_OFF_CRC,
  PKRAM_LINK_ENTRIES,
} from './abi.js';
import { crc32 } from './crc32.js';

export type SealedPage = 'node' | 'object' | 'link';

/** The crc a link page should carry, from what it holds now: its header before the crc, then the entries used. */
function linkCrc(page: Uint8Array): number {
  const used = Math.min(u32(page, LINK_OFF_COUNT), PKRAM_LINK_ENTRIES) * LINK_ENTRY_SIZE;
  const header = crc32(page.subarray(0, LINK_OFF_CRC));
  return crc32(page.subarray(LINK_OFF_ENTRIES, LINK_OFF_ENTRIES + used), header);
}

/** The crc a page of `kind` at pfn should carry, from what it holds now. */
export function pageCrc(device: MemoryDevice, pfn: number, kind: SealedPage): number {
  const page = device.bytes(pfn * PAGE_SIZE, PAGE_SIZE);
  if (kind === 'link') return linkCrc(page);
  return crc32(page.subarray(0, kind === 'node' ? NODE_OFF_CRC : OBJ_OFF_CRC));
}

function crcOffset(kind: SealedPage): number {
  return kind === 'node' ? NODE_OFF_CRC : kind === 'object' ? OBJ_OFF_CRC : LINK_OFF_CRC;
}

/** The little-endian u32 at `off`. */
function u32(page: Uint8Array, off: number): number {
  return (page[off] | (page[off + 1] << 8) | (page[off + 2] << 16) | (page[off + 3] << 24)) >>> 0;
}

function putU32(page: Uint8Array, off: number, value: number): void {
  page[off] = value;
  page[off + 1] = value >>> 8;
  page[off + 2] = value >>> 16;
  page[off + 3] = value >>> 24;
}

/** Writes a link page's crc. */
export function sealLink(device: MemoryDevice, pfn: number): void {
  const page = device.bytes(pfn * PAGE_SIZE, PAGE_SIZE);
  putU32(page, LINK_OFF_CRC, linkCrc(page));
}

/** Whether a link page's stored crc matches what it holds. */
export function linkSealed(device: MemoryDevice, pfn: number): boolean {
  const page = device.bytes(pfn * PAGE_SIZE, PAGE_SIZE);
  return u32(page, LINK_OFF_CRC) === linkCrc(page);
}

/** Writes the page's crc. */
export function sealPage(device: MemoryDevice, pfn: number, kind: SealedPage): void {
  if (kind === 'link') sealLink(device, pfn);
  else
    putU32(device.bytes(pfn * PAGE_SIZE, PAGE_SIZE), crcOffset(kind), pageCrc(device, pfn, kind));
}

/** Whether the page's stored crc matches what it holds. */
export function pageSealed(device: MemoryDevice, pfn: number, kind: SealedPage): boolean {
  if (kind === 'link') return linkSealed(device, pfn);
  return (
    u32(device.bytes(pfn * PAGE_SIZE, PAGE_SIZE), crcOffset(kind)) === pageCrc(device, pfn, kind)
  );
}
