import { show } from '../base/errors.js';
/**
 * The one internal walker over a blob's structure and strings blocks, shared
 * by the reader, the in-place editor and the DTS printer (libfdt's
 * fdt_next_tag / fdt_check_node_offset_ / fdt_check_prop_offset_ /
 * fdt_get_string). Offsets are relative to the structure block, as in libfdt.
 *
 * Errors travel as negative libfdt numbers inside this module only (hot loops
 * must not allocate); every public caller turns them into an FdtError.
 */
import { FDT_ERR, FdtError, type FdtErrorCode } from './errors.js';
import {
  FDT_BEGIN_NODE,
  FDT_END,
  FDT_END_NODE,
  FDT_NOP,
  FDT_PROP,
  FDT_TAGSIZE,
  HDR_OFF_DT_STRINGS,
  HDR_OFF_DT_STRUCT,
  HDR_SIZE_DT_STRINGS,
  HDR_SIZE_DT_STRUCT,
  HDR_TOTALSIZE,
  HDR_VERSION,
} from './format.js';

const CODE_BY_ERRNO = new Map<number, FdtErrorCode>(
  Object.entries(FDT_ERR).map(([code, n]) => [n, code as FdtErrorCode]),
);

/** Turn a negative libfdt-style result into the FdtError to throw. */
export function errorFor(negErrno: number, detail?: string): FdtError {
  return new FdtError(CODE_BY_ERRNO.get(-negErrno) ?? 'INTERNAL', detail);
}

/** Negative errno constants for the hot paths. */
export const E_NOTFOUND = -FDT_ERR.NOTFOUND;
export const E_BADOFFSET = -FDT_ERR.BADOFFSET;
export const E_TRUNCATED = -FDT_ERR.TRUNCATED;
export const E_BADSTRUCTURE = -FDT_ERR.BADSTRUCTURE;

/**
 * Bounds of the structure and strings blocks of one blob, taken from a header
 * that has already passed the header check, so that every read stays inside
 * both the buffer and the block libfdt would allow.
 */
export class StructView {
  readonly u8: Uint8Array;
  readonly dv: DataView;
  /** Absolute offset of the structure block. */
  readonly base: number;
  /** Readable bytes from `base`: size_dt_struct from v17, else up to totalsize (libfdt). */
  readonly limit: number;
  readonly version: number;
  readonly totalSize: number;
  readonly stringsBase: number;
  /** size_dt_strings from v17; before that libfdt bounds strings by totalsize only. */
  readonly stringsSize: number;
  /** Set by nextTag: the offset after the tag, or a negative errno. */
  next = 0;
  /** Set by nextTag on a BEGIN_NODE: the absolute offset of the name's NUL. */
  nameEnd = 0;

  /** `u8` must hold at least totalsize bytes and a header that passed checkHeader. */
  constructor(u8: Uint8Array) {
    this.u8 = u8;
    this.dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
    const dv = this.dv;
    this.totalSize = dv.getUint32(HDR_TOTALSIZE);
    this.version = dv.getUint32(HDR_VERSION);
    this.base = dv.getUint32(HDR_OFF_DT_STRUCT);
    const room = this.totalSize - this.base;
    this.limit = this.version >= 17 ? Math.min(dv.getUint32(HDR_SIZE_DT_STRUCT), room) : room;
    this.stringsBase = dv.getUint32(HDR_OFF_DT_STRINGS);
    this.stringsSize =
      this.version >= 17 ? dv.getUint32(HDR_SIZE_DT_STRINGS) : this.totalSize - this.stringsBase;
  }

  /** libfdt's fdt_offset_ptr: is [offset, offset+len) inside the structure block? */
  inStruct(offset: number, len: number): boolean {
    return offset >= 0 && offset + len <= this.limit;
  }

  /** Big-endian u32 at a structure-relative offset the caller has bounds-checked. */
  u32(offset: number): number {
    return this.dv.getUint32(this.base + offset);
  }
}

/**
 * libfdt's fdt_next_tag: the tag at `offset`; `s.next` becomes the offset of
 * the following tag, or a negative errno (TRUNCATED when not even the tag fits,
 * BADSTRUCTURE for an unterminated name, a value past the block or an unknown
 * tag). On any error the tag returned is FDT_END.
 */
export function nextTag(s: StructView, offset: number): number {
  s.next = E_TRUNCATED;
  if (!s.inStruct(offset, FDT_TAGSIZE)) return FDT_END;
  const tag = s.u32(offset);
  let p = offset + FDT_TAGSIZE;
  s.next = E_BADSTRUCTURE;
  switch (tag) {
    case FDT_BEGIN_NODE: {
      const u8 = s.u8;
      const end = s.base + s.limit;
      let a = s.base + p;
      while (a < end && u8[a] !== 0) a++;
      if (a >= end) return FDT_END;
      s.nameEnd = a;
      p = a + 1 - s.base;
      break;
    }
    case FDT_PROP: {
      if (!s.inStruct(p, 4)) return FDT_END;
      const len = s.u32(p);
      if (len + p >= 0x7fffffff) return FDT_END;
      p += 8 + len;
      // Before v16, values of 8 bytes or more start 8-aligned (struct-relative).
      if (s.version < 16 && len >= 8 && (p - len) % 8 !== 0) p += 4;
      break;
    }
    case FDT_END:
    case FDT_END_NODE:
    case FDT_NOP:
      break;
    default:
      return FDT_END;
  }
  if (!s.inStruct(offset, p - offset)) return FDT_END;
  s.next = (p + 3) & ~3;
  return tag;
}

