import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Kernel } from '../../src/kernel/kernel.js';
import type { PageListEntries } from '../../src/kho/page-list.js';
import { Machine } from '../../src/machine.js';
import { PAGE_SIZE } from '../../src/memory/device.js';
import type { Folio } from '../../src/mm/folio.js';
import { code, MiB } from './_helpers.js';

/** Preserves `folios` as a page list, kexecs, and returns the successor and the list's address. */
function handOver(k1: Kernel, folios: Folio[] | PageListEntries): { k2: Kernel; list: number } {
  const list = k1.kho.preservePageList(folios);
  k1.kexec.load();
  return { k2: k1.kexec.exec(), list };
}

test('a page list of folios back to back comes back as one zero-copy view of the device', () => {
  const k1 = Machine.create({ size: 32 * MiB }).boot();
  const base = k1.allocPages(4)!;
  k1.freePages(base);
  // Sixteen pages as folios of orders 2, 1, 0, 0, 3 in address order: contiguous.
  const orders = [2, 1, 0, 0, 3];
  const folios: Folio[] = [];
  let pfn = base.pfn;
  for (const order of orders) {
    k1.pages.allocPagesAt(pfn, order);
    folios.push({ pfn, order });
    pfn += 2 ** order;
  }
  for (let i = 0; i < 16; i++) k1.device.bytes((base.pfn + i) * PAGE_SIZE, PAGE_SIZE).fill(i + 1);
  const { k2, list } = handOver(k1, folios);
  const view = k2.kho.restorePageListView(list);
  assert.equal(view.length, 5);
  assert.deepEqual([...view.order], orders);
  assert.deepEqual(view.folio(4), folios[4]);
  assert.equal(view.byteLength, 16 * PAGE_SIZE);
  assert.equal(view.contiguous, true);
  const bytes = view.bytes();
  assert.equal(bytes.length, 16 * PAGE_SIZE);
  for (let i = 0; i < 16; i++) assert.equal(bytes[i * PAGE_SIZE], i + 1);
  // Zero-copy: a write through the view is the device's byte.
  bytes[5 * PAGE_SIZE + 7] = 0xee;
  assert.equal(k2.device.bytes((base.pfn + 5) * PAGE_SIZE + 7, 1)[0], 0xee);
  // The folios are the caller's allocations now.
  for (let i = 0; i < view.length; i++) k2.freePages(view.folio(i));
  assert.equal(k2.kho.unclaimed().blocks, 0);
});

test('a scattered page list is a gather view: read, write and copy follow list order; bytes() is EINVAL', () => {
  const k1 = Machine.create({ size: 32 * MiB }).boot();
  const a = k1.allocPages(1)!;
  k1.allocPages(0); // a hole between the runs
  const b = k1.allocPages(0)!;
  const c = k1.allocPages(2)!;
  // List order differs from address order: c, a, b.
  const folios = [c, a, b];
  const fills = [0x30, 0x10, 0x20];
  folios.forEach((f, i) => {
    k1.folioBytes(f).fill(fills[i]);
  });
  const { k2, list } = handOver(k1, folios);
  const view = k2.kho.restorePageListView(list);
  assert.equal(view.contiguous, false);
  assert.ok(view.runs >= 2);
  assert.throws(() => view.bytes(), code('EINVAL'));
  const copy = view.copy();
  assert.equal(copy.length, 7 * PAGE_SIZE);
  assert.equal(copy[0], 0x30);
  assert.equal(copy[4 * PAGE_SIZE], 0x10);
  assert.equal(copy[6 * PAGE_SIZE], 0x20);
  // A write across the boundary of c and a lands in both folios.
  view.write(4 * PAGE_SIZE - 2, Uint8Array.of(1, 2, 3, 4));
  assert.deepEqual([...k2.device.bytes((c.pfn + 4) * PAGE_SIZE - 2, 2)], [1, 2]);
  assert.deepEqual([...k2.device.bytes(a.pfn * PAGE_SIZE, 2)], [3, 4]);
  const back = new Uint8Array(4);
  view.read(4 * PAGE_SIZE - 2, back);
  assert.deepEqual([...back], [1, 2, 3, 4]);
  assert.throws(() => view.read(7 * PAGE_SIZE - 1, new Uint8Array(2)), code('EINVAL'));
  let total = 0;
  for (let r = 0; r < view.runs; r++) {
    const run = view.runBytes(r);
    assert.equal(run.offset, total);
    total += run.bytes.length;
  }
  assert.equal(total, view.byteLength);
});

