import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  makePageArraysAhead,
  pageArraysAhead,
  pageBytes,
  pageInts,
} from '../../src/mm/page-array.js';
import { externalGrowth, srcUrl } from './_external.js';

const MiB = 2 ** 20;

test('page arrays: zeroed, one element per page, shared or not', () => {
  for (const shared of [false, true]) {
    const bytes = pageBytes(5, shared);
    const ints = pageInts(5, shared);
    assert.deepEqual([...bytes], [0, 0, 0, 0, 0]);
    assert.deepEqual([...ints], [0, 0, 0, 0, 0]);
    ints[4] = -1;
    assert.equal(ints[4], -1);
  }
});

test('buddy: a shared memmap (4 GiB of pages) is not charged to V8; by default it is', () => {
  const prelude = `import { BuddyAllocator } from ${JSON.stringify(srcUrl('mm/buddy.js'))};
    const ranges = [{ pfn: 1, count: ${MiB - 1} }];`;
  const shared = externalGrowth(
    prelude,
    `BuddyAllocator.fromFreeRanges(${MiB}, ranges, { shared: true })`,
  );
  const counted = externalGrowth(prelude, `BuddyAllocator.fromFreeRanges(${MiB}, ranges)`);
  assert.ok(shared < MiB, `shared: ${shared} bytes charged`);
  assert.ok(counted >= 10 * MiB, `counted: ${counted} bytes charged`);
});

test('per-page arrays made ahead are handed out once each, zeroed, to a boot of the same size', () => {
  makePageArraysAhead(5000);
  assert.equal(pageArraysAhead(), 5, "the memmap's four and KHO's markers");
  // A boot of another size, or of arrays V8 counts (not shared), makes its own.
  assert.equal(pageBytes(4999, true).length, 4999);
  const counted = pageBytes(5000, false);
  assert.ok(!(counted.buffer instanceof SharedArrayBuffer));
  assert.equal(pageArraysAhead(), 5);
  const bytes = [pageBytes(5000, true), pageBytes(5000, true), pageBytes(5000, true)];
  const ints = [pageInts(5000, true), pageInts(5000, true)];
  assert.equal(pageArraysAhead(), 0);
  for (const a of [...bytes, ...ints]) {
    assert.equal(a.length, 5000);
    assert.ok(a.buffer instanceof SharedArrayBuffer);
    assert.ok(a.every((v) => v === 0));
  }
  // Each one a distinct array: a boot's memmap arrays must never alias.
  assert.equal(new Set([...bytes, ...ints].map((a) => a.buffer)).size, 5);
  // Those made ahead are gone: the next ones are new (and still zeroed).
  const more = pageBytes(5000, true);
  assert.ok(!bytes.some((b) => b.buffer === more.buffer));
  assert.ok(more.every((v) => v === 0));
});
