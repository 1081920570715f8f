import { show, text } from '../base/errors.js';
/**
 * Decoders for property values as the devicetree spec lays them out:
 * big-endian cells, NUL-terminated strings, `reg` as (address, size) pairs.
 * Each takes the value bytes (e.g. from `Fdt.getProp`) and a name for messages.
 */
import { valueText } from './_walk.js';
import { FdtError } from './errors.js';

/** An integer read from a blob: a number when exact (<= 2^53-1), else a bigint. */
export type FdtInt = number | bigint;

/** One `reg` entry decoded with the parent's #address-cells / #size-cells. */
export interface RegEntry {
  address: FdtInt;
  size: FdtInt;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** A number when exact, else the bigint. */
export function exactInt(v: bigint): FdtInt {
  if (typeof v !== 'bigint')
    throw new FdtError('BADVALUE', `exactInt takes a bigint, got ${show(v)}`);
  return v <= MAX_SAFE ? Number(v) : v;
}

/** @throws FdtError BADVALUE unless `v` is a Uint8Array and `name` a string. */
function checkValue(v: unknown, name: unknown): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array) || typeof name !== 'string')
    throw new FdtError('BADVALUE', `${text(name)}: a value is a Uint8Array, got ${show(v)}`);
}

function be32(v: Uint8Array, at: number): number {
  return ((v[at]! << 24) | (v[at + 1]! << 16) | (v[at + 2]! << 8) | v[at + 3]!) >>> 0;
}

/** `n` cells from `at`, as one integer. */
function cellsInt(v: Uint8Array, at: number, n: number): FdtInt {
  if (n === 1) return be32(v, at);
  let x = 0n;
  for (let i = 0; i < n; i++) x = (x << 32n) | BigInt(be32(v, at + i * 4));
  return exactInt(x);
}

/** @throws FdtError BADVALUE the value is not 4 bytes */
export function decodeU32(v: Uint8Array, name = 'value'): number {
  checkValue(v, name);
  if (v.length !== 4) throw new FdtError('BADVALUE', `${name} is ${v.length} bytes, not 4`);
  return be32(v, 0);
}

/** @throws FdtError BADVALUE the value is not 8 bytes */
export function decodeU64(v: Uint8Array, name = 'value'): FdtInt {
  checkValue(v, name);
  if (v.length !== 8) throw new FdtError('BADVALUE', `${name} is ${v.length} bytes, not 8`);
  return cellsInt(v, 0, 2);
}

/** @throws FdtError BADVALUE the length is not a multiple of 4 */
export function decodeCells(v: Uint8Array, name = 'value'): number[] {
  checkValue(v, name);
  if (v.length % 4 !== 0) throw new FdtError('BADVALUE', `${name} is ${v.length} bytes, not cells`);
  const out = new Array<number>(v.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = be32(v, i * 4);
  return out;
}

/** The first string of the value (UTF-8). @throws FdtError BADVALUE empty or not NUL-terminated */
export function decodeString(v: Uint8Array, name = 'value'): string {
  checkValue(v, name);
  if (v.length === 0 || v[v.length - 1] !== 0) {
    throw new FdtError('BADVALUE', `${name} is not a NUL-terminated string`);
  }
  return valueText(v, 0, v.indexOf(0));
}

/** Every string of the value; an empty value is []. @throws FdtError BADVALUE not NUL-terminated */
export function decodeStringList(v: Uint8Array, name = 'value'): string[] {
  checkValue(v, name);
  if (v.length > 0 && v[v.length - 1] !== 0) {
    throw new FdtError('BADVALUE', `${name} is not a NUL-terminated string list`);
  }
  const out: string[] = [];
  for (let i = 0; i < v.length; ) {
    const nul = v.indexOf(0, i);
    out.push(valueText(v, i, nul));
    i = nul + 1;
  }
  return out;
}

/**
 * `reg`-style (address, size) pairs of `addressCells` + `sizeCells` cells each.
 * @throws FdtError BADVALUE the length is not a whole number of entries
 */
export function decodeReg(v: Uint8Array, addressCells: number, sizeCells: number): RegEntry[] {
  checkValue(v, 'reg');
  for (const n of [addressCells, sizeCells]) {
    if (!Number.isInteger(n) || n < 0 || n > 4)
      throw new FdtError('BADNCELLS', `${show(n)} cells is not in 0..4`);
  }
  const stride = (addressCells + sizeCells) * 4;
  if (stride === 0 || v.length % stride !== 0) {
    throw new FdtError(
      'BADVALUE',
      `reg is ${v.length} bytes, not entries of ${addressCells}+${sizeCells} cells`,
    );
  }
  const out: RegEntry[] = [];
  for (let at = 0; at < v.length; at += stride) {
    out.push({
      address: cellsInt(v, at, addressCells),
      size: sizeCells === 0 ? 0 : cellsInt(v, at + addressCells * 4, sizeCells),
    });
  }
  return out;
}