test('gather reads and writes of a page list agree with a flat copy (property)', () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ order: fc.integer({ min: 0, max: 2 }), gap: fc.boolean() }), {
        minLength: 1,
        maxLength: 12,
      }),
      fc.nat(),
      fc.nat(),
      (shape, start, len) => {
        const k1 = Machine.create({ size: 8 * MiB }).boot();
        const folios: Folio[] = [];
        for (const s of shape) {
          if (s.gap) k1.allocPages(0);
          const f = k1.allocPages(s.order)!;
          k1.folioBytes(f).forEach((_, i, bytes) => {
            bytes[i] = (f.pfn * 7 + i) & 0xff;
          });
          folios.push(f);
        }
        const { k2, list } = handOver(k1, folios);
        const view = k2.kho.restorePageListView(list);
        const flat = view.copy();
        const expect = new Uint8Array(flat.length);
        let at = 0;
        for (const f of folios) {
          expect.set(k2.folioBytes(f), at);
          at += k2.folioBytes(f).length;
        }
        assert.deepEqual(flat, expect);
        const from = start % flat.length;
        const n = len % (flat.length - from + 1);
        const out = new Uint8Array(n);
        view.read(from, out);
        assert.deepEqual(out, flat.subarray(from, from + n));
        const data = out.map((x) => x ^ 0xff);
        view.write(from, data);
        const again = new Uint8Array(n);
        view.read(from, again);
        assert.deepEqual(again, data);
      },
    ),
    { numRuns: 60 },
  );
});

test('restorePageList of a damaged list restores nothing, with or without a view', () => {
  const k1 = Machine.create({ size: 32 * MiB }).boot();
  const folios = [k1.allocPages(0)!, k1.allocPages(0)!, k1.allocPages(1)!];
  const { k2, list } = handOver(k1, folios);
  // Entry 2 names entry 0's page: a block named twice.
  const v = k2.device.view(list, PAGE_SIZE);
  v.setBigUint64(0x20, v.getBigUint64(0x10, true), true);
  const before = k2.kho.unclaimed();
  const free = k2.pages.stats().freePages;
  assert.throws(() => k2.kho.restorePageListView(list), code('EFAULT'));
  assert.deepEqual(k2.kho.unclaimed(), before);
  assert.equal(k2.pages.stats().freePages, free);
  assert.equal(k2.pages.pageState(folios[0].pfn), 'reserved');
});

test('a restored page list is preserved again as it came (typed arrays), through three generations', () => {
  const k1 = Machine.create({ size: 32 * MiB }).boot();
  const folios = [k1.allocPages(0)!, k1.allocPages(2)!, k1.allocPages(0)!];
  folios.forEach((f, i) => {
    k1.folioBytes(f).fill(0x40 + i);
  });
  let { k2: k, list } = handOver(k1, folios);
  for (let gen = 2; gen <= 3; gen++) {
    const view = k.kho.restorePageListView(list);
    assert.deepEqual(
      [...view.pfn],
      folios.map((f) => f.pfn),
      `generation ${gen}`,
    );
    assert.equal(view.copy()[4 * PAGE_SIZE], 0x41);
    ({ k2: k, list } = handOver(k, view));
  }
  assert.deepEqual(k.kho.restorePageList(list), folios);
});