/** libfdt's fdt_check_node_offset_: offset after the BEGIN_NODE at `offset`, or -BADOFFSET. */
export function checkNodeOffset(s: StructView, offset: number): number {
  if (!Number.isInteger(offset) || offset < 0 || offset % FDT_TAGSIZE !== 0) return E_BADOFFSET;
  if (nextTag(s, offset) !== FDT_BEGIN_NODE) return E_BADOFFSET;
  return s.next;
}

/** libfdt's fdt_check_prop_offset_: offset after the PROP at `offset`, or -BADOFFSET. */
export function checkPropOffset(s: StructView, offset: number): number {
  if (!Number.isInteger(offset) || offset < 0 || offset % FDT_TAGSIZE !== 0) return E_BADOFFSET;
  if (nextTag(s, offset) !== FDT_PROP) return E_BADOFFSET;
  return s.next;
}

/**
 * libfdt's fdt_next_node. `depth` is a one-element array (or null) so the hot
 * loop allocates nothing. Returns the next node's offset, or a negative errno:
 * NOTFOUND at the end of the tree; with a depth, the END_NODE that takes the
 * depth below zero returns the offset after it (as libfdt does).
 */
export function nextNode(s: StructView, offset: number, depth: Int32Array | null): number {
  if (typeof offset !== 'number' || Number.isNaN(offset)) return E_BADOFFSET;
  let next = 0;
  if (offset >= 0) {
    next = checkNodeOffset(s, offset);
    if (next < 0) return next;
  }
  let tag: number;
  do {
    offset = next;
    tag = nextTag(s, offset);
    next = s.next;
    switch (tag) {
      case FDT_BEGIN_NODE:
        if (depth) depth[0]++;
        break;
      case FDT_END_NODE:
        if (depth && --depth[0]! < 0) return next;
        break;
      case FDT_END:
        if (next >= 0 || (next === E_TRUNCATED && !depth)) return E_NOTFOUND;
        return next;
    }
  } while (tag !== FDT_BEGIN_NODE);
  return offset;
}

/** libfdt's nextprop_: the first PROP at or after `offset` within the same node. */
export function nextProp(s: StructView, offset: number): number {
  let tag: number;
  do {
    tag = nextTag(s, offset);
    if (tag === FDT_END) return s.next >= 0 ? E_BADSTRUCTURE : s.next;
    if (tag === FDT_PROP) return offset;
    offset = s.next;
  } while (tag === FDT_NOP);
  return E_NOTFOUND;
}

/**
 * libfdt's fdt_get_string: absolute [start, end) of the string at `stroffset`
 * in the strings block, returned as start and stored end in `s.next`; or a
 * negative errno (BADOFFSET out of the block, TRUNCATED with no NUL).
 */
export function stringAt(s: StructView, stroffset: number): number {
  if (stroffset < 0 || stroffset > 0x7fffffff) return E_BADOFFSET;
  const abs = stroffset + s.stringsBase;
  if (abs >= s.totalSize) return E_BADOFFSET;
  let len = s.totalSize - abs;
  if (s.version >= 17) {
    if (stroffset >= s.stringsSize) return E_BADOFFSET;
    len = Math.min(len, s.stringsSize - stroffset);
  }
  const u8 = s.u8;
  const end = abs + len;
  let nul = abs;
  while (nul < end && u8[nul] !== 0) nul++;
  if (nul >= end) return E_TRUNCATED;
  s.next = nul;
  return abs;
}

const utf8 = new TextDecoder('utf-8');

/**
 * A node or property name: one char per byte (names are ASCII by the spec;
 * a damaged name keeps its exact bytes, so lookups and printers can match them).
 */
export function nameText(u8: Uint8Array, start: number, end: number): string {
  let out = '';
  if (end - start <= 32) {
    // Short names (nearly all): cheaper than a subarray and apply.
    for (let i = start; i < end; i++) out += String.fromCharCode(u8[i]!);
    return out;
  }
  for (let i = start; i < end; i += 4096) {
    out += String.fromCharCode.apply(
      null,
      u8.subarray(i, Math.min(end, i + 4096)) as unknown as number[],
    );
  }
  return out;
}

/** The bytes of a name given by a caller; undefined if it has a char above 0xff. */
export function nameBytes(name: string): Uint8Array | undefined {
  if (typeof name !== 'string')
    throw new FdtError('BADVALUE', `a name is a string, got ${show(name)}`);
  const out = new Uint8Array(name.length);
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c > 0xff) return undefined;
    out[i] = c;
  }
  return out;
}

/** A string property value: UTF-8. */
export function valueText(u8: Uint8Array, start: number, end: number): string {
  return utf8.decode(u8.subarray(start, end));
}
