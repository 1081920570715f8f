import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Machine } from '../../src/machine.js';
import { PAGE_SIZE } from '../../src/memory/device.js';
import { MiB } from './_helpers.js';

// kexec load computes KHO's tree checksum and extents ahead; exec must see any change made after it.
test('pages preserved between kexec load and exec are handed over', () => {
  const k = Machine.create({ size: 32 * MiB }).boot();
  const early = k.allocPages(2)!;
  k.kho.preservePages(early.pfn, 4);
  k.kexec.load();
  const late = k.allocPages(3)!;
  k.kho.preservePages(late.pfn, 8);
  const next = k.kexec.exec();
  assert.equal(next.kho.revivalRefused, undefined);
  assert.ok(next.kho.isKhoBoot());
  assert.equal(next.kho.restorePages(early.pfn * PAGE_SIZE, 4).base, early.pfn * PAGE_SIZE);
  assert.equal(next.kho.restorePages(late.pfn * PAGE_SIZE, 8).base, late.pfn * PAGE_SIZE);
  assert.equal(
    next.pages.pageState(late.pfn),
    'reserved',
    'the late pages were kept out of the allocator',
  );
  assert.equal(next.kho.unclaimed().blocks, 0);
});

test('pages unpreserved between kexec load and exec are not handed over', () => {
  const k = Machine.create({ size: 32 * MiB }).boot();
  const kept = k.allocPages(2)!;
  const dropped = k.allocPages(4)!;
  k.kho.preservePages(kept.pfn, 4);
  k.kho.preservePages(dropped.pfn, 16);
  k.kexec.load();
  k.kho.unpreservePages(dropped.pfn, 16);
  const next = k.kexec.exec();
  assert.equal(next.kho.revivalRefused, undefined);
  assert.equal(next.kho.restorePages(kept.pfn * PAGE_SIZE, 4).base, kept.pfn * PAGE_SIZE);
  assert.throws(() => next.kho.restorePages(dropped.pfn * PAGE_SIZE, 16));
  assert.equal(next.kho.unclaimed().blocks, 0);
  assert.notEqual(next.pages.pageState(dropped.pfn), 'reserved');
});

test('a change after a refused exec is handed over by the next one', () => {
  const k = Machine.create({ size: 32 * MiB }).boot();
  const first = k.allocPages(1)!;
  k.kho.preservePages(first.pfn, 2);
  let refuse = true;
  k.addSubsystem({
    name: 'refuses once',
    freeze: () => {
      if (refuse) throw new Error('busy');
      return {};
    },
  });
  k.kexec.load();
  assert.throws(() => k.kexec.exec());
  const second = k.allocPages(5)!;
  k.kho.preservePages(second.pfn, 32);
  refuse = false;
  const next = k.kexec.exec();
  assert.equal(next.kho.revivalRefused, undefined);
  assert.equal(next.kho.restorePages(first.pfn * PAGE_SIZE, 2).base, first.pfn * PAGE_SIZE);
  assert.equal(next.kho.restorePages(second.pfn * PAGE_SIZE, 32).base, second.pfn * PAGE_SIZE);
});

test('a tree emptied between kexec load and exec hands over no preserved memory', () => {
  const k = Machine.create({ size: 32 * MiB }).boot();
  const f = k.allocPages(3)!;
  k.kho.preservePages(f.pfn, 8);
  k.kexec.load();
  k.kho.unpreservePages(f.pfn, 8);
  const next = k.kexec.exec();
  assert.equal(next.kho.revivalRefused, undefined);
  assert.notEqual(next.pages.pageState(f.pfn), 'reserved', 'the pages went back to the allocator');
  assert.equal(next.kho.unclaimed().blocks, 0);
});
