import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { CRC32C_MODULE, crc32c, crc32cJs } from '../../src/memory/crc32c.js';

// WebAssembly opcodes of the crc module.
const BLOCK = 0x02;
const LOOP = 0x03;
const VOID = 0x40;
const END = 0x0b;
const BR = 0x0c;
const BR_IF = 0x0d;
const GET = 0x20;
const SET = 0x21;
const LOAD = 0x28;
const LOAD8_U = 0x2d;
const CONST = 0x41;
const GT_U = 0x4b;
const GE_U = 0x4f;
const ADD = 0x6a;
const AND = 0x71;
const XOR = 0x73;
const SHL = 0x74;
const SHR_U = 0x76;
const I32 = 0x7f;

/** LEB128 of a non-negative n, read the same signed (i32.const) or unsigned (lengths, offsets). */
function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0 || b & 0x40) b |= 0x80;
    out.push(b);
    if (n === 0 && b & 0x80) out.push(0);
  } while (n !== 0);
  return out;
}

/** Table k's entry for the byte `shift` bits up in local `v`, xored into the stack unless first. */
function entry(v: number, shift: number, table: number, first: boolean): number[] {
  const byte = [GET, v, ...(shift ? [CONST, shift, SHR_U] : [])];
  if (shift !== 24) byte.push(CONST, ...leb(0xff), AND);
  return [...byte, CONST, 2, SHL, LOAD, 2, ...leb(table * 1024), ...(first ? [] : [XOR])];
}

const Wasm = (
  globalThis as unknown as {
    WebAssembly: {
      Module: new (bytes: Uint8Array) => object;
      Instance: new (m: object) => { exports: Record<string, unknown> };
    };
  }
).WebAssembly;

/** Assembles the module src/memory/crc32c.ts describes. */
function assemble(): Uint8Array {
  const [c, p, n, end, lo, hi] = [0, 1, 2, 3, 4, 5];
  const code = [
    ...[1, 3, I32], // $end $lo $hi
    ...[GET, p, GET, n, ADD, SET, end],
    ...[BLOCK, VOID, LOOP, VOID],
    ...[GET, p, CONST, 8, ADD, GET, end, GT_U, BR_IF, 1],
    ...[GET, c, GET, p, LOAD, 2, 0, XOR, SET, lo],
    ...[GET, p, LOAD, 2, 4, SET, hi],
    ...entry(lo, 0, 7, true),
    ...entry(lo, 8, 6, false),
    ...entry(lo, 16, 5, false),
    ...entry(lo, 24, 4, false),
    ...entry(hi, 0, 3, false),
    ...entry(hi, 8, 2, false),
    ...entry(hi, 16, 1, false),
    ...entry(hi, 24, 0, false),
    ...[SET, c, GET, p, CONST, 8, ADD, SET, p, BR, 0, END, END],
    ...[BLOCK, VOID, LOOP, VOID],
    ...[GET, p, GET, end, GE_U, BR_IF, 1],
    ...[GET, c, GET, p, LOAD8_U, 0, 0, XOR, CONST, ...leb(0xff), AND, CONST, 2, SHL, LOAD, 2, 0],
    ...[GET, c, CONST, 8, SHR_U, XOR, SET, c],
    ...[GET, p, CONST, 1, ADD, SET, p, BR, 0, END, END],
    ...[GET, c, END],
  ];
  const section = (id: number, body: number[]) => [id, ...leb(body.length), ...body];
  const name = (s: string) => [s.length, ...Buffer.from(s, 'latin1')];
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, [1, 0x60, 3, I32, I32, I32, 1, I32]), // (i32, i32, i32) -> i32
    ...section(3, [1, 0]),
    ...section(5, [1, 0x00, 1]), // one 64 KiB page
    ...section(7, [2, ...name('crc'), 0x00, 0, ...name('mem'), 0x02, 0]),
    ...section(10, [1, ...leb(code.length), ...code]),
  ]);
}

test('crc32c: the check values of CRC-32C (RFC 3720 B.4)', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  assert.equal(crc32cJs(Buffer.from('123456789')), 0xe3069283);
});

test('crc32c: the embedded module is the one assembled here', () => {
  assert.deepEqual(Buffer.from(CRC32C_MODULE, 'base64'), Buffer.from(assemble()));
});

test('crc32c: the module agrees with the JS loop at every length and alignment', () => {
  const { exports } = new Wasm.Instance(new Wasm.Module(assemble()));
  const mem = new Uint8Array((exports.mem as { buffer: ArrayBuffer }).buffer);
  const run = exports.crc as (c: number, p: number, n: number) => number;
  // Tables as crc32c.ts lays them out, derived from the JS loop's one-byte results.
  const t = new Uint32Array(mem.buffer, 0, 2048);
  for (let b = 0; b < 256; b++) t[b] = ~crc32cJs(Uint8Array.of(b), 0xffffffff) >>> 0;
  for (let k = 1; k < 8; k++) {
    for (let b = 0; b < 256; b++)
      t[k * 256 + b] = t[t[(k - 1) * 256 + b] & 0xff] ^ (t[(k - 1) * 256 + b] >>> 8);
  }
  const data = randomBytes(300);
  for (let off = 0; off < 9; off++) {
    for (let n = 0; n + off <= data.length; n += 7) {
      const part = data.subarray(off, off + n);
      mem.set(part, 8192 + off);
      const seed = n * 2654435761;
      assert.equal(~run(~seed, 8192 + off, n) >>> 0, crc32cJs(part, seed), `off ${off} n ${n}`);
    }
  }
});

test('crc32c: any input, chained or in one call, shared memory or not, past a chunk', () => {
  const data = randomBytes(100 * 1024 + 5);
  const whole = crc32cJs(data);
  assert.equal(crc32c(data), whole);
  assert.equal(crc32c(data.subarray(40_000), crc32c(data.subarray(0, 40_000))), whole);
  const shared = new Uint8Array(new SharedArrayBuffer(data.length + 3), 3);
  shared.set(data);
  assert.equal(crc32c(shared), whole);
  for (let n = 0; n < 70; n++) {
    const part = data.subarray(n, n * 2 + 1);
    assert.equal(crc32c(part, n), crc32cJs(part, n));
  }
});
