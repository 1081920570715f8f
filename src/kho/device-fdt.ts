import { HDR_TOTALSIZE } from '../fdt/format.js';
import { Fdt } from '../fdt/read.js';
import type { MemoryDevice } from '../memory/device.js';

/** The most a small subtree (PKRAM's, reserve_mem's: a few properties) is read as. */
export const SMALL_SUBTREE_MAX = 64 * 1024;

/** Bytes of an FDT header up to and including totalsize. */
const TOTALSIZE_END = HDR_TOTALSIZE + 4;

/**
 * The FDT at `phys` of `device`, validated whole (libfdt's fdt_check_full),
 * over a copy: its header's totalsize says how much to copy, at most `room`
 * bytes and what the device holds. The one way KHO, its users (PKRAM,
 * reserve_mem) and status read a blob out of device pages.
 * @throws FdtError a blob that does not fit `room` or is not sound
 */
export function readFdtAt(
  device: Pick<MemoryDevice, 'size' | 'view' | 'bytes'>,
  phys: number,
  room: number,
): Fdt {
  const max = Math.max(0, Math.min(room, device.size - phys));
  const total =
    max >= TOTALSIZE_END ? device.view(phys, TOTALSIZE_END).getUint32(HDR_TOTALSIZE, false) : 0;
  const fdt = Fdt.from(device.bytes(phys, Math.min(total, max)).slice());
  fdt.checkFull();
  return fdt;
}
