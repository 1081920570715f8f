import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  formatProperty,
  formatReservation,
  formatValue,
  guessValueType,
  toDts,
} from '../../src/fdt/dts.js';
import { FdtError } from '../../src/fdt/errors.js';
import { FDT_MAX_DEPTH } from '../../src/fdt/format.js';
import { Fdt } from '../../src/fdt/read.js';
import { FdtWriter } from '../../src/fdt/write.js';

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

describe('toDts', () => {
  function blob(fill: (w: FdtWriter) => void, rsv: [number, number][] = []): Uint8Array {
    const w = new FdtWriter({ checkNames: false });
    for (const [a, s] of rsv) w.addReservation(a, s);
    w.finishReservations();
    w.beginNode('');
    fill(w);
    w.endNode();
    return w.finish();
  }
  const dts = (b: Uint8Array) => toDts(Fdt.from(b));

  test('header, reservations, tabs, an empty line before each subnode', () => {
    const b = blob(
      (w) => {
        w.propertyString('compatible', 'x,y');
        w.beginNode('a@1');
        w.propertyEmpty('e');
        w.beginNode('b');
        w.endNode();
        w.endNode();
        w.beginNode('c');
        w.endNode();
      },
      [[0x1000, 0x20]],
    );
    assert.equal(
      dts(b),
      [
        '/dts-v1/;',
        '',
        '/memreserve/\t0x0000000000001000 0x0000000000000020;',
        '/ {',
        '\tcompatible = "x,y";',
        '',
        '\ta@1 {',
        '\t\te;',
        '',
        '\t\tb {',
        '\t\t};',
        '\t};',
        '',
        '\tc {',
        '\t};',
        '};',
        '',
      ].join('\n'),
    );
  });

  test('a property after a subnode is printed with the other properties, as dtc does', () => {
    const b = blob((w) => {
      w.beginNode('n');
      w.endNode();
      w.propertyU32('late', 1);
    });
    assert.equal(dts(b), '/dts-v1/;\n\n/ {\n\tlate = <0x01>;\n\n\tn {\n\t};\n};\n');
  });

  test('a name property equal to the node name (before @) is dropped; another is kept', () => {
    const b = blob((w) => {
      w.beginNode('serial@10');
      w.propertyString('name', 'serial');
      w.endNode();
      w.beginNode('other');
      w.propertyString('label', 'x');
      w.propertyString('name', 'different');
      w.endNode();
    });
    const text = dts(b);
    assert.ok(!text.includes('name = "serial"'));
    assert.ok(text.includes('\t\tname = "different";\n'));
  });

  /** Raw bytes of a chain of `depth` nodes below the root: the writer stops at FDT_MAX_DEPTH, the full check does not. */
  function chain(depth: number): Uint8Array {
    const structSize = 8 + depth * 8 + (depth + 1) * 4 + 4;
    const total = 56 + structSize;
    const b = new Uint8Array(total);
    const dv = new DataView(b.buffer);
    const header = [0xd00dfeed, total, 56, total, 40, 17, 16, 0, 0, structSize];
    for (const [i, v] of header.entries()) dv.setUint32(i * 4, v);
    let p = 56;
    dv.setUint32(p, 1); // the root: BEGIN_NODE and an empty name
    p += 8;
    for (let i = 0; i < depth; i++, p += 8) {
      dv.setUint32(p, 1);
      b[p + 4] = 0x6e; // "n"
    }
    for (let i = 0; i <= depth; i++, p += 4) dv.setUint32(p, 2);
    dv.setUint32(p, 9);
    return b;
  }

  test('FDT_MAX_DEPTH levels below the root print; one more is BADSTRUCTURE', () => {
    const text = toDts(Fdt.from(chain(FDT_MAX_DEPTH)));
    const lines = text.split('\n');
    assert.equal(lines.filter((l) => l.endsWith('n {')).length, FDT_MAX_DEPTH);
    assert.equal(lines[lines.length - 2], '};');
    assert.ok(lines.includes(`${'\t'.repeat(FDT_MAX_DEPTH)}n {`));
    const deeper = Fdt.from(chain(FDT_MAX_DEPTH + 1));
    deeper.checkFull();
    assert.throws(
      () => toDts(deeper),
      (e: unknown) => e instanceof FdtError && e.code === 'BADSTRUCTURE',
    );
  });

  test('a broken blob raises the full check error, never a partial print', () => {
    const good = blob((w) => w.propertyU32('a', 1));
    const cut = new Uint8Array(good);
    const dv = new DataView(cut.buffer);
    // Make the root's END_NODE an unknown tag.
    const structOff = dv.getUint32(8);
    const structSize = dv.getUint32(36);
    dv.setUint32(structOff + structSize - 8, 0x55);
    assert.throws(
      () => toDts(Fdt.from(cut)),
      (e: unknown) => e instanceof FdtError && e.code === 'BADSTRUCTURE',
    );
  });
});
