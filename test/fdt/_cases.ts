/**
 * Hand-built blobs, each broken in one way, with the code libfdt's
 * fdt_check_full gives it. check.test.ts holds our reader to these codes;
 * interop-libfdt-reader.test.ts holds libfdt itself to them, so the table cannot drift.
 */
import type { FdtErrorCode } from '../../src/fdt/index.js';

export type Token =
  | ['begin', string]
  | ['beginRaw', number[]]
  | ['end']
  | ['prop', number, number[]]
  | ['nop']
  | ['fin']
  | ['u32', number];

export interface BlobSpec {
  tokens: Token[];
  strings?: string;
  rsv?: [bigint, bigint][];
  /** Leave out the reservation terminator. */
  noRsvEnd?: boolean;
  version?: number;
}

/** Lay out header (40 bytes), rsvmap, struct, strings as dtc does. */
export function buildBlob(spec: BlobSpec): Uint8Array {
  const struct: number[] = [];
  const u32 = (v: number) =>
    struct.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  const pad = () => {
    while (struct.length % 4) struct.push(0);
  };
  for (const t of spec.tokens) {
    switch (t[0]) {
      case 'begin':
        u32(1);
        for (const c of Buffer.from(t[1], 'latin1')) struct.push(c);
        struct.push(0);
        pad();
        break;
      case 'beginRaw':
        u32(1);
        struct.push(...t[1]);
        pad();
        break;
      case 'end':
        u32(2);
        break;
      case 'prop':
        u32(3);
        u32(t[2].length);
        u32(t[1]);
        struct.push(...t[2]);
        pad();
        break;
      case 'nop':
        u32(4);
        break;
      case 'fin':
        u32(9);
        break;
      case 'u32':
        u32(t[1]);
        break;
    }
  }
  const strings = Buffer.from(spec.strings ?? '', 'latin1');
  const rsv = spec.rsv ?? [];
  const rsvLen = (rsv.length + (spec.noRsvEnd ? 0 : 1)) * 16;
  const offRsv = 40;
  const offStruct = offRsv + rsvLen;
  const offStrings = offStruct + struct.length;
  const total = offStrings + strings.length;
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  const header = [0xd00dfeed, total, offStruct, offStrings, offRsv, spec.version ?? 17, 16, 0];
  header.push(strings.length, struct.length);
  header.forEach((v, i) => {
    dv.setUint32(i * 4, v);
  });
  rsv.forEach(([a, s], i) => {
    dv.setBigUint64(offRsv + i * 16, a);
    dv.setBigUint64(offRsv + i * 16 + 8, s);
  });
  out.set(struct, offStruct);
  out.set(strings, offStrings);
  return out;
}

const STRINGS = 'compatible\0reg\0';
const ok = (tokens: Token[], extra: Partial<BlobSpec> = {}): Uint8Array =>
  buildBlob({ tokens, strings: STRINGS, ...extra });

/** A minimal good tree: / { compatible = "x"; child { reg = <1>; }; }. */
export const GOOD_TOKENS: Token[] = [
  ['begin', ''],
  ['prop', 0, [0x78, 0]],
  ['begin', 'child'],
  ['prop', 11, [0, 0, 0, 1]],
  ['end'],
  ['end'],
  ['fin'],
];

export interface BadCase {
  name: string;
  bytes: Uint8Array;
  /** fdt_check_full's answer ('ok' when libfdt accepts the blob). */
  code: FdtErrorCode | 'ok';
}

export function badCases(): BadCase[] {
  const g = GOOD_TOKENS;
  return [
    { name: 'a good minimal tree', bytes: ok(g), code: 'ok' },
    {
      name: 'reservation map without terminator',
      bytes: ok(g, { noRsvEnd: true, rsv: [[1n, 2n]] }),
      code: 'TRUNCATED',
    },
    {
      name: 'unterminated node name at the block end',
      bytes: ok([
        ['begin', ''],
        ['beginRaw', [0x61, 0x62, 0x63, 0x64]],
      ]),
      code: 'BADSTRUCTURE',
    },
    {
      name: 'unterminated property name in strings',
      bytes: buildBlob({ tokens: g, strings: 'compatible\0reg' }),
      code: 'TRUNCATED',
    },
    {
      name: 'name offset past the strings block',
      bytes: ok([['begin', ''], ['prop', 100, []], ['end'], ['fin']]),
      code: 'BADOFFSET',
    },
    {
      name: 'name offset 2^31',
      bytes: ok([['begin', ''], ['prop', 0x80000000, []], ['end'], ['fin']]),
      code: 'BADOFFSET',
    },
    {
      name: 'property value past the block',
      bytes: ok([['begin', ''], ['u32', 3], ['u32', 64], ['u32', 0], ['end'], ['fin']]),
      code: 'BADSTRUCTURE',
    },
    {
      name: 'missing END_NODE',
      bytes: ok([['begin', ''], ['begin', 'a'], ['end'], ['fin']]),
      code: 'BADSTRUCTURE',
    },
    {
      name: 'extra END_NODE',
      bytes: ok([['begin', ''], ['end'], ['end'], ['fin']]),
      code: 'BADSTRUCTURE',
    },
    { name: 'END_NODE first', bytes: ok([['end'], ['fin']]), code: 'BADSTRUCTURE' },
    { name: 'no END token', bytes: ok([['begin', ''], ['end']]), code: 'TRUNCATED' },
    {
      name: 'two roots',
      bytes: ok([['begin', ''], ['end'], ['begin', ''], ['end'], ['fin']]),
      code: 'BADSTRUCTURE',
    },
    {
      name: 'a named root',
      bytes: ok([['begin', 'root'], ['end'], ['fin']]),
      code: 'BADSTRUCTURE',
    },
    {
      name: 'a property after the root closes',
      bytes: ok([['begin', ''], ['end'], ['prop', 0, []], ['fin']]),
      code: 'BADSTRUCTURE',
    },
    {
      name: 'a NOP after the root closes',
      bytes: ok([['begin', ''], ['end'], ['nop'], ['fin']]),
      code: 'BADSTRUCTURE',
    },
    {
      name: 'NOPs before and inside the root',
      bytes: ok([['nop'], ['begin', ''], ['nop'], ['prop', 0, []], ['nop'], ['end'], ['fin']]),
      code: 'ok',
    },
    {
      name: 'a property after END is never read',
      bytes: ok([['begin', ''], ['end'], ['fin'], ['prop', 0, []]]),
      code: 'ok',
    },
    {
      name: 'an unknown tag',
      bytes: ok([['begin', ''], ['u32', 5], ['end'], ['fin']]),
      code: 'BADSTRUCTURE',
    },
    {
      name: 'node name with bad characters (libfdt does not check)',
      bytes: ok([['begin', ''], ['begin', 'a b$%'], ['end'], ['end'], ['fin']]),
      code: 'ok',
    },
    {
      name: 'duplicate names (libfdt does not check)',
      bytes: ok([
        ['begin', ''],
        ['begin', 'a'],
        ['end'],
        ['begin', 'a'],
        ['end'],
        ['end'],
        ['fin'],
      ]),
      code: 'ok',
    },
    {
      name: 'a property after a subnode (libfdt does not check)',
      bytes: ok([['begin', ''], ['begin', 'a'], ['end'], ['prop', 0, []], ['end'], ['fin']]),
      code: 'ok',
    },
    { name: 'an empty structure block', bytes: ok([]), code: 'TRUNCATED' },
  ];
}
