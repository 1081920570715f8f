import { show } from '../base/errors.js';
import { FdtError } from './errors.js';
/**
 * The Flattened Device Tree format, as libfdt's fdt.h lays it out. All
 * integers in a blob are big-endian.
 *
 *   offset 0          header (40 bytes at v17)
 *   off_mem_rsvmap    { u64 address, u64 size }* ... { 0, 0 }   (8-aligned)
 *   off_dt_struct     tokens, 4-aligned:
 *                       BEGIN_NODE name\0 pad | PROP len nameoff value pad |
 *                       END_NODE | NOP | END
 *   off_dt_strings    property names, NUL-terminated, concatenated
 */

export const FDT_MAGIC = 0xd00dfeed;

/** Structure block tokens. */
export const FDT_BEGIN_NODE = 0x1;
export const FDT_END_NODE = 0x2;
export const FDT_PROP = 0x3;
export const FDT_NOP = 0x4;
export const FDT_END = 0x9;

export const FDT_TAGSIZE = 4;

/** Header field offsets (each a big-endian u32). */
export const HDR_MAGIC = 0;
export const HDR_TOTALSIZE = 4;
export const HDR_OFF_DT_STRUCT = 8;
export const HDR_OFF_DT_STRINGS = 12;
export const HDR_OFF_MEM_RSVMAP = 16;
export const HDR_VERSION = 20;
export const HDR_LAST_COMP_VERSION = 24;
export const HDR_BOOT_CPUID_PHYS = 28;
export const HDR_SIZE_DT_STRINGS = 32;
export const HDR_SIZE_DT_STRUCT = 36;

/** Header size by version: v1 28, v2 32, v3..v16 36, v17 40. */
export function headerSize(version: number): number {
  if (typeof version !== 'number' || Number.isNaN(version))
    throw new FdtError('BADVERSION', `version ${show(version)} is not a number`);
  if (version <= 1) return 28;
  if (version <= 2) return 32;
  if (version < 17) return 36;
  return 40;
}

/** Oldest and newest versions libfdt reads; it writes only the last. */
export const FDT_FIRST_SUPPORTED_VERSION = 0x02;
export const FDT_LAST_SUPPORTED_VERSION = 0x11;
/** Versions this codec writes: version 17, readable by anything that reads 16. */
export const FDT_WRITE_VERSION = 17;
export const FDT_WRITE_LAST_COMP_VERSION = 16;

/** One reservation map entry is two u64. */
export const FDT_RESERVE_ENTRY_SIZE = 16;

/** Longest node or property name dtc accepts (without the unit address for nodes). */
export const FDT_MAX_NAME_LEN = 31;

/** libfdt's FDT_MAX_PHANDLE: 0 and 0xffffffff are never valid phandles. */
export const FDT_MAX_PHANDLE = 0xfffffffe;

/** Default and upper limit of #address-cells / #size-cells (libfdt's FDT_MAX_NCELLS). */
export const FDT_DEFAULT_ADDRESS_CELLS = 2;
export const FDT_DEFAULT_SIZE_CELLS = 1;
export const FDT_MAX_NCELLS = 4;

/** Nesting deeper than this is refused as BADSTRUCTURE so no input does unbounded work. */
export const FDT_MAX_DEPTH = 256;

/**
 * Round up to a multiple of `align` (a power of two). Exact for every safe
 * integer: only the low bits go through 32-bit arithmetic, so a length near
 * 2^31 does not wrap negative.
 */
export function alignUp(n: number, align: number): number {
  if (!Number.isSafeInteger(n) || !Number.isSafeInteger(align) || align < 1)
    throw new FdtError('BADVALUE', `alignUp(${show(n)}, ${show(align)}): integers expected`);
  return n + (-n & (align - 1));
}

/** Characters allowed in node names (before and after '@') and in property names. */
export const NODE_NAME_CHARS = /^[0-9a-zA-Z,._+-]+$/;
export const PROP_NAME_CHARS = /^[0-9a-zA-Z,._+?#-]+$/;
