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

/** The crc a page of `kind` at pfn should carry, from what it holds now. */
export function pageCrc(device: MemoryDevice, pfn: number, kind: SealedPage): number {
  const base = pfn * PAGE_SIZE;
  if (kind === 'node') return crc32c(device.bytes(base, NODE_OFF_CRC));
  if (kind === 'object') return crc32c(device.bytes(base, OBJ_OFF_CRC));
  const count = device.view(base, LINK_OFF_ENTRIES).getUint32(LINK_OFF_COUNT, true);
  const used = Math.min(count, PKRAM_LINK_ENTRIES) * LINK_ENTRY_SIZE;
  const head = crc32c(device.bytes(base, LINK_OFF_CRC));
  return crc32c(device.bytes(base + LINK_OFF_ENTRIES, used), head);
}

function crcOffset(kind: SealedPage): number {
  return kind === 'node' ? NODE_OFF_CRC : kind === 'object' ? OBJ_OFF_CRC : LINK_OFF_CRC;
}

/** Writes the page's crc. */
export function sealPage(device: MemoryDevice, pfn: number, kind: SealedPage): void {
  const off = crcOffset(kind);
  device.view(pfn * PAGE_SIZE + off, 4).setUint32(0, pageCrc(device, pfn, kind), true);
}

/** Whether the page's stored crc matches what it holds. */
export function pageSealed(device: MemoryDevice, pfn: number, kind: SealedPage): boolean {
  const stored = device.view(pfn * PAGE_SIZE + crcOffset(kind), 4).getUint32(0, true);
  return stored === pageCrc(device, pfn, kind);
}