test('a page list whose chain loops, or names a chunk or a block twice, is EFAULT; once repaired it restores whole', () => {
  const k1 = Machine.create({ size: 32 * MiB }).boot();
  // 600 folios: two chunks (510 entries each at most).
  const folios = Array.from({ length: 600 }, () => k1.allocPages(0)!);
  const { k2, list } = handOver(k1, folios);
  const v = k2.device.view(list, PAGE_SIZE);
  const second = v.getBigUint64(0x08, true);
  const entry = v.getBigUint64(0x10 + 8 * 7, true);
  const damages: [string, () => void, RegExp][] = [
    [
      'a loop',
      () => k2.device.view(Number(second), PAGE_SIZE).setBigUint64(0x08, BigInt(list), true),
      /appears twice \(a cycle\)/,
    ],
    [
      'a chunk named',
      () => v.setBigUint64(0x10 + 8 * 7, second, true),
      /entry 7 .* is named twice or is a chunk/,
    ],
    [
      'a block named twice',
      () => v.setBigUint64(0x10 + 8 * 7, v.getBigUint64(0x10, true), true),
      /entry 7 .* is named twice or is a chunk/,
    ],
  ];
  const before = k2.kho.unclaimed();
  for (const [what, damage, message] of damages) {
    damage();
    assert.throws(() => k2.kho.restorePageListView(list), code('EFAULT'), what);
    assert.throws(() => k2.kho.restorePageListView(list), message, what);
    assert.deepEqual(k2.kho.unclaimed(), before, `${what}: nothing claimed`);
    k2.device.view(Number(second), PAGE_SIZE).setBigUint64(0x08, 0n, true);
    v.setBigUint64(0x10 + 8 * 7, entry, true);
  }
  const view = k2.kho.restorePageListView(list);
  assert.deepEqual(
    [...view.pfn],
    folios.map((f) => f.pfn),
  );
  assert.equal(k2.kho.unclaimed().blocks, 0);
});

test('a refused entry in a later chunk is named by its place in the whole list, and nothing is claimed', () => {
  const k1 = Machine.create({ size: 64 * MiB }).boot();
  // A preserved block larger than any folio (order 11), for an entry to name.
  const big = k1.kho.allocPreserve(8 * MiB);
  assert.equal(big.order, 11);
  const folios = Array.from({ length: 1200 }, () => k1.allocPages(0)!);
  const { k2, list } = handOver(k1, folios);
  // The third chunk: entries 1020 on (510 a chunk).
  const second = Number(k2.device.view(list, PAGE_SIZE).getBigUint64(0x08, true));
  const third = Number(k2.device.view(second, PAGE_SIZE).getBigUint64(0x08, true));
  const v = k2.device.view(third, PAGE_SIZE);
  const at = 0x10 + 8 * 5;
  const entry = v.getBigUint64(at, true);
  const damages: [string, bigint, RegExp][] = [
    ['a block named twice', v.getBigUint64(0x10, true), /entry 1025 \(pfn \d+\) is named twice/],
    [
      'a block not preserved',
      entry + (1n << 12n) * 4096n,
      /entry 1025 \(pfn \d+, order 0\) is not a preserved block/,
    ],
    [
      'a block larger than a folio',
      (BigInt(big.pfn) << 12n) | 11n,
      /entry 1025 has order 11: not a folio/,
    ],
  ];
  const before = k2.kho.unclaimed();
  const free = k2.pages.stats().freePages;
  for (const [what, bad, message] of damages) {
    v.setBigUint64(at, bad, true);
    assert.throws(() => k2.kho.restorePageListView(list), message, what);
    assert.deepEqual(k2.kho.unclaimed(), before, `${what}: nothing claimed`);
    assert.equal(k2.pages.stats().freePages, free, `${what}: no page taken`);
    v.setBigUint64(at, entry, true);
  }
  const view = k2.kho.restorePageListView(list);
  assert.deepEqual(
    [...view.pfn],
    folios.map((f) => f.pfn),
  );
});
