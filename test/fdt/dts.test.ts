import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  formatProperty,
  formatReservation,
  formatValue,
  guessValueType,
} from '../../src/fdt/dts.js';

const enc = new TextEncoder();
const bytes = (...b: number[]) => new Uint8Array(b);
/** A C string literal's bytes, NUL included. */
const cstr = (s: string) => enc.encode(`${s}\0`);

// Each expectation is what dtc 1.6.1 printed for the same bytes in a blob.
describe('guessValueType', () => {
  test('empty', () => assert.equal(guessValueType(bytes()), 'empty'));
  test('a NUL-terminated printable string', () =>
    assert.equal(guessValueType(cstr('hello')), 'string'));
  test('a lone NUL is bytes, not an empty string', () =>
    assert.equal(guessValueType(bytes(0)), 'bytes'));
  test('two strings with as many NULs as characters are a string', () =>
    assert.equal(guessValueType(cstr('a\0b')), 'string'));
  test('more NULs than characters: cells when a multiple of 4', () =>
    assert.equal(guessValueType(cstr('abc\0\0\0\0')), 'cells'));
  test('more NULs than characters, odd length: bytes', () =>
    assert.equal(guessValueType(cstr('ab\0\0')), 'bytes'));
  test('not NUL-terminated, multiple of 4: cells', () =>
    assert.equal(guessValueType(bytes(1, 2, 3, 4)), 'cells'));
  test('a byte above 0x7e is not a string', () =>
    assert.equal(guessValueType(bytes(0x41, 0x80, 0)), 'bytes'));
  test('DEL and ESC are not strings', () => {
    assert.equal(guessValueType(bytes(0x7f, 0)), 'bytes');
    assert.equal(guessValueType(bytes(0x1b, 0x61, 0)), 'bytes');
  });
  test('\\a..\\r count as string bytes', () => assert.equal(guessValueType(bytes(7, 0)), 'string'));
  test('a control byte outside \\a..\\r is not', () =>
    assert.equal(guessValueType(bytes(0x61, 1, 0)), 'bytes'));
});

describe('formatProperty', () => {
  const cases: [string, Uint8Array, string][] = [
    ['empty', bytes(), 'empty;'],
    ['s', cstr('hello'), 's = "hello";'],
    ['sl', cstr('a\0b'), 'sl = "a\\0b";'],
    ['z3', cstr('ab\0\0cd'), 'z3 = "ab\\0\\0cd";'],
    ['i', cstr('\0ab'), 'i = "\\0ab";'],
    ['emp', bytes(0), 'emp = [00];'],
    ['esc', cstr('q"b\\\t\n\r\x07\b\v\f!'), 'esc = "q\\"b\\\\\\t\\n\\r\\a\\b\\v\\f!";'],
    [
      'cells',
      bytes(0, 0, 0, 1, 0, 0, 0, 2, 0xde, 0xad, 0xbe, 0xef),
      'cells = <0x01 0x02 0xdeadbeef>;',
    ],
    ['b', bytes(1, 2, 3), 'b = [01 02 03];'],
    ['b4', bytes(1, 2, 3, 4), 'b4 = <0x1020304>;'],
    ['zz', bytes(0, 0, 0, 0), 'zz = <0x00>;'],
    ['u64', bytes(0, 0, 0, 1, 0x23, 0x45, 0x67, 0x89), 'u64 = <0x01 0x23456789>;'],
    ['hi', bytes(0x41, 0x80, 0), 'hi = [41 80 00];'],
    ['l', bytes(0xff), 'l = [ff];'],
    ['m', cstr('   '), 'm = "   ";'],
    ['o', cstr("'"), 'o = "\'";'],
    ['k', bytes(1, 0, 0, 0, 0, 0, 0, 0, 0), 'k = [01 00 00 00 00 00 00 00 00];'],
  ];
  for (const [name, value, want] of cases)
    test(want, () => assert.equal(formatProperty(name, value), want));
});

describe('formatReservation', () => {
  test('16 hex digits each, tab after the keyword', () =>
    assert.equal(
      formatReservation(0x12345678abcdn, 0x10n),
      '/memreserve/\t0x000012345678abcd 0x0000000000000010;',
    ));
  test('full 64-bit values', () =>
    assert.equal(
      formatReservation(0xffffffffffffffffn, 1n),
      '/memreserve/\t0xffffffffffffffff 0x0000000000000001;',
    ));
});

describe('formatValue properties', () => {
  test('cells: one 0x.. per 4 bytes, at least two hex digits', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 1, maxLength: 8 }),
        (cells) => {
          const v = new Uint8Array(cells.length * 4);
          const dv = new DataView(v.buffer);
          for (const [i, c] of cells.entries()) dv.setUint32(i * 4, c);
          // A value whose bytes happen to read as a string is printed as one.
          fc.pre(guessValueType(v) === 'cells');
          const want = `<${cells.map((c) => `0x${c.toString(16).padStart(2, '0')}`).join(' ')}>`;
          assert.equal(formatValue(v), want);
        },
      ),
    );
  });
  test('every value is one of the three shapes and never throws', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (v) => {
        const s = formatValue(v);
        if (v.length === 0) assert.equal(s, '');
        else
          assert.match(s, /^(".*"|<0x[0-9a-f]+( 0x[0-9a-f]+)*>|\[[0-9a-f]{2}( [0-9a-f]{2})*\])$/s);
      }),
    );
  });
});
