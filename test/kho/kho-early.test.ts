import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeBootBlock } from '../../src/boot/bootblock.js';
import { defaultEarlyParams } from '../../src/boot/params.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { memblockFromMap } from '../../src/kernel/memory-layout.js';
import { khoEarlyInit, khoScratchInit } from '../../src/kho/early.js';
import { Machine } from '../../src/machine.js';
import { MemoryMap } from '../../src/memory/memmap.js';
import { E820 } from '../../src/memory/memmap-types.js';

const MiB = 1024 * 1024;

/** khoEarlyInit over a real handover, with the memory map handed over edited by `edit`. */
function earlyWith(
  edit: (map: MemoryMap, preserved: { base: number; size: number }[], gaps: Set<number>) => void,
) {
  const m = Machine.create({ size: 32 * MiB });
  // A platform that never starts the successor: exec writes the boot block, then fails.
  const k1 = Kernel.boot({
    device: m.device,
    platform: {
      execute() {
        throw new Error('the successor is not started');
      },
    },
  });
  // More separate runs than KHO_MAX_MAP_MARKS, so the extents close gaps between them.
  const gaps = new Set<number>();
  for (let i = 0; i < 80; i++) {
    const f = k1.allocPages(0)!;
    k1.kho.preserveFolio(f);
    gaps.add(k1.allocPages(0)!.pfn); // a gap between the runs
  }
  k1.kexec.load();
  // The exec fails after the boot block is written; k1 and its tree stay as they were.
  assert.throws(() => k1.kexec.exec());
  const at = k1.kexec.loaded!.segment.base;
  const block = decodeBootBlock(k1.device.bytes(at, k1.device.size - at));
  const map = MemoryMap.from(block.memoryMap);
  const preserved = map.entries().filter((r) => r.type === E820.PRESERVED);
  assert.ok(preserved.length > 0);
  edit(map, preserved, gaps);
  const memblock = memblockFromMap(map);
  const log: string[] = [];
  const ctx = {
    device: k1.device,
    memoryMap: map,
    memblock,
    params: defaultEarlyParams().parseAll(''),
    setupData: block.setupData,
    nodes: [{ base: 0, size: k1.device.size }],
    log: (l: string) => log.push(l),
  };
  const early = khoEarlyInit(ctx);
  return { early, memblock, map, preserved, log, ctx };
}

test('KHO early: preserved blocks where the map says reserved refuse revival; nothing becomes memory', () => {
  const { early, memblock, preserved } = earlyWith((map, preserved) => {
    for (const r of preserved) map.update(r.base, r.size, E820.PRESERVED, E820.RESERVED);
  });
  assert.equal(early.incoming, null);
  assert.match(early.revivalRefused ?? '', /not preserved memory in the map/);
  for (const r of preserved) assert.equal(memblock.isMemory(r.base, r.size), false);
});

test('KHO early: only the preserved parts of an extent become memory, not a reserved gap inside it', () => {
  const hole = { addr: 0, size: 4096 };
  const { early, memblock } = earlyWith((map, preserved, gaps) => {
    // A page inside a preserved extent that is neither a block nor a tree page: reserved here.
    for (const r of preserved) {
      for (let a = r.base; a < r.base + r.size && hole.addr === 0; a += 4096) {
        if (gaps.has(a / 4096)) hole.addr = a;
      }
    }
    assert.ok(hole.addr > 0);
    map.update(hole.addr, hole.size, E820.PRESERVED, E820.RESERVED);
  });
  assert.ok(early.incoming !== null, early.revivalRefused);
  assert.equal(memblock.isMemory(hole.addr, hole.size), false);
});

test('KHO early: a revival, a refusal, a cold boot and KHO off all decide the same fields, in one order', () => {
  // Code optimized on one shape deoptimizes on another: a successor's restore ran KHO's
  // checks compiled, by its rehearsals, for a shape it did not have (a deopt every handover).
  const revived = earlyWith(() => {}).early;
  const refused = earlyWith((map, preserved) => {
    for (const r of preserved) map.update(r.base, r.size, E820.PRESERVED, E820.RESERVED);
  });
  const cold = khoScratchInit(refused.ctx, refused.early);
  const off = khoEarlyInit(refused.ctx, { disabled: 'kho=off' });
  assert.ok(revived.incoming !== null, revived.revivalRefused);
  assert.ok(refused.early.revivalRefused);
  assert.ok(cold.scratch.length > 0);
  assert.equal(off.enabled, false);
  const fields = Object.keys(revived);
  for (const e of [refused.early, cold, off]) assert.deepEqual(Object.keys(e), fields);
});
