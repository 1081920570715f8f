/**
 * The header check: each mangled field gets libfdt's code (fdt_check_header,
 * plus the buffer-length checks of fdt_check_full), and the fields read back.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  HDR_LAST_COMP_VERSION,
  HDR_MAGIC,
  HDR_OFF_DT_STRINGS,
  HDR_OFF_DT_STRUCT,
  HDR_OFF_MEM_RSVMAP,
  HDR_SIZE_DT_STRINGS,
  HDR_SIZE_DT_STRUCT,
  HDR_TOTALSIZE,
  HDR_VERSION,
} from '../../src/fdt/format.js';
import { checkHeader, checkHeaderFields } from '../../src/fdt/header.js';
import { Fdt } from '../../src/fdt/index.js';
import { withU32 } from './_mutate.js';
import { codeOf, loadDtb } from './_support.js';

const basic = loadDtb('basic');
const head = (b: Uint8Array) => codeOf(() => checkHeader(b));
const set = (field: number, v: number) => withU32(basic, field, v);

describe('header fields', () => {
  it('reads what fdtdump prints for basic.dtb', () => {
    const f = Fdt.from(basic);
    assert.deepEqual(
      [f.magic, f.totalSize, f.offDtStruct, f.offDtStrings, f.offMemRsvmap, f.version],
      [0xd00dfeed, 1894, 0x68, 0x60c, 0x28, 17],
    );
    assert.deepEqual(
      [f.lastCompVersion, f.bootCpuidPhys, f.sizeDtStrings, f.sizeDtStruct],
      [16, 0, 0x15a, 0x5a4],
    );
  });

  it('reads a v2 header (32 bytes, rsvmap right after it)', () => {
    const f = Fdt.from(loadDtb('basic-v2'));
    assert.deepEqual(
      [f.version, f.lastCompVersion, f.offMemRsvmap, f.sizeDtStruct],
      [2, 1, 0x20, 0],
    );
  });

  it('reads a v16 header (36 bytes)', () => {
    const f = Fdt.from(loadDtb('basic-v16'));
    assert.deepEqual(
      [f.version, f.lastCompVersion, f.offMemRsvmap, f.sizeDtStruct],
      [16, 16, 0x28, 0],
    );
  });
});

describe('checkHeader', () => {
  it('accepts every fixture', () => {
    for (const n of ['basic', 'basic-v2', 'basic-v3', 'basic-v16', 'board', 'deep', 'wide']) {
      assert.equal(head(loadDtb(n)), 'ok', n);
    }
  });

  it('BADMAGIC', () => {
    assert.equal(head(set(HDR_MAGIC, 0xd00dfeee)), 'BADMAGIC');
    assert.equal(
      head(set(HDR_MAGIC, 0x2ff20112)),
      'BADMAGIC',
      'the sequential-write magic is not a finished blob',
    );
  });

  it('BADVERSION for version < 2, last_comp_version > 17, version < last_comp_version', () => {
    assert.equal(head(set(HDR_VERSION, 1)), 'BADVERSION');
    assert.equal(head(set(HDR_VERSION, 0)), 'BADVERSION');
    assert.equal(head(set(HDR_LAST_COMP_VERSION, 18)), 'BADVERSION');
    assert.equal(head(withU32(set(HDR_VERSION, 16), HDR_LAST_COMP_VERSION, 17)), 'BADVERSION');
    assert.equal(
      head(set(HDR_VERSION, 18)),
      'ok',
      'a newer version that is compatible with 16 reads',
    );
  });

  it('TRUNCATED for totalsize below the header or above 2^31-1', () => {
    assert.equal(head(set(HDR_TOTALSIZE, 39)), 'TRUNCATED');
    assert.equal(head(set(HDR_TOTALSIZE, 0x80000000)), 'TRUNCATED');
    assert.equal(head(set(HDR_TOTALSIZE, 0xffffffff)), 'TRUNCATED');
  });

  it('TRUNCATED for a buffer shorter than totalsize, or than the header', () => {
    assert.equal(head(basic.slice(0, basic.length - 1)), 'TRUNCATED');
    assert.equal(head(basic.slice(0, 27)), 'TRUNCATED');
    assert.equal(head(basic.slice(0, 39)), 'TRUNCATED');
    assert.equal(head(new Uint8Array(0)), 'TRUNCATED');
  });

  it('TRUNCATED for blocks outside [header end, totalsize]', () => {
    assert.equal(head(set(HDR_OFF_MEM_RSVMAP, 39)), 'TRUNCATED');
    assert.equal(head(set(HDR_OFF_MEM_RSVMAP, 1895)), 'TRUNCATED');
    assert.equal(head(set(HDR_OFF_MEM_RSVMAP, 1894)), 'ok', 'an offset may equal totalsize');
    assert.equal(head(set(HDR_OFF_DT_STRUCT, 20)), 'TRUNCATED');
    assert.equal(head(set(HDR_SIZE_DT_STRUCT, 0x5a4 + 1000)), 'TRUNCATED');
    assert.equal(head(set(HDR_SIZE_DT_STRUCT, 0xffffffff)), 'TRUNCATED');
    assert.equal(head(set(HDR_OFF_DT_STRINGS, 0x60c + 1)), 'TRUNCATED');
    assert.equal(head(set(HDR_SIZE_DT_STRINGS, 0x15b)), 'TRUNCATED');
  });

  it('before v17 only the structure block offset is bounded (no size_dt_struct)', () => {
    const v16 = loadDtb('basic-v16');
    assert.equal(head(withU32(v16, HDR_SIZE_DT_STRUCT, 0xffffffff)), 'ok');
    assert.equal(head(withU32(v16, HDR_OFF_DT_STRUCT, v16.length + 1)), 'TRUNCATED');
  });

  it('accepts overlapping blocks and any block order, as libfdt does', () => {
    assert.equal(head(set(HDR_OFF_DT_STRINGS, 0x68)), 'ok');
    assert.equal(head(set(HDR_OFF_MEM_RSVMAP, 0x68)), 'ok');
  });

  it('ALIGNMENT for bytes that do not start 8-byte aligned', () => {
    const buf = new Uint8Array(basic.length + 8);
    buf.set(basic, 4);
    assert.equal(head(buf.subarray(4, 4 + basic.length)), 'ALIGNMENT');
    buf.copyWithin(8, 4, 4 + basic.length);
    assert.equal(head(buf.subarray(8, 8 + basic.length)), 'ok');
  });

  it('checkHeaderFields ignores how long the buffer is beyond the header', () => {
    assert.equal(
      codeOf(() => checkHeaderFields(basic.slice(0, 40))),
      'ok',
    );
    assert.equal(
      codeOf(() => checkHeader(basic.slice(0, 40))),
      'TRUNCATED',
    );
  });

  it('Fdt.from runs the same check', () => {
    assert.equal(
      codeOf(() => Fdt.from(set(HDR_MAGIC, 0))),
      'BADMAGIC',
    );
    assert.equal(
      codeOf(() => Fdt.from(basic.slice(0, 100))),
      'TRUNCATED',
    );
  });
});
