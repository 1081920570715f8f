import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BootError } from '../../src/boot/errors.js';
import {
  MEMBLOCK_ALLOC_ANYWHERE,
  MEMBLOCK_KHO_SCRATCH,
  MEMBLOCK_RSRV_NOINIT,
  Memblock,
} from '../../src/boot/memblock.js';

const K = 1024;
const M = 2 ** 20;
const G = 2 ** 30;

function withMemory(size = G): Memblock {
  const mb = new Memblock();
  mb.addMemory(0, size);
  return mb;
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof BootError, String(e));
    return e.code;
  }
  return 'none';
}

test('top-down placement: each allocation goes just below the previous, reservations merge', () => {
  const mb = withMemory();
  assert.equal(mb.alloc(M, 4 * K), G - M);
  assert.equal(mb.alloc(M, 4 * K), G - 2 * M);
  assert.equal(mb.alloc(4 * K, 4 * K), G - 2 * M - 4 * K);
  assert.deepEqual([...mb.reserved], [{ base: G - 2 * M - 4 * K, size: 2 * M + 4 * K, flags: 0 }]);
  assert.equal(mb.reserved.totalSize, 2 * M + 4 * K);
});

test('alignment: the base is rounded down to the alignment below the top', () => {
  const mb = withMemory();
  mb.reserve(G - 3 * M, 3 * M);
  assert.equal(mb.alloc(5000, 2 * M), G - 4 * M);
  assert.equal(mb.alloc(1, 1), G - 3 * M - 1);
  assert.equal(
    code(() => mb.alloc(4096, 3000)),
    'EINVAL',
  );
  assert.equal(
    code(() => mb.alloc(0, 4096)),
    'EINVAL',
  );
});

test('limits: [start, end), the current limit, and never the first page', () => {
  const mb = withMemory();
  assert.equal(mb.allocRange(M, 4 * K, 0, 512 * M), 511 * M);
  mb.setCurrentLimit(256 * M);
  assert.equal(mb.alloc(M, 4 * K), 255 * M);
  assert.equal(mb.allocRange(M, 4 * K, 0, MEMBLOCK_ALLOC_ANYWHERE), G - M);
  mb.setBottomUp(true);
  assert.equal(mb.allocRange(M, M, 100 * M), 100 * M);
  assert.equal(mb.alloc(4 * K, 4 * K), 4 * K);
  assert.equal(mb.alloc(4 * K, 4 * K), 8 * K);

  const tiny = withMemory(8 * K);
  assert.equal(tiny.alloc(4 * K, 4 * K), 4 * K);
  assert.equal(tiny.tryAlloc(4 * K, 4 * K), null);
  assert.equal(
    code(() => tiny.alloc(4 * K, 4 * K)),
    'ENOMEM',
  );
});

test('allocation skips reserved holes and memory gaps', () => {
  const mb = new Memblock();
  mb.addMemory(0, 16 * M);
  mb.addMemory(32 * M, 4 * M);
  mb.reserve(34 * M, 2 * M);
  assert.equal(mb.alloc(2 * M, 4 * K), 32 * M);
  assert.equal(mb.alloc(3 * M, 4 * K), 13 * M);
  assert.ok(mb.isReserved(13 * M, 1));
  assert.ok(!mb.isReserved(12 * M, M));
  assert.ok(mb.isReserved(12 * M, M + 1));
});

test('scratch-only mode allocates only from scratch memory', () => {
  const mb = withMemory();
  mb.markScratch(16 * M, 4 * M);
  assert.deepEqual(
    [...mb.memory].map((r) => r.flags),
    [0, MEMBLOCK_KHO_SCRATCH, 0],
  );
  mb.setScratchOnly(true);
  assert.equal(mb.alloc(M, 4 * K), 19 * M);
  assert.equal(mb.alloc(2 * M, 4 * K), 17 * M);
  assert.equal(mb.tryAlloc(2 * M, 4 * K), null);
  assert.equal(
    code(() => mb.alloc(2 * M, 4 * K)),
    'ENOMEM',
  );
  assert.equal(mb.alloc(M, 4 * K), 16 * M);
  mb.setScratchOnly(false);
  assert.equal(mb.alloc(M, 4 * K), G - M);
  // Free ranges ignore scratch-only: they are what the page allocator gets.
  assert.deepEqual([...mb.freeRanges({ scratchOnly: true })], []);
  mb.clearScratch(0, G);
  assert.deepEqual([...mb.memory], [{ base: 0, size: G, flags: 0 }]);
});

test('reserve merges with neighbours; different flags stay apart; overlaps keep their flags', () => {
  const mb = withMemory();
  mb.reserve(8 * K, 4 * K);
  mb.reserve(16 * K, 4 * K);
  assert.equal(mb.reserved.cnt, 2);
  mb.reserve(12 * K, 4 * K);
  assert.deepEqual([...mb.reserved], [{ base: 8 * K, size: 12 * K, flags: 0 }]);
  mb.reserve(20 * K, 4 * K, MEMBLOCK_RSRV_NOINIT);
  assert.equal(mb.reserved.cnt, 2);
  mb.reserve(4 * K, 24 * K, MEMBLOCK_RSRV_NOINIT);
  assert.deepEqual(
    [...mb.reserved],
    [
      { base: 4 * K, size: 4 * K, flags: MEMBLOCK_RSRV_NOINIT },
      { base: 8 * K, size: 12 * K, flags: 0 },
      { base: 20 * K, size: 8 * K, flags: MEMBLOCK_RSRV_NOINIT },
    ],
  );
});

