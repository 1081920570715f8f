import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  MEMBLOCK_ALLOC_ACCESSIBLE,
  MEMBLOCK_KHO_SCRATCH,
  MEMBLOCK_RSRV_NOINIT,
  Memblock,
} from '../../src/boot/memblock.js';
import type { RegionList } from '../../src/boot/memblock-regions.js';

/** A per-page model: -1 for "not there", else the page's flags. */
const PAGES = 48;
const P = 4096;

const range = fc.tuple(fc.nat(PAGES - 1), fc.integer({ min: 1, max: 16 }));
const op = fc.oneof(
  fc.record({ kind: fc.constant('add' as const), r: range, scratch: fc.boolean() }),
  fc.record({ kind: fc.constant('remove' as const), r: range }),
  fc.record({ kind: fc.constant('scratch' as const), r: range, set: fc.boolean() }),
  fc.record({ kind: fc.constant('reserve' as const), r: range, noinit: fc.boolean() }),
  fc.record({ kind: fc.constant('free' as const), r: range }),
  fc.record({ kind: fc.constant('noinit' as const), r: range }),
  fc.record({
    kind: fc.constant('alloc' as const),
    pages: fc.integer({ min: 1, max: 8 }),
    alignShift: fc.integer({ min: 0, max: 3 }),
    start: fc.nat(PAGES),
    end: fc.oneof(fc.constant(MEMBLOCK_ALLOC_ACCESSIBLE), fc.integer({ min: 1, max: PAGES + 4 })),
    bottomUp: fc.boolean(),
    scratchOnly: fc.boolean(),
  }),
);

function clip([b, n]: [number, number]): [number, number] {
  return [b, Math.min(n, PAGES + 4 - b)];
}

/** Region list as pages; also checks the list is sorted, disjoint and merged. */
function pagesOf(list: RegionList): Int32Array {
  const out = new Int32Array(PAGES + 8).fill(-1);
  let prev: { end: number; flags: number } | undefined;
  for (const r of list) {
    assert.ok(r.size > 0 && r.base % P === 0 && r.size % P === 0);
    if (prev) {
      assert.ok(r.base >= prev.end, 'sorted and disjoint');
      assert.ok(
        !(r.base === prev.end && r.flags === prev.flags),
        'touching equal-flag regions are merged',
      );
    }
    for (let p = r.base / P; p < (r.base + r.size) / P; p++) out[p] = r.flags;
    prev = { end: r.base + r.size, flags: r.flags };
  }
  return out;
}

test('property: memblock agrees with a per-page model over random histories', () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
      const mb = new Memblock();
      const mem = new Int32Array(PAGES + 8).fill(-1);
      const res = new Int32Array(PAGES + 8).fill(-1);
      const allocated: Array<[number, number]> = [];
      for (const o of ops) {
        if (o.kind === 'alloc') {
          const size = o.pages * P;
          const align = 2 ** o.alignShift * P;
          mb.setBottomUp(o.bottomUp);
          mb.setScratchOnly(o.scratchOnly);
          const got = mb.tryAllocRange(size, align, o.start * P, o.end * P);
          // Brute force: every aligned candidate whose pages are free memory.
          const lo = Math.max(o.start, 1);
          const hi = o.end === 0 ? PAGES + 8 : o.end;
          const fits: number[] = [];
          for (let c = 0; c + o.pages <= hi; c += 2 ** o.alignShift) {
            if (c < lo) continue;
            let ok = true;
            for (let p = c; p < c + o.pages && ok; p++) {
              ok =
                mem[p] >= 0 &&
                res[p] < 0 &&
                (!o.scratchOnly || (mem[p] & MEMBLOCK_KHO_SCRATCH) !== 0);
            }
            if (ok) fits.push(c);
          }
          const want =
            fits.length === 0 ? null : (o.bottomUp ? fits[0] : fits[fits.length - 1]) * P;
          assert.equal(got, want);
          if (got !== null) {
            for (let p = got / P; p < got / P + o.pages; p++) if (res[p] < 0) res[p] = 0;
            // Never over another allocation.
            for (const [b, n] of allocated) assert.ok(got + size <= b || got >= b + n);
            allocated.push([got, size]);
          }
          continue;
        }
        const [b, n] = clip(o.r);
        if (n <= 0) continue;
        for (let p = b; p < b + n; p++) {
          switch (o.kind) {
            case 'add':
              if (mem[p] < 0) mem[p] = o.scratch ? MEMBLOCK_KHO_SCRATCH : 0;
              break;
            case 'remove':
              mem[p] = -1;
              break;
            case 'scratch':
              if (mem[p] >= 0)
                mem[p] = o.set ? mem[p] | MEMBLOCK_KHO_SCRATCH : mem[p] & ~MEMBLOCK_KHO_SCRATCH;
              break;
            case 'reserve':
              if (res[p] < 0) res[p] = o.noinit ? MEMBLOCK_RSRV_NOINIT : 0;
              break;
            case 'free':
              res[p] = -1;
              break;
            case 'noinit':
              if (res[p] >= 0) res[p] |= MEMBLOCK_RSRV_NOINIT;
              break;
          }
        }
        if (o.kind === 'free') {
          for (let i = allocated.length - 1; i >= 0; i--) {
            const [ab, an] = allocated[i];
            if (ab < (b + n) * P && ab + an > b * P) allocated.splice(i, 1);
          }
        }
        switch (o.kind) {
          case 'add':
            mb.addMemory(b * P, n * P, o.scratch ? MEMBLOCK_KHO_SCRATCH : 0);
            break;
          case 'remove':
            mb.removeMemory(b * P, n * P);
            break;
          case 'scratch':
            if (o.set) mb.markScratch(b * P, n * P);
            else mb.clearScratch(b * P, n * P);
            break;
          case 'reserve':
            mb.reserve(b * P, n * P, o.noinit ? MEMBLOCK_RSRV_NOINIT : 0);
            break;
          case 'free':
            mb.free(b * P, n * P);
            break;
          case 'noinit':
            mb.markNoinit(b * P, n * P);
            break;
        }
      }
      assert.deepEqual(pagesOf(mb.memory), mem);
      assert.deepEqual(pagesOf(mb.reserved), res);
      // Free ranges + reserved = memory, page by page; free extents are maximal.
      const free = new Int32Array(PAGES + 8);
      let prevEnd = -1;
      for (const r of mb.freeRanges()) {
        assert.ok(r.size > 0 && r.base > prevEnd, 'ascending, maximal');
        for (let p = r.base / P; p < (r.base + r.size) / P; p++) free[p] = 1;
        prevEnd = r.base + r.size;
      }
      for (let p = 0; p < PAGES + 8; p++) {
        assert.equal(free[p] === 1, mem[p] >= 0 && res[p] < 0, `page ${p}`);
      }
      const noinit = [...mb.reservedNoinit()];
      assert.ok(noinit.every((r) => (r.flags & MEMBLOCK_RSRV_NOINIT) !== 0));
      assert.equal(
        noinit.reduce((s, r) => s + r.size, 0),
        res.filter((f) => f >= 0 && (f & MEMBLOCK_RSRV_NOINIT) !== 0).length * P,
      );
      assert.equal(mb.reserved.totalSize, res.filter((f) => f >= 0).length * P);
      assert.equal(mb.memory.totalSize, mem.filter((f) => f >= 0).length * P);
    }),
    { numRuns: 2000 },
  );
});
