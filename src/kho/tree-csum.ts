import { setU64 } from '../base/u64.js';
import { crc32c } from '../memory/crc32c.js';
import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';

/**
 * crc32c over a radix tree's pages: ascending by address, each page's u64
 * LE address then its bytes. O(metadata): 532 KiB of tree for 16 GiB of
 * order-0 pages.
 */
export function treeChecksum(device: MemoryDevice, pages: Iterable<number>): number {
  const sorted = [...pages].sort((a, b) => a - b);
  const addr = new Uint8Array(8);
  const v = new DataView(addr.buffer);
  let crc = 0;
  for (const p of sorted) {
    setU64(v, 0, p);
    crc = crc32c(addr, crc);
    crc = crc32c(device.bytes(p, PAGE_SIZE), crc);
  }
  return crc;
}
