import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { hex, hexDigits } from '../../src/base/hex.js';
import { getSafeU64, getU64, setU64 } from '../../src/base/u64.js';

test('hex: 0x and the digits, padded when asked; hexDigits without the prefix', () => {
  assert.equal(hex(0x1f000), '0x1f000');
  assert.equal(hex(0xc0de, 16), '0x000000000000c0de');
  assert.equal(hex(2n ** 64n - 1n), '0xffffffffffffffff');
  assert.equal(hexDigits(0x2f, 2), '2f');
  assert.equal(hexDigits(7, 2), '07');
});

test('u64: every safe integer round-trips in both byte orders; past 2^53 getSafeU64 says so', () => {
  const v = new DataView(new ArrayBuffer(16));
  fc.assert(
    fc.property(fc.maxSafeNat(), fc.boolean(), (n, le) => {
      setU64(v, 4, n, le);
      assert.equal(getU64(v, 4, le), n);
      assert.equal(getSafeU64(v, 4, le), n);
      assert.equal(v.getBigUint64(4, le), BigInt(n), 'the same bytes as DataView writes');
    }),
  );
  setU64(v, 0, 2n ** 53n);
  assert.equal(getSafeU64(v, 0), undefined);
  assert.equal(getU64(v, 0), 2 ** 53);
  setU64(v, 0, 2n ** 64n - 1n, false);
  assert.equal(getSafeU64(v, 0, false), undefined);
  assert.ok(getU64(v, 0, false) > Number.MAX_SAFE_INTEGER);
});