test('free splits a reservation; markNoinit flags part of one', () => {
  const mb = withMemory();
  mb.reserve(0, M);
  mb.free(256 * K, 256 * K);
  assert.deepEqual(
    [...mb.reserved],
    [
      { base: 0, size: 256 * K, flags: 0 },
      { base: 512 * K, size: 512 * K, flags: 0 },
    ],
  );
  mb.markNoinit(768 * K, 512 * K);
  assert.deepEqual(
    [...mb.reservedNoinit()],
    [{ base: 768 * K, size: 256 * K, flags: MEMBLOCK_RSRV_NOINIT }],
  );
  assert.equal(mb.reserved.totalSize, 768 * K);
  mb.free(0, G);
  assert.equal(mb.reserved.cnt, 0);
  assert.equal(mb.reserved.totalSize, 0);
});

test('freeRanges: memory minus reserved, maximal extents', () => {
  const mb = new Memblock();
  mb.addMemory(0, 8 * M);
  mb.addMemory(8 * M, 8 * M, MEMBLOCK_KHO_SCRATCH);
  mb.addMemory(32 * M, M);
  mb.reserve(0, 4 * K);
  mb.reserve(M, M);
  mb.reserve(32 * M + 4 * K, 4 * K);
  assert.deepEqual(
    [...mb.freeRanges()],
    [
      { base: 4 * K, size: M - 4 * K },
      { base: 2 * M, size: 14 * M },
      { base: 32 * M, size: 4 * K },
      { base: 32 * M + 8 * K, size: M - 8 * K },
    ],
  );
  assert.deepEqual([...mb.freeRanges({ scratchOnly: true })], [{ base: 8 * M, size: 8 * M }]);
});

test('thousands of ascending reservations stay correct (the KHO case)', () => {
  const mb = withMemory(4 * G);
  const n = 50_000;
  for (let i = 0; i < n; i++) mb.reserve(i * 8 * K, 4 * K, MEMBLOCK_RSRV_NOINIT);
  assert.equal(mb.reserved.cnt, n);
  assert.equal(mb.reserved.totalSize, n * 4 * K);
  assert.ok(mb.isReserved(4000 * 8 * K, 1));
  assert.ok(!mb.isReserved(4000 * 8 * K + 4 * K, 4 * K));
  // Filling the holes merges everything into one region.
  for (let i = 0; i < n; i++) mb.reserve(i * 8 * K + 4 * K, 4 * K, MEMBLOCK_RSRV_NOINIT);
  assert.equal(mb.reserved.cnt, 1);
  assert.equal(mb.alloc(M, M), 4 * G - M);
});

test('bad ranges are EINVAL', () => {
  const mb = withMemory();
  assert.equal(
    code(() => mb.reserve(-1, 10)),
    'EINVAL',
  );
  assert.equal(
    code(() => mb.reserve(0.5, 10)),
    'EINVAL',
  );
  assert.equal(
    code(() => mb.addMemory(2 ** 53 - 10, 20)),
    'EINVAL',
  );
  assert.equal(
    code(() => mb.free(0, Number.NaN)),
    'EINVAL',
  );
  assert.equal(
    code(() => mb.reserve(0, 0)),
    'none',
  );
  assert.equal(mb.reserved.cnt, 0);
});

test('dump prints like memblock=debug', () => {
  const mb = withMemory(G);
  mb.reserve(0, 4 * K);
  mb.reserve(M, 64 * K, MEMBLOCK_RSRV_NOINIT);
  mb.markScratch(16 * M, 16 * M);
  assert.equal(
    mb.dump(),
    [
      'MEMBLOCK configuration:',
      ' memory size = 0x0000000040000000 reserved size = 0x0000000000011000',
      ' memory.cnt  = 0x3',
      ' memory[0x0]\t[0x0000000000000000-0x0000000000ffffff], 0x0000000001000000 bytes flags: 0x0',
      ' memory[0x1]\t[0x0000000001000000-0x0000000001ffffff], 0x0000000001000000 bytes flags: 0x40',
      ' memory[0x2]\t[0x0000000002000000-0x000000003fffffff], 0x000000003e000000 bytes flags: 0x0',
      ' reserved.cnt  = 0x2',
      ' reserved[0x0]\t[0x0000000000000000-0x0000000000000fff], 0x0000000000001000 bytes flags: 0x0',
      ' reserved[0x1]\t[0x0000000000100000-0x000000000010ffff], 0x0000000000010000 bytes flags: 0x10',
      '',
    ].join('\n'),
  );
});

test('memblock: reservations past the initial room (128 regions) double it and keep every region', () => {
  const mb = withMemory();
  const n = 300;
  for (let i = n - 1; i >= 0; i--)
    mb.reserve(i * 2 * 4 * K, 4 * K, i % 2 === 0 ? 0 : MEMBLOCK_RSRV_NOINIT);
  assert.equal(mb.reserved.cnt, n);
  assert.equal(mb.reserved.totalSize, n * 4 * K);
  for (let i = 0; i < n; i++) {
    assert.equal(mb.isReserved(i * 2 * 4 * K, 4 * K), true);
    assert.equal(mb.isReserved((i * 2 + 1) * 4 * K, 4 * K), false);
  }
  for (let i = 0; i < n; i += 2) mb.free(i * 2 * 4 * K, 4 * K);
  assert.equal(mb.reserved.cnt, n / 2);
  assert.equal(mb.reserved.totalSize, (n / 2) * 4 * K);
});
