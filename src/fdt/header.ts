import { show } from '../base/errors.js';
import { hex } from '../base/hex.js';
/**
 * The header check, with libfdt's fdt_check_header semantics and codes, plus
 * the buffer-size checks fdt_check_full makes first.
 */
import { FdtError } from './errors.js';
import {
  FDT_FIRST_SUPPORTED_VERSION,
  FDT_LAST_SUPPORTED_VERSION,
  FDT_MAGIC,
  HDR_LAST_COMP_VERSION,
  HDR_MAGIC,
  HDR_OFF_DT_STRINGS,
  HDR_OFF_DT_STRUCT,
  HDR_OFF_MEM_RSVMAP,
  HDR_SIZE_DT_STRINGS,
  HDR_SIZE_DT_STRUCT,
  HDR_TOTALSIZE,
  HDR_VERSION,
  headerSize,
} from './format.js';

/** The smallest header of any version (v1); less than this cannot be a blob. */
const V1_HEADER_SIZE = 28;
const INT_MAX = 0x7fffffff;

/** Big-endian u32 at `at`; the caller has checked `at + 4 <= u8.length`. */
function be32(u8: Uint8Array, at: number): number {
  return ((u8[at]! << 24) | (u8[at + 1]! << 16) | (u8[at + 2]! << 8) | u8[at + 3]!) >>> 0;
}

/** libfdt's check_off_: an offset between the end of the header and totalsize. */
function offsetInside(hdrsize: number, totalsize: number, off: number): boolean {
  return off >= hdrsize && off <= totalsize;
}

/** libfdt's check_block_: a block [base, base+size) inside the same bounds. */
function blockInside(hdrsize: number, totalsize: number, base: number, size: number): boolean {
  return offsetInside(hdrsize, totalsize, base) && offsetInside(hdrsize, totalsize, base + size);
}

/**
 * Check a blob's header as libfdt's fdt_check_full does before walking: the
 * buffer holds the header, the header is sane (`checkHeaderFields`), and the
 * buffer holds totalsize bytes.
 *
 * @throws FdtError TRUNCATED buffer shorter than the header or than totalsize;
 *   and every code of checkHeaderFields
 */
export function checkHeader(u8: Uint8Array): void {
  checkHeaderFields(u8);
  const buflen = u8.byteLength;
  const total = be32(u8, HDR_TOTALSIZE);
  if (buflen < total) {
    throw new FdtError('TRUNCATED', `buffer of ${buflen} bytes is shorter than totalsize ${total}`);
  }
}

/**
 * libfdt's fdt_check_header: the header alone, whatever the buffer's length
 * beyond it. Blocks may come in any order and may overlap (libfdt does not
 * check that); each must lie between the end of the header and totalsize.
 *
 * @throws FdtError ALIGNMENT the bytes do not start at an 8-byte aligned address
 * @throws FdtError BADMAGIC magic is not 0xd00dfeed
 * @throws FdtError BADVERSION version < 2, last_comp_version > 17, or
 *   version < last_comp_version
 * @throws FdtError TRUNCATED totalsize below the header size or above 2^31-1,
 *   a block outside [header end, totalsize], or a buffer shorter than the header
 */
export function checkHeaderFields(u8: Uint8Array): void {
  if (!(u8 instanceof Uint8Array))
    throw new FdtError('BADVALUE', `a blob is a Uint8Array, got ${show(u8)}`);
  const buflen = u8.byteLength;
  if (buflen < V1_HEADER_SIZE) {
    throw new FdtError('TRUNCATED', `buffer of ${buflen} bytes is shorter than any header`);
  }
  const version = be32(u8, HDR_VERSION);
  const hdrsize = headerSize(version);
  if (buflen < hdrsize) {
    throw new FdtError(
      'TRUNCATED',
      `buffer of ${buflen} bytes is shorter than a v${version} header`,
    );
  }
  if (u8.byteOffset & 7) {
    throw new FdtError('ALIGNMENT', `blob starts at byte ${u8.byteOffset}, not 8-byte aligned`);
  }
  const magic = be32(u8, HDR_MAGIC);
  if (magic !== FDT_MAGIC) {
    throw new FdtError('BADMAGIC', `magic ${hex(magic)} is not 0xd00dfeed`);
  }
  const lastComp = be32(u8, HDR_LAST_COMP_VERSION);
  if (version < FDT_FIRST_SUPPORTED_VERSION || lastComp > FDT_LAST_SUPPORTED_VERSION) {
    throw new FdtError('BADVERSION', `version ${version}, last_comp_version ${lastComp}`);
  }
  if (version < lastComp) {
    throw new FdtError('BADVERSION', `version ${version} older than last_comp_version ${lastComp}`);
  }
  const total = be32(u8, HDR_TOTALSIZE);
  if (total < hdrsize || total > INT_MAX) {
    throw new FdtError('TRUNCATED', `totalsize ${total} outside [${hdrsize}, 2^31-1]`);
  }
  const rsvmap = be32(u8, HDR_OFF_MEM_RSVMAP);
  if (!offsetInside(hdrsize, total, rsvmap)) {
    throw new FdtError('TRUNCATED', `off_mem_rsvmap ${rsvmap} outside [${hdrsize}, ${total}]`);
  }
  const offStruct = be32(u8, HDR_OFF_DT_STRUCT);
  if (version < 17) {
    if (!offsetInside(hdrsize, total, offStruct)) {
      throw new FdtError('TRUNCATED', `off_dt_struct ${offStruct} outside [${hdrsize}, ${total}]`);
    }
  } else {
    const size = be32(u8, HDR_SIZE_DT_STRUCT);
    if (!blockInside(hdrsize, total, offStruct, size)) {
      throw new FdtError(
        'TRUNCATED',
        `structure block ${offStruct}+${size} outside totalsize ${total}`,
      );
    }
  }
  // libfdt reads size_dt_strings even from a v2 header, which ends before it.
  if (buflen < HDR_SIZE_DT_STRINGS + 4) {
    throw new FdtError('TRUNCATED', `buffer of ${buflen} bytes has no size_dt_strings`);
  }
  const offStrings = be32(u8, HDR_OFF_DT_STRINGS);
  const sizeStrings = be32(u8, HDR_SIZE_DT_STRINGS);
  if (!blockInside(hdrsize, total, offStrings, sizeStrings)) {
    throw new FdtError(
      'TRUNCATED',
      `strings block ${offStrings}+${sizeStrings} outside totalsize ${total}`,
    );
  }
}
