/**
 * The crc32c each node, object and link page carries (abi.ts). A page is
 * sealed once, when it is complete, so the cost is one pass over metadata a
 * save already wrote; a successor checks a page's seal before it reads any
 * field past the magic.
 */

import { crc32c } from '../memory/crc32c.js';
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

export type SealedPage = 'node' | 'object' | 'link';

/**
 * A link page's covered bytes (its header before the crc, then the entries
 * used) gathered in one buffer: one crc32c call, one copy into its
 * WebAssembly memory, rather than two of each.
 */
const gathered = new Uint8Array(PAGE_SIZE);

/** The crc a page of `kind` at pfn should carry, from what it holds now. */
export function pageCrc(device: MemoryDevice, pfn: number, kind: SealedPage): number {
  const page = device.bytes(pfn * PAGE_SIZE, PAGE_SIZE);
  if (kind === 'node') return crc32c(page.subarray(0, NODE_OFF_CRC));
  if (kind === 'object') return crc32c(page.subarray(0, OBJ_OFF_CRC));
  const count = u32(page, LINK_OFF_COUNT);
  const used = Math.min(count, PKRAM_LINK_ENTRIES) * LINK_ENTRY_SIZE;
  gathered.set(page.subarray(0, LINK_OFF_CRC));
  gathered.set(page.subarray(LINK_OFF_ENTRIES, LINK_OFF_ENTRIES + used), LINK_OFF_CRC);
  return crc32c(gathered.subarray(0, LINK_OFF_CRC + used));
}

function crcOffset(kind: SealedPage): number {
  return kind === 'node' ? NODE_OFF_CRC : kind === 'object' ? OBJ_OFF_CRC : LINK_OFF_CRC;
}

/** The little-endian u32 at `off`. */
function u32(page: Uint8Array, off: number): number {
  return (page[off] | (page[off + 1] << 8) | (page[off + 2] << 16) | (page[off + 3] << 24)) >>> 0;
}

/** Writes the page's crc. */
export function sealPage(device: MemoryDevice, pfn: number, kind: SealedPage): void {
  const off = crcOffset(kind);
  device.view(pfn * PAGE_SIZE + off, 4).setUint32(0, pageCrc(device, pfn, kind), true);
}

/** Whether the page's stored crc matches what it holds. */
export function pageSealed(device: MemoryDevice, pfn: number, kind: SealedPage): boolean {
  const stored = u32(device.bytes(pfn * PAGE_SIZE, PAGE_SIZE), crcOffset(kind));
  return stored === pageCrc(device, pfn, kind);
}
