import { show } from '../base/errors.js';
import { setU64 } from '../base/u64.js';
/**
 * Internals shared by the sequential writer (write.ts) and the read-write
 * editor (edit.ts): name checks, UTF-8 encoding straight into a blob, and
 * the conversion of caller values into property bytes. Not part of the
 * public API.
 */

import { FdtError } from './errors.js';
import { FDT_MAX_NAME_LEN } from './format.js';

const encoder = new TextEncoder();

// Character classes as lookup tables: one array index per character beats a
// regular expression on the hot path of the writer (one check per node).
const NODE_CHARS = charTable('0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ,._+-');
const PROP_CHARS = charTable(
  '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ,._+?#-',
);
const AT = 0x40;

function charTable(chars: string): Uint8Array {
  const t = new Uint8Array(128);
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1;
  return t;
}

/** Bytes `s` takes in UTF-8 (without a terminator). */
export function utf8Length(s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s, 'utf8');
  }
  return n;
}

/**
 * Writes `s` as UTF-8 at `off`; `len` is `utf8Length(s)` and the caller has
 * checked that `buf` has room for it.
 */
export function writeUtf8(buf: Uint8Array, off: number, s: string, len: number): void {
  if (len === s.length) {
    for (let i = 0; i < len; i++) buf[off + i] = s.charCodeAt(i);
  } else {
    encoder.encodeInto(s, buf.subarray(off, off + len));
  }
}

/** Whether `s` holds a NUL, which a name or string value in a blob cannot carry. */
export function hasNul(s: string): boolean {
  return s.indexOf('\0') >= 0;
}

/**
 * Checks a node name as dtc would accept it: `name` of 1..31 characters of
 * `[0-9a-zA-Z,._+-]`, optionally `@unit-address` of the same characters.
 * The root is the only node with an empty name.
 * @throws FdtError BADVALUE when the name is not acceptable.
 */
export function checkNodeName(name: string, isRoot: boolean): void {
  if (typeof name !== 'string')
    throw new FdtError('BADVALUE', `a node name is a string, got ${show(name)}`);
  if (isRoot) {
    if (name !== '')
      throw new FdtError('BADVALUE', `the root node must have an empty name, not "${name}"`);
    return;
  }
  const n = name.length;
  let at = -1;
  for (let i = 0; i < n; i++) {
    const c = name.charCodeAt(i);
    if (c === AT && at < 0) at = i;
    else if (c >= 128 || NODE_CHARS[c] === 0) throw badNodeName(name);
  }
  const base = at < 0 ? n : at;
  if (base === 0 || base > FDT_MAX_NAME_LEN || at === n - 1) throw badNodeName(name);
}

function badNodeName(name: string): FdtError {
  return new FdtError(
    'BADVALUE',
    `bad node name ${JSON.stringify(name)}: want 1..${FDT_MAX_NAME_LEN} of [0-9a-zA-Z,._+-], optionally @unit-address`,
  );
}

/**
 * Checks a property name: 1..31 characters of `[0-9a-zA-Z,._+?#-]`.
 * @throws FdtError BADVALUE when the name is not acceptable.
 */
export function checkPropName(name: string): void {
  const n = name.length;
  let ok = n >= 1 && n <= FDT_MAX_NAME_LEN;
  for (let i = 0; ok && i < n; i++) {
    const c = name.charCodeAt(i);
    ok = c < 128 && PROP_CHARS[c] === 1;
  }
  if (!ok) {
    throw new FdtError(
      'BADVALUE',
      `bad property name ${JSON.stringify(name)}: want 1..${FDT_MAX_NAME_LEN} of [0-9a-zA-Z,._+?#-]`,
    );
  }
}

/**
 * Checks a name only for what a blob cannot represent: a NUL (libfdt takes
 * C strings), or a character above 0xff. Names are byte strings, one
 * character per byte, as the reader gives them back (see _walk.ts nameText).
 * @throws FdtError BADVALUE when the name holds a NUL or a character above 0xff.
 */
