import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { BootError } from '../../src/boot/errors.js';
import type { Kernel } from '../../src/kernel/kernel.js';
import { Machine } from '../../src/machine.js';
import { PAGE_SIZE } from '../../src/memory/device.js';
import { isUsableType } from '../../src/memory/memmap-types.js';
import type { Folio } from '../../src/mm/folio.js';

const SIZE = 4 * 1024 * 1024;
const PAGES = SIZE / PAGE_SIZE;

type Op =
  | { kind: 'alloc'; order: number }
  | { kind: 'free'; pick: number }
  | { kind: 'load'; reserveKiB: number; atKiB: number }
  | { kind: 'exec' }
  | { kind: 'unload' }
  | { kind: 'badLoad' }
  | { kind: 'panicAndReboot' };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('alloc' as const),
      order: fc.integer({ min: 0, max: 5 }),
    }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('load' as const),
      reserveKiB: fc.integer({ min: 0, max: 64 }),
      atKiB: fc.integer({ min: 1, max: 4000 }),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ kind: 'exec' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'unload' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'badLoad' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'panicAndReboot' as const }) },
);

/** Pages the kernel must never hand out: anything its memory map does not call usable. */
function forbiddenPages(k: Kernel): Uint8Array {
  const out = new Uint8Array(PAGES).fill(1);
  for (const r of k.memoryMap.entries()) {
    if (!isUsableType(r.type)) continue;
    out.fill(0, Math.ceil(r.base / PAGE_SIZE), Math.floor((r.base + r.size) / PAGE_SIZE));
  }
  if (k.crashArea)
    out.fill(1, k.crashArea.base / PAGE_SIZE, (k.crashArea.base + k.crashArea.size) / PAGE_SIZE);
  return out;
}

function checkConserved(k: Kernel, held: Folio[]): void {
  const s = k.pages.stats();
  assert.equal(s.freePages + s.allocatedPages + s.reservedPages + s.preservedPages, s.totalPages);
  assert.equal(
    s.allocatedPages,
    held.reduce((n, f) => n + 2 ** f.order, 0),
  );
}

test('random histories of boot, alloc, free, memmap=, kexec and panic keep every page accounted for', () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const m = Machine.create({ size: SIZE });
      let k = m.boot('crashkernel=256K');
      let held: Folio[] = [];
      let owner = new Uint8Array(PAGES);
      let forbidden = forbiddenPages(k);
      const bootExtents = k.pages.freeExtents();
      let loadedCmdline: string | null = null;
      for (const o of ops) {
        switch (o.kind) {
          case 'alloc': {
            const f = k.allocPages(o.order);
            if (!f) break;
            assert.equal(f.pfn % 2 ** o.order, 0, 'naturally aligned');
            for (let p = f.pfn; p < f.pfn + 2 ** o.order; p++) {
              assert.equal(owner[p], 0, `pfn ${p} handed out twice`);
              assert.equal(forbidden[p], 0, `pfn ${p} is reserved, preserved or not memory`);
              const seg = k.kexec.loaded?.segment;
              if (seg)
                assert.ok(
                  p * PAGE_SIZE < seg.base || p * PAGE_SIZE >= seg.base + seg.size,
                  'segment page',
                );
              owner[p] = 1;
            }
            held.push(f);
            break;
          }
          case 'free': {
            if (held.length === 0) break;
            const [f] = held.splice(o.pick % held.length, 1);
            k.freePages(f);
            owner.fill(0, f.pfn, f.pfn + 2 ** f.order);
            break;
          }
          case 'load': {
            const at = Math.floor((o.atKiB * 1024) / PAGE_SIZE) * PAGE_SIZE;
            const cmdline = o.reserveKiB > 0 ? `memmap=${o.reserveKiB}K$${at >> 10}K` : '';
            try {
              k.kexec.load({ cmdline });
              loadedCmdline = cmdline;
            } catch (e) {
              assert.equal((e as { code?: string }).code, 'ENOMEM');
            }
            break;
          }
          case 'unload':
            if (k.kexec.loaded) k.kexec.unload();
            break;
          case 'badLoad': {
            const free = k.pages.stats().freePages;
            assert.throws(() => k.kexec.load({ cmdline: 'memmap=1X$1M' }), BootError);
            assert.equal(k.pages.stats().freePages, free);
            break;
          }
          case 'exec': {
            if (!k.kexec.loaded) break;
            const prev = k.generation;
            k = k.kexec.exec();
            assert.equal(k.boot.kind, 'kexec');
            assert.equal(k.generation, prev + 1);
            assert.equal(k.boot.cmdline, loadedCmdline);
            held = [];
            owner = new Uint8Array(PAGES);
            forbidden = forbiddenPages(k);
            break;
          }
          case 'panicAndReboot': {
            if (!k.crashArea) break;
            const crash = k.panic();
            assert.ok(crash.pages.stats().freePages <= k.crashArea.size / PAGE_SIZE);
            k = m.boot('crashkernel=256K');
            assert.equal(k.boot.kind, 'cold');
            held = [];
            owner = new Uint8Array(PAGES);
            forbidden = forbiddenPages(k);
            break;
          }
        }
        checkConserved(k, held);
      }
      // Freeing everything coalesces the free lists completely.
      for (const f of held) k.freePages(f);
      if (k.kexec.loaded) k.kexec.unload();
      if (k.generation === 1) assert.deepEqual(k.pages.freeExtents(), bootExtents);
      const s = k.pages.stats();
      assert.equal(s.allocatedPages, 0);
      // Two free buddies of one order never sit side by side unmerged.
      const free = new Set<string>();
      for (const b of k.pages.freeBlocks()) free.add(`${b.pfn}/${b.order}`);
      for (const b of k.pages.freeBlocks()) {
        if (b.order === 10) continue;
        const buddy = b.pfn ^ (2 ** b.order);
        assert.ok(
          !free.has(`${buddy}/${b.order}`),
          `free buddies ${b.pfn} and ${buddy} were not merged`,
        );
      }
    }),
    { numRuns: 150 },
  );
});
