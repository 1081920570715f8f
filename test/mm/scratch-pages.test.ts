import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { PAGE_SIZE } from '../../src/memory/device.js';
import { PageAllocError } from '../../src/mm/errors.js';
import { ScratchPages } from '../../src/mm/scratch-pages.js';

const KiB = 1024;
const pageErr = (code: string) => (e: unknown) => e instanceof PageAllocError && e.code === code;

/** Two areas, the lower not aligned to MAX_PAGE_ORDER; the window is the top 64 KiB. */
function twoAreas(): ScratchPages {
  return new ScratchPages(
    [
      { base: 1040 * PAGE_SIZE, size: 256 * KiB },
      { base: 4096 * PAGE_SIZE, size: 512 * KiB },
    ],
    64 * KiB,
  );
}

test('blocks are naturally aligned in the device; the window is never handed out', () => {
  const z = twoAreas();
  assert.deepEqual(z.stats(), {
    totalPages: 192,
    transientPages: 176,
    freePages: 176,
    segmentPages: 0,
  });
  const pfns: number[] = [];
  for (let p = z.allocPages(2); p !== null; p = z.allocPages(2)) {
    assert.equal(p % 4, 0);
    pfns.push(p);
  }
  assert.equal(pfns.length, 44);
  assert.ok(
    pfns.every((p) => p < 4096 + 112),
    'none in the window [4208, 4224)',
  );
  assert.equal(z.allocPages(0), null);
  assert.throws(() => z.allocPages(11), pageErr('EINVAL'));
  z.freePages(pfns[0]!, 2);
  assert.throws(() => z.freePages(pfns[0]!, 2), pageErr('ENOENT'));
  assert.throws(() => z.freePages(4210, 0), pageErr('EINVAL'), 'the window is no zone');
  assert.equal(z.owns(pfns[1]!), true);
  assert.equal(z.owns(4210), false);
});

test('segments: the window first, then free zone pages; claims are exclusive and all or nothing', () => {
  const z = twoAreas();
  assert.deepEqual(
    z.segmentFree().map((r) => [r.base / PAGE_SIZE, r.size / PAGE_SIZE]),
    [
      [4208, 16],
      [1040, 64],
      [4096, 112],
    ],
  );
  const seg = { base: 4200 * PAGE_SIZE, size: 24 * PAGE_SIZE }; // 8 zone pages + the window
  z.claimSegment(seg);
  assert.equal(z.stats().segmentPages, 24);
  assert.equal(z.stats().freePages, 168);
  assert.throws(
    () => z.claimSegment({ base: 4220 * PAGE_SIZE, size: PAGE_SIZE }),
    pageErr('EBUSY'),
  );
  assert.throws(
    () => z.claimSegment({ base: 2000 * PAGE_SIZE, size: PAGE_SIZE }),
    pageErr('EINVAL'),
  );
  const t = z.allocPages(0)!;
  assert.throws(() => z.claimSegment({ base: t * PAGE_SIZE, size: PAGE_SIZE }), pageErr('EBUSY'));
  assert.ok(
    z.segmentFree().every((r) => r.base + r.size <= 4200 * PAGE_SIZE || r.base >= 4224 * PAGE_SIZE),
  );
  z.releaseSegment(seg);
  assert.throws(() => z.releaseSegment(seg), pageErr('ENOENT'));
  assert.equal(z.stats().freePages, 175);
});

test('property: transient folios and segments never overlap, and every page comes back', () => {
  type Op =
    | { kind: 'alloc'; order: number }
    | { kind: 'free'; i: number }
    | { kind: 'seg'; pages: number }
    | { kind: 'unseg'; i: number };
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constant('alloc' as const), order: fc.integer({ min: 0, max: 4 }) }),
    fc.record({ kind: fc.constant('free' as const), i: fc.nat() }),
    fc.record({ kind: fc.constant('seg' as const), pages: fc.integer({ min: 1, max: 40 }) }),
    fc.record({ kind: fc.constant('unseg' as const), i: fc.nat() }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const z = twoAreas();
      const folios: [number, number][] = [];
      const segs: { base: number; size: number }[] = [];
      const used = new Set<number>();
      const take = (p: number, n: number) => {
        for (let i = p; i < p + n; i++) {
          assert.ok(!used.has(i), `pfn ${i} handed out twice`);
          used.add(i);
        }
      };
      const give = (p: number, n: number) => {
        for (let i = p; i < p + n; i++) used.delete(i);
      };
      for (const o of ops) {
        if (o.kind === 'alloc') {
          const p = z.allocPages(o.order);
          if (p !== null) {
            take(p, 2 ** o.order);
            folios.push([p, o.order]);
          }
        } else if (o.kind === 'free' && folios.length > 0) {
          const [p, order] = folios.splice(o.i % folios.length, 1)[0]!;
          z.freePages(p, order);
          give(p, 2 ** order);
        } else if (o.kind === 'seg') {
          const size = o.pages * PAGE_SIZE;
          const hole = [...z.segmentFree()].reverse().find((r) => r.size >= size);
          if (hole) {
            const seg = { base: hole.base + hole.size - size, size };
            z.claimSegment(seg);
            take(seg.base / PAGE_SIZE, o.pages);
            segs.push(seg);
          }
        } else if (o.kind === 'unseg' && segs.length > 0) {
          const seg = segs.splice(o.i % segs.length, 1)[0]!;
          z.releaseSegment(seg);
          give(seg.base / PAGE_SIZE, seg.size / PAGE_SIZE);
        }
      }
      for (const [p, order] of folios) z.freePages(p, order);
      for (const s of segs) z.releaseSegment(s);
      assert.deepEqual(z.stats(), twoAreas().stats());
    }),
    { numRuns: 300 },
  );
});
