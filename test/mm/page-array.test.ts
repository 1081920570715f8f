import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pageBytes, pageInts } from '../../src/mm/page-array.js';
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