export function checkRawName(name: string): void {
  if (typeof name !== 'string')
    throw new FdtError('BADVALUE', `a name is a string, got ${show(name)}`);
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0 || c > 0xff) {
      throw new FdtError(
        'BADVALUE',
        `name ${JSON.stringify(name)} holds a NUL or a character above 0xff (names are bytes)`,
      );
    }
  }
}

/** Writes a name that passed a name check, one byte per character. */
export function writeName(buf: Uint8Array, off: number, name: string): void {
  for (let i = 0; i < name.length; i++) buf[off + i] = name.charCodeAt(i);
}

const U64_MAX = (1n << 64n) - 1n;

/**
 * Checks a u64 value: a number must be a safe integer, a bigint in 0..2^64-1.
 * @throws FdtError BADVALUE when `v` is out of range or not an integer.
 */
export function checkU64(v: number | bigint, what: string): void {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new FdtError(
        'BADVALUE',
        `${show(what)} ${show(v)} is not an integer in 0..2^53-1 (pass a bigint)`,
      );
    }
  } else if (typeof v !== 'bigint' || v < 0n || v > U64_MAX) {
    throw new FdtError('BADVALUE', `${show(what)} ${show(v)} is not in 0..2^64-1`);
  }
}

/** Stores a u64 that passed `checkU64` big-endian at `off` (FDT cells are big-endian). */
export function setBeU64(view: DataView, off: number, v: number | bigint): void {
  setU64(view, off, v, false);
}

/**
 * Checks a u32 cell value.
 * @throws FdtError BADVALUE when `v` is not an integer in 0..0xffffffff.
 */
/** @throws FdtError BADVALUE unless `v` is a Uint8Array (a property value). */
export function checkBytes(v: unknown, what: unknown): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array))
    throw new FdtError('BADVALUE', `${show(what)}: a value is a Uint8Array, got ${show(v)}`);
}

/** @throws FdtError BADVALUE unless `v` is an array or typed array (of cells, checked one by one later). */
export function checkCells(v: unknown, what: unknown): asserts v is ArrayLike<number> {
  if (!Array.isArray(v) && !(ArrayBuffer.isView(v) && !(v instanceof DataView)))
    throw new FdtError('BADVALUE', `${show(what)}: cells are an array of u32, got ${show(v)}`);
}

/** @throws FdtError BADVALUE unless `v` is an array of strings. */
export function checkStrings(v: unknown, what: unknown): asserts v is readonly string[] {
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string'))
    throw new FdtError('BADVALUE', `${show(what)}: expected strings, got ${show(v)}`);
}

export function checkU32(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new FdtError('BADVALUE', `${show(what)} ${show(v)} is not a u32`);
  }
}

/**
 * UTF-8 bytes of a string list, each NUL-terminated (a single string is a
 * list of one).
 * @throws FdtError BADVALUE when a string holds a NUL.
 */
export function encodeStringList(list: readonly string[]): Uint8Array {
  checkStrings(list, 'string list');
  let len = 0;
  for (const s of list) {
    if (hasNul(s)) throw new FdtError('BADVALUE', `string ${JSON.stringify(s)} holds a NUL`);
    len += utf8Length(s) + 1;
  }
  const out = new Uint8Array(len);
  let off = 0;
  for (const s of list) {
    const n = utf8Length(s);
    writeUtf8(out, off, s, n);
    off += n + 1;
  }
  return out;
}

/**
 * Big-endian bytes of u32 cells.
 * @throws FdtError BADVALUE when a cell is not a u32.
 */
export function encodeCells(cells: ArrayLike<number>): Uint8Array {
  checkCells(cells, 'cells');
  const out = new Uint8Array(cells.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < cells.length; i++) {
    checkU32(cells[i]!, 'cell');
    view.setUint32(i * 4, cells[i]!);
  }
  return out;
}

/**
 * Big-endian bytes of one u64.
 * @throws FdtError BADVALUE when `v` is out of range.
 */
export function encodeU64(v: number | bigint): Uint8Array {
  checkU64(v, 'u64 value');
  const out = new Uint8Array(8);
  setBeU64(new DataView(out.buffer), 0, v);
  return out;
}
