/** Value decoders: cells, u64 exactness at 2^53, strings, reg with 0..4 cells. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeCells,
  decodeReg,
  decodeString,
  decodeStringList,
  decodeU32,
  decodeU64,
} from '../../src/fdt/index.js';
import { codeOf } from './_support.js';

const b = (...x: number[]) => new Uint8Array(x);

describe('value decoders', () => {
  it('u64 is a number up to 2^53-1 and a bigint from 2^53', () => {
    assert.equal(
      decodeU64(b(0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)),
      Number.MAX_SAFE_INTEGER,
    );
    assert.equal(decodeU64(b(0, 0x20, 0, 0, 0, 0, 0, 0)), 2n ** 53n);
    assert.equal(decodeU64(b(0, 0, 0, 0, 0, 0, 0, 0)), 0);
    assert.equal(
      codeOf(() => decodeU64(b(1, 2, 3, 4))),
      'BADVALUE',
    );
  });

  it('u32 and cells', () => {
    assert.equal(decodeU32(b(0xff, 0xff, 0xff, 0xfe)), 0xfffffffe);
    assert.equal(
      codeOf(() => decodeU32(b())),
      'BADVALUE',
    );
    assert.deepEqual(decodeCells(b(0, 0, 0, 1, 0x80, 0, 0, 0)), [1, 0x80000000]);
    assert.equal(
      codeOf(() => decodeCells(b(0, 0, 0))),
      'BADVALUE',
    );
  });

  it('strings: the first of several, UTF-8, NUL-terminated only', () => {
    assert.equal(decodeString(b(0x61, 0, 0x62, 0)), 'a');
    assert.equal(decodeString(b(0xe2, 0x82, 0xac, 0)), '€');
    assert.equal(decodeString(b(0)), '');
    assert.equal(
      codeOf(() => decodeString(b(0x61))),
      'BADVALUE',
    );
    assert.deepEqual(decodeStringList(b(0x61, 0, 0, 0x62, 0)), ['a', '', 'b']);
    assert.deepEqual(decodeStringList(b()), []);
    assert.equal(
      codeOf(() => decodeStringList(b(0x61, 0, 0x62))),
      'BADVALUE',
    );
  });

  it('reg with 1..4 address cells and 0..4 size cells', () => {
    assert.deepEqual(decodeReg(b(0, 0, 0, 5), 1, 0), [{ address: 5, size: 0 }]);
    const three = decodeReg(b(0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 3), 3, 1);
    assert.deepEqual(three, [{ address: 2n ** 64n + 2n, size: 3 }]);
    const wide = new Uint8Array(16).fill(0xff);
    assert.deepEqual(decodeReg(wide, 2, 2), [{ address: 2n ** 64n - 1n, size: 2n ** 64n - 1n }]);
    assert.equal(
      codeOf(() => decodeReg(b(0, 0, 0, 1), 2, 1)),
      'BADVALUE',
    );
    assert.deepEqual(decodeReg(b(), 2, 1), []);
  });
});
