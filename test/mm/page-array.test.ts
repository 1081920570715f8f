import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BuddyAllocator } from '../../src/mm/buddy.js';
import { pageBytes, pageInts } from '../../src/mm/page-array.js';

const MiB = 2 ** 20;

/** V8's external memory (what makes it collect garbage early) grown by fn, in bytes. */
function charged(fn: () => unknown): number {
  const before = process.memoryUsage().external;
  const keep = fn();
  const grown = process.memoryUsage().external - before;
  assert.ok(keep);
  return grown;
}

test('page arrays: zeroed, one element per page, and not charged to V8 as external memory', () => {
  const bytes = pageBytes(5);
  const ints = pageInts(5);
  assert.deepEqual([...bytes], [0, 0, 0, 0, 0]);
  assert.deepEqual([...ints], [0, 0, 0, 0, 0]);
  ints[4] = -1;
  assert.equal(ints[4], -1);
  assert.ok(charged(() => [pageBytes(16 * MiB), pageInts(4 * MiB)]) < MiB);
});

test('buddy: the memmap of a 4 GiB allocator is not charged to V8 as external memory', () => {
  const pages = MiB;
  const grown = charged(() =>
    BuddyAllocator.fromFreeRanges(pages, [{ base: 1, count: pages - 1 }]),
  );
  assert.ok(grown < MiB, `${grown} bytes charged`);
});
