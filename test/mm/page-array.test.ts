import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
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

test('making per-page arrays ahead leaves what V8 optimized before optimized: the checksum, and the hand-out', () => {
  // A preloaded successor rehearses handovers (V8 optimizes), then makes its
  // arrays, then boots in its downtime: code thrown away here was compiled
  // again there. V8's own view, in a fresh process (--allow-natives-syntax).
  const src = `import { crc32c } from ${JSON.stringify(srcUrl('memory/crc32c.js'))};
    import { makePageArraysAhead, pageBytes } from ${JSON.stringify(srcUrl('mm/page-array.js'))};
    const data = new Uint8Array(64);
    const run = () => { crc32c(data); pageBytes(7, true); };
    const fns = [crc32c, pageBytes];
    for (const f of fns) %PrepareFunctionForOptimization(f);
    run(); run();
    for (const f of fns) %OptimizeFunctionOnNextCall(f);
    run();
    const optimized = () => fns.map((f) => %ActiveTierIsTurbofan(f));
    const before = optimized();
    makePageArraysAhead(16);
    run();
    process.stdout.write(JSON.stringify({ before, after: optimized() }));`;
  const r = spawnSync(
    process.execPath,
    ['--allow-natives-syntax', '--input-type=module', '-e', src],
    { encoding: 'utf8', timeout: 30_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  const { before, after } = JSON.parse(r.stdout) as { before: boolean[]; after: boolean[] };
  assert.deepEqual(before, [true, true], 'optimized first');
  assert.deepEqual(after, [true, true], '[crc32c, pageBytes] still optimized');
});
