/**
 * Helpers for the FDT reader tests: fixtures, a canonical dump of what the
 * reader sees, the same walk printed the way the libfdt oracle prints it, and
 * a re-emitter that lays a blob out again in another block order, version or
 * with NOPs.
 */
import { readFileSync } from 'node:fs';
import { nextNode, nextTag } from '../../src/fdt/_walk.js';
import { FDT_ERR } from '../../src/fdt/errors.js';
import { FDT_BEGIN_NODE, FDT_END, FDT_END_NODE, FDT_NOP } from '../../src/fdt/format.js';
import { checkHeaderFields } from '../../src/fdt/header.js';
import { Fdt, FdtError, type FdtErrorCode } from '../../src/fdt/index.js';
import { fixture } from '../_helpers/paths.js';

/** Every committed .dtb fixture, by name. */
export const FIXTURES = ['basic', 'basic-v2', 'basic-v3', 'basic-v16', 'board', 'deep', 'wide'];
/** Fixtures in the v16/v17 structure format (the re-emitter's input). */
export const MODERN_FIXTURES = ['basic', 'basic-v16', 'board', 'deep', 'wide'];

/** A fixture's bytes in a fresh, 8-aligned buffer the test may mutate. */
export function loadDtb(name: string): Uint8Array {
  return new Uint8Array(readFileSync(fixture('fdt', `${name}.dtb`)));
}

/** The code of the FdtError `fn` throws; fails on any other outcome. */
export function codeOf(fn: () => unknown): FdtErrorCode | 'ok' {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (e instanceof FdtError) return e.code;
    throw e;
  }
}

function hex(v: Uint8Array): string {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex');
}

/** Everything the reader sees, without offsets: reservations, nodes, properties. */
export function dumpTree(fdt: Fdt): string[] {
  const out = fdt.reservations().map((r) => `rsv ${r.address} ${r.size}`);
  for (const { offset, depth, name } of fdt.walk()) {
    out.push(`${'  '.repeat(depth)}${name || '/'} ${fdt.getPath(offset)}`);
    for (const p of fdt.propertyOffsets(offset)) {
      const { name: pn, value } = fdt.getPropertyByOffset(p);
      out.push(`${'  '.repeat(depth + 1)}${pn} = ${hex(value)}`);
    }
  }
  return out;
}

const neg = (e: unknown): number => {
  if (e instanceof FdtError) return -FDT_ERR[e.code];
  throw e;
};

/**
 * Our reader's answers printed exactly as test/fdt/libfdt-oracle.c prints
 * libfdt's: header check, full check, then the node/property walk.
 */
export function describeLikeOracle(bytes: Uint8Array): string {
  let hdr = 99;
  if (bytes.length >= 40) {
    try {
      checkHeaderFields(bytes);
      hdr = 0;
    } catch (e) {
      hdr = neg(e);
    }
  }
  let fdt: Fdt | undefined;
  let full = 0;
  try {
    fdt = Fdt.from(bytes);
    fdt.checkFull();
  } catch (e) {
    full = neg(e);
  }
  let line = `H${hdr} F${full}`;
  if (hdr !== 0 || !fdt) return line;
  const depth = new Int32Array(1);
  let off = 0;
  for (let steps = 0; off >= 0 && depth[0]! >= 0 && steps < 100000; steps++) {
    let name: string;
    try {
      name = Buffer.from(fdt.getName(off), 'latin1').toString('hex');
    } catch (e) {
      name = `!${neg(e)}`;
    }
    line += ` N${off}:${depth[0]}:${name}`;
    let p: number;
    try {
      for (p = fdt.firstPropertyOffset(off); p >= 0; p = fdt.nextPropertyOffset(p)) {
        try {
          const { name: pn, value } = fdt.getPropertyByOffset(p);
          line += ` P${p}:${Buffer.from(pn, 'latin1').toString('hex')}:${value.length}`;
        } catch (e) {
          line += ` P${p}:!${neg(e)}`;
        }
      }
    } catch (e) {
      line += ` p${neg(e)}`;
    }
    off = nextNode(fdt.s, off, depth);
  }
  return `${line} E${off}:${depth[0]}`;
}

/** The three blocks after the header, in the order they are laid out. */
export type Block = 'rsvmap' | 'struct' | 'strings';
export const ALL_ORDERS: Block[][] = [
  ['rsvmap', 'struct', 'strings'],
  ['rsvmap', 'strings', 'struct'],
  ['struct', 'rsvmap', 'strings'],
  ['struct', 'strings', 'rsvmap'],
  ['strings', 'rsvmap', 'struct'],
  ['strings', 'struct', 'rsvmap'],
];

export interface Layout {
  order: Block[];
  version: 16 | 17;
  /** Put a NOP before every Nth tag (0: none). */
  nopEvery: number;
}

/**
 * Parse a v16/v17 blob and emit it again with the given layout: the blocks in
 * `order` (rsvmap 8-aligned, struct 4-aligned), header of 36 bytes for v16
 * and 40 for v17, NOP tokens sprinkled between tags.
 */
export function relayout(bytes: Uint8Array, layout: Layout): Uint8Array {
  const fdt = Fdt.from(bytes);
  fdt.checkFull();
  const s = fdt.s;
  const tags: Uint8Array[] = [];
  const nop = new Uint8Array([0, 0, 0, FDT_NOP]);
  // NOPs anywhere but before the root (libfdt's lookups start at offset 0)
  // and between the root's END_NODE and END (its full check refuses those).
  let depth = 0;
  let rootClosed = false;
  for (let off = 0, n = 0; ; n++) {
    const tag = nextTag(s, off);
    if (layout.nopEvery > 0 && n > 0 && n % layout.nopEvery === 0 && !rootClosed) tags.push(nop);
    tags.push(bytes.subarray(s.base + off, s.base + s.next));
    if (tag === FDT_BEGIN_NODE) depth++;
    if (tag === FDT_END_NODE && --depth === 0) rootClosed = true;
    if (tag === FDT_END) break;
    off = s.next;
  }
  const struct = concat(tags);
  const strings = bytes.subarray(fdt.offDtStrings, fdt.offDtStrings + fdt.sizeDtStrings);
  const rsv = fdt.reservations();
  const rsvmap = new Uint8Array((rsv.length + 1) * 16);
  const rdv = new DataView(rsvmap.buffer);
  rsv.forEach((r, i) => {
    rdv.setBigUint64(i * 16, BigInt(r.address));
    rdv.setBigUint64(i * 16 + 8, BigInt(r.size));
  });
  const blocks = { rsvmap, struct, strings };
  const align = { rsvmap: 8, struct: 4, strings: 1 };
  const at = { rsvmap: 0, struct: 0, strings: 0 };
  let pos = layout.version === 17 ? 40 : 36;
  for (const b of layout.order) {
    pos = (pos + align[b] - 1) & ~(align[b] - 1);
    at[b] = pos;
    pos += blocks[b].length;
  }
  const out = new Uint8Array(pos);
  const dv = new DataView(out.buffer);
  for (const b of layout.order) out.set(blocks[b], at[b]);
  const header = [
    0xd00dfeed,
    pos,
    at.struct,
    at.strings,
    at.rsvmap,
    layout.version,
    16,
    fdt.bootCpuidPhys,
    strings.length,
    struct.length,
  ];
  header.slice(0, layout.version === 17 ? 10 : 9).forEach((v, i) => {
    dv.setUint32(i * 4, v);
  });
  return out;
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}
