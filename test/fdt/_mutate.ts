/**
 * Deterministic families of broken blobs made from a good one: cuts,
 * header-field overwrites, token overwrites, unterminated names and random
 * byte damage. Used by the libfdt cross-check and the fuzz test.
 */
import { nextTag } from '../../src/fdt/_walk.js';
import { FDT_END, FDT_PROP } from '../../src/fdt/format.js';
import { Fdt } from '../../src/fdt/index.js';

/** A small seeded PRNG (mulberry32) so every run sees the same blobs. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function withU32(bytes: Uint8Array, at: number, value: number): Uint8Array {
  const out = bytes.slice();
  new DataView(out.buffer).setUint32(at, value >>> 0);
  return out;
}

/** Structure-block offsets of every tag of a good blob, with the tag. */
export function tagOffsets(bytes: Uint8Array): { off: number; tag: number; abs: number }[] {
  const fdt = Fdt.from(bytes);
  const s = fdt.s;
  const out: { off: number; tag: number; abs: number }[] = [];
  for (let off = 0; ; ) {
    const tag = nextTag(s, off);
    out.push({ off, tag, abs: s.base + off });
    if (tag === FDT_END || s.next < 0) break;
    off = s.next;
  }
  return out;
}

/** The buffer cut at every length, and totalsize lowered to every value. */
export function cuts(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let n = 0; n < bytes.length; n++) out.push(bytes.slice(0, n));
  for (let n = 0; n < bytes.length; n++) out.push(withU32(bytes, 4, n));
  return out;
}

/** Each header field set to values at and around every boundary. */
export function headerMangles(bytes: Uint8Array): Uint8Array[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = bytes.length;
  const out: Uint8Array[] = [];
  for (let field = 0; field < 10; field++) {
    const orig = dv.getUint32(field * 4);
    const values = [0, 1, 2, 3, 15, 16, 17, 18, 27, 28, 31, 32, 35, 36, 39, 40, 44, 48];
    values.push(len - 1, len, len + 1, 0x7fffffff, 0x80000000, 0xffffffff, 0xd00dfeed);
    for (const d of [-8, -4, -1, 1, 4, 8]) values.push(orig + d);
    for (const v of values) if (v >>> 0 !== orig) out.push(withU32(bytes, field * 4, v));
  }
  return out;
}

/** Every tag overwritten with each token and junk; every PROP's len and nameoff mangled. */
export function tokenMangles(bytes: Uint8Array): Uint8Array[] {
  const fdt = Fdt.from(bytes);
  const out: Uint8Array[] = [];
  for (const { tag, abs } of tagOffsets(bytes)) {
    for (const v of [0, 1, 2, 3, 4, 5, 9, 0xffffffff])
      if (v !== tag) out.push(withU32(bytes, abs, v));
    if (tag === FDT_PROP) {
      const len = new DataView(bytes.buffer, bytes.byteOffset).getUint32(abs + 4);
      for (const v of [len + 1, len + 4, len + 8, 0x7ffffff0, 0xfffffffc, fdt.sizeDtStruct]) {
        out.push(withU32(bytes, abs + 4, v));
      }
      const ss = fdt.sizeDtStrings;
      for (const v of [ss - 1, ss, ss + 1, 0x7fffffff, 0x80000000, 0xffffffff]) {
        out.push(withU32(bytes, abs + 8, v));
      }
    }
  }
  return out;
}

/** Every NUL in the structure and strings blocks turned into 'x', one at a time. */
export function unterminated(bytes: Uint8Array): Uint8Array[] {
  const fdt = Fdt.from(bytes);
  const out: Uint8Array[] = [];
  const ranges: [number, number][] = [
    [fdt.offDtStruct, fdt.offDtStruct + fdt.sizeDtStruct],
    [fdt.offDtStrings, fdt.offDtStrings + fdt.sizeDtStrings],
  ];
  for (const [a, b] of ranges) {
    for (let i = a; i < b; i++) {
      if (bytes[i] === 0 && (i % 4 !== 0 || i >= fdt.offDtStrings)) {
        const m = bytes.slice();
        m[i] = 0x78;
        out.push(m);
      }
    }
  }
  return out;
}

/** `count` blobs with 1..4 random bytes or u32s changed anywhere. */
export function randomDamage(bytes: Uint8Array, count: number, seed: number): Uint8Array[] {
  const rnd = prng(seed);
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const m = bytes.slice();
    const n = 1 + Math.floor(rnd() * 4);
    for (let k = 0; k < n; k++) {
      const at = Math.floor(rnd() * m.length);
      if (rnd() < 0.5 || at + 4 > m.length) m[at] = Math.floor(rnd() * 256);
      else new DataView(m.buffer).setUint32(at & ~3, Math.floor(rnd() * 2 ** 32));
    }
    out.push(m);
  }
  return out;
}
