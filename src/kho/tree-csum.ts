import { setU64 } from '../base/u64.js';
import { crc32c } from '../memory/crc32c.js';
import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';

/** A crc continued from `crc` over `data`: crc32c, or zlib's crc32. */
export type Crc = (data: Uint8Array, crc?: number) => number;

/**
 * A crc over a radix tree's pages: ascending by address, each page's u64
 * LE address then its bytes. O(metadata): 532 KiB of tree for 16 GiB of
 * order-0 pages. KHO's tree carries crc32c; PKRAM's table takes zlib's
 * crc32 (`crc`), whose native code is several times faster.
 */
export function treeChecksum(
  device: MemoryDevice,
  pages: Iterable<number>,
  crc: Crc = crc32c,
): number {
  const sorted = [...pages].sort((a, b) => a - b);
  const addr = new Uint8Array(8);
  const v = new DataView(addr.buffer);
  let sum = 0;
  for (const p of sorted) {
    setU64(v, 0, p);
    sum = crc(addr, sum);
    sum = crc(device.bytes(p, PAGE_SIZE), sum);
  }
  return sum;
}
