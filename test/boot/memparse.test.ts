import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BootError } from '../../src/boot/errors.js';
import { memparse, memparseExact } from '../../src/boot/memparse.js';

function throwsEinval(fn: () => unknown, param?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof BootError);
    assert.equal(e.code, 'EINVAL');
    assert.equal(e.param, param);
    return true;
  });
}

test('bases: decimal, hex with 0x, octal with a leading 0', () => {
  assert.equal(memparseExact('4096'), 4096);
  assert.equal(memparseExact('0x1000'), 4096);
  assert.equal(memparseExact('0X1f'), 31);
  assert.equal(memparseExact('010'), 8);
  assert.equal(memparseExact('0'), 0);
});

test('suffixes K..E shift by 10..60, either case', () => {
  assert.equal(memparseExact('1K'), 1024);
  assert.equal(memparseExact('1k'), 1024);
  assert.equal(memparseExact('3M'), 3 * 2 ** 20);
  assert.equal(memparseExact('2G'), 2 ** 31);
  assert.equal(memparseExact('1T'), 2 ** 40);
  assert.equal(memparseExact('4p'), 2 ** 52);
  assert.equal(memparseExact('0x10M'), 16 * 2 ** 20);
  assert.equal(memparseExact('010K'), 8 * 1024);
});

test('the rest after number and suffix is returned', () => {
  assert.deepEqual(memparse('64M@1G'), { value: 64 * 2 ** 20, rest: '@1G' });
  assert.deepEqual(memparse('16M,512M'), { value: 16 * 2 ** 20, rest: ',512M' });
  assert.deepEqual(memparse('12xyz'), { value: 12, rest: 'xyz' });
  // The octal digits stop at 8: the rest begins there, as the kernel's simple_strtoull.
  assert.deepEqual(memparse('08'), { value: 0, rest: '8' });
});

test('no number, or trailing text for memparseExact, is EINVAL naming the parameter', () => {
  throwsEinval(() => memparse('', 'mem'), 'mem');
  throwsEinval(() => memparse('K', 'mem'), 'mem');
  throwsEinval(() => memparse('-1'));
  throwsEinval(() => memparseExact('1G@', 'crashkernel'), 'crashkernel');
  throwsEinval(() => memparseExact('1 G'));
});

test('values past 2^53 - 1 are refused, 2^53 - 1 itself is fine', () => {
  assert.equal(memparseExact('0x1fffffffffffff'), Number.MAX_SAFE_INTEGER);
  throwsEinval(() => memparseExact('0x20000000000000'));
  throwsEinval(() => memparseExact('1E'), undefined);
  throwsEinval(() => memparseExact('8P', 'memmap'), 'memmap');
  throwsEinval(() => memparseExact('99999999999999999999999'));
});
