/**
 * The full check and the walk on broken structure: every case gets the code
 * libfdt's fdt_check_full gives (interop-libfdt-reader.test.ts asks libfdt itself
 * about the same table), and every cut of a fixture is TRUNCATED.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Fdt, FdtError } from '../../src/fdt/index.js';
import { badCases, buildBlob, GOOD_TOKENS } from './_cases.js';
import { codeOf, dumpTree, FIXTURES, loadDtb } from './_support.js';

const full = (bytes: Uint8Array) => codeOf(() => Fdt.from(bytes).checkFull());

describe('checkFull', () => {
  for (const c of badCases()) {
    it(`${c.name}: ${c.code}`, () => {
      assert.equal(full(c.bytes), c.code);
    });
  }

  for (const name of FIXTURES) {
    it(`accepts ${name}`, () => {
      assert.equal(full(loadDtb(name)), 'ok');
    });
  }

  for (const name of ['basic', 'basic-v2', 'basic-v16', 'board', 'deep']) {
    it(`${name} cut at every byte is TRUNCATED`, () => {
      const dtb = loadDtb(name);
      for (let n = 0; n < dtb.length; n++) {
        assert.equal(full(dtb.slice(0, n)), 'TRUNCATED', `cut at ${n}`);
      }
    });
  }

  // From v17 the header bounds the strings block; before, totalsize does, so
  // a lower totalsize can also cut a name (BADOFFSET), as libfdt says.
  for (const name of ['basic', 'board', 'deep']) {
    it(`${name} with totalsize lowered to every value is TRUNCATED`, () => {
      const dtb = loadDtb(name);
      for (let n = 0; n < dtb.length; n++) {
        const b = dtb.slice();
        new DataView(b.buffer).setUint32(4, n);
        assert.equal(full(b), 'TRUNCATED', `totalsize ${n}`);
      }
    });
  }

  it('reports the cause in the message, code first', () => {
    const bytes = buildBlob({ tokens: [['begin', 'root'], ['end'], ['fin']] });
    assert.throws(
      () => Fdt.from(bytes).checkFull(),
      (e: unknown) => e instanceof FdtError && /^FDT_ERR_BADSTRUCTURE: .*root/.test(e.message),
    );
  });
});

describe('walking broken blobs', () => {
  it('a walk over an unbalanced tree stops without an error, as libfdt does', () => {
    const bytes = buildBlob({
      tokens: [['begin', ''], ['begin', 'a'], ['end'], ['fin']],
      strings: '',
    });
    const fdt = Fdt.from(bytes);
    assert.deepEqual(
      [...fdt.walk()].map((e) => e.name),
      ['', 'a'],
    );
  });

  it('a walk stops at an unknown tag with BADSTRUCTURE', () => {
    const bytes = buildBlob({ tokens: [['begin', ''], ['u32', 7], ['end'], ['fin']] });
    const fdt = Fdt.from(bytes);
    assert.equal(
      codeOf(() => [...fdt.walk()]),
      'BADSTRUCTURE',
    );
  });

  it('refuses nesting deeper than FDT_MAX_DEPTH in walk()', () => {
    const tokens: Parameters<typeof buildBlob>[0]['tokens'] = [['begin', '']];
    for (let i = 0; i < 300; i++) tokens.push(['begin', 'n']);
    for (let i = 0; i < 301; i++) tokens.push(['end']);
    tokens.push(['fin']);
    const fdt = Fdt.from(buildBlob({ tokens }));
    assert.equal(
      codeOf(() => fdt.checkFull()),
      'ok',
      'libfdt has no depth limit',
    );
    assert.equal(
      codeOf(() => [...fdt.walk()]),
      'BADSTRUCTURE',
    );
  });

  it('a property whose name offset is bad: lookups skip it, by-offset access fails', () => {
    const bytes = buildBlob({
      tokens: [['begin', ''], ['prop', 999, [1]], ['prop', 0, [0x61, 0]], ['end'], ['fin']],
      strings: 'compatible\0',
    });
    const fdt = Fdt.from(bytes);
    assert.equal(fdt.getString(0, 'compatible'), 'a');
    const first = fdt.firstPropertyOffset(0);
    assert.equal(
      codeOf(() => fdt.getPropertyByOffset(first)),
      'BADOFFSET',
    );
    assert.equal(
      codeOf(() => dumpTree(fdt)),
      'BADOFFSET',
    );
  });

  it('the minimal good tree reads back', () => {
    const fdt = Fdt.from(buildBlob({ tokens: GOOD_TOKENS, strings: 'compatible\0reg\0' }));
    assert.deepEqual(dumpTree(fdt), [
      '/ /',
      '  compatible = 7800',
      '  child /child',
      '    reg = 00000001',
    ]);
  });
});
