import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KhoError } from '../../src/kho/errors.js';
import { Machine } from '../../src/machine.js';
import { PAGE_SIZE } from '../../src/memory/device.js';
import type { Folio } from '../../src/mm/folio.js';
import { code, MiB, smallFdt } from './_helpers.js';

test('a finalize that fails while carrying unclaimed blocks forward leaves the outgoing tree as it was', () => {
  for (let leave = 0; leave < 12; leave++) {
    const m = Machine.create({ size: 16 * MiB });
    const k = m.boot();
    for (const o of [0, 1, 2, 3]) k.kho.preserveFolio(k.allocPages(o)!);
    k.kexec.load();
    const k2 = k.kexec.exec();
    const held: Folio[] = [];
    for (let f = k2.allocPages(0); f; f = k2.allocPages(0)) held.push(f);
    for (let i = 0; i < leave; i++) k2.freePages(held.pop()!);
    const before = k2.pages.stats().freePages;
    try {
      k2.kho.finalize();
      k2.kho.abort();
    } catch (err) {
      assert.ok(code('ENOMEM')(err), String(err));
    }
    assert.equal(k2.kho.finalized, false);
    assert.equal(k2.kho.preserved().bytes, 0, `leave ${leave}: no carried block stays preserved`);
    assert.equal(k2.kho.preserved().metadataPages, 0, `leave ${leave}: no tree page stays`);
    assert.equal(k2.pages.stats().freePages, before, `leave ${leave}: every tree page is freed`);
    // Once memory is back, the handover carries everything, and the next boot gets it all.
    for (const f of held) k2.freePages(f);
    k2.kexec.load();
    const k3 = k2.kexec.exec();
    assert.deepEqual(k3.kho.unclaimed().blocks, 4);
    assert.equal(k3.kho.unclaimed().bytes, 15 * PAGE_SIZE);
  }
});

test('a finalize that fails in a notifier aborts the notifiers that had already run', () => {
  const k = Machine.create({ size: 16 * MiB }).boot();
  const log: string[] = [];
  k.kho.registerNotifier({
    finalize: () => {
      log.push('finalize a');
      k.kho.addSubtree('a', smallFdt('a'));
    },
    abort: () => {
      log.push('abort a');
      k.kho.removeSubtree('a');
    },
  });
  let fail = true;
  k.kho.registerNotifier({
    finalize: () => {
      if (fail) throw new KhoError('ENOMEM', 'b: no memory');
    },
    abort: () => log.push('abort b'),
  });
  assert.throws(() => k.kho.finalize(), code('ENOMEM'));
  assert.deepEqual(log, ['finalize a', 'abort a']);
  assert.equal(k.kho.finalized, false);
  assert.deepEqual(k.kho.subtreeNames(), []);
  fail = false;
  k.kho.finalize();
  assert.deepEqual(k.kho.subtreeNames(), ['a']);
});

test('blocks preserved at one pfn at two orders: the larger is the block, claimed, carried and released once', () => {
  const m = Machine.create({ size: 16 * MiB });
  const k = m.boot();
  const f = k.allocPages(1)!;
  k.kho.preservePages(f.pfn, 1);
  k.kho.preservePages(f.pfn, 2);
  k.kexec.load();
  const k2 = k.kexec.exec();
  assert.deepEqual(k2.kho.unclaimed(), { subtrees: [], blocks: 1, bytes: 2 * PAGE_SIZE });
  // Not claimed here: the next generation still gets both pages.
  k2.kexec.load();
  const k3 = k2.kexec.exec();
  assert.deepEqual(k3.kho.unclaimed(), { subtrees: [], blocks: 1, bytes: 2 * PAGE_SIZE });
  assert.deepEqual(k3.kho.restorePages(f.pfn * PAGE_SIZE, 2), {
    base: f.pfn * PAGE_SIZE,
    size: 2 * PAGE_SIZE,
  });
  assert.deepEqual(k3.kho.unclaimed(), { subtrees: [], blocks: 0, bytes: 0 });

  const k4 = Machine.create({ size: 16 * MiB }).boot();
  const g = k4.allocPages(2)!;
  k4.kho.preservePages(g.pfn, 4);
  k4.kho.preservePages(g.pfn, 1);
  k4.kexec.load();
  const k5 = k4.kexec.exec();
  assert.deepEqual(k5.kho.unclaimed(), { subtrees: [], blocks: 1, bytes: 4 * PAGE_SIZE });
  const free = k5.pages.stats().freePages;
  assert.equal(k5.kho.releaseUnclaimed(), 4 * PAGE_SIZE);
  assert.equal(k5.pages.stats().freePages, free + 4);
  assert.deepEqual(k5.kho.unclaimed(), { subtrees: [], blocks: 0, bytes: 0 });
});

test('the memory layout counts what a handover left unclaimed, per page, across runs, cells and orders', () => {
  // 64 MiB: 16,384 pages in census cells of 8, so runs span cells and an order-5 block crosses them.
  const k = Machine.create({ size: 64 * MiB }).boot();
  const blocks: { pfn: number; order: number }[] = [];
  for (const [order, count] of [
    [0, 300],
    [2, 40],
    [5, 6],
  ] as const) {
    for (let i = 0; i < count; i++) {
      const f = k.allocPages(order)!;
      k.kho.preserveFolio(f);
      blocks.push(f);
    }
  }
  // One pfn at two orders: the larger is the block.
  const twice = k.allocPages(3)!;
  k.kho.preservePages(twice.pfn, 1);
  k.kho.preservePages(twice.pfn, 8);
  k.kexec.load();
  const k2 = k.kexec.exec();
  // Claim every third block, so runs of unclaimed blocks have holes.
  for (let i = 0; i < blocks.length; i += 3) k2.kho.restoreFolio(blocks[i].pfn * PAGE_SIZE);
  const incoming = (): number =>
    k2
      .memoryLayout()
      .runs.filter((r) => r.kind === 'incoming')
      .reduce((s, r) => s + r.size, 0);
  assert.equal(incoming(), k2.kho.unclaimed().bytes);
  // Kept up to date by later claims.
  k2.kho.restoreFolio(blocks[1].pfn * PAGE_SIZE);
  assert.equal(incoming(), k2.kho.unclaimed().bytes);
  assert.ok(incoming() > 0);
});
