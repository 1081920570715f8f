/**
 * The steps of reviving a KHO handover in early boot (kho/early.ts), each
 * alone on a real handover: the scratch handed over, the tree's checksum,
 * the walk, the subtrees, the memory map under the preserved pages.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SETUP } from '../../src/boot/abi.js';
import { decodeBootBlock } from '../../src/boot/bootblock.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { memblockFromMap } from '../../src/kernel/memory-layout.js';
import {
  checkInPreservedMemory,
  checkSubtreesPreserved,
  checkTreeChecksum,
  readHandedScratch,
  walkPreserved,
} from '../../src/kho/early.js';
import { forEachBlock } from '../../src/kho/radix.js';
import { parseRootFdt } from '../../src/kho/root-fdt.js';
import { Machine } from '../../src/machine.js';
import { MemoryMap } from '../../src/memory/memmap.js';
import { E820 } from '../../src/memory/memmap-types.js';
import { code, MiB, smallFdt } from './_helpers.js';

/** A handover written by a kernel whose exec then fails: its boot block, map and root. */
function handover() {
  const m = Machine.create({ size: 32 * MiB });
  const k = Kernel.boot({
    device: m.device,
    platform: {
      execute() {
        throw new Error('the successor is not started');
      },
    },
  });
  for (let i = 0; i < 8; i++) k.kho.preserveFolio(k.allocPages(i % 3)!);
  k.kho.addSubtree('test', smallFdt('test-v1'));
  k.kexec.load();
  assert.throws(() => k.kexec.exec());
  const at = k.kexec.loaded!.segment.base;
  const block = decodeBootBlock(k.device.bytes(at, k.device.size - at));
  const map = MemoryMap.from(block.memoryMap);
  const rootFdt = block.setupData.find((s) => s.type === SETUP.KHO_FDT)!.data;
  const root = parseRootFdt(rootFdt, k.device.size, { crcChecked: true });
  return { device: k.device, block, map, root };
}

test('readHandedScratch: the areas must be scratch in the map handed over, and present', () => {
  const { device, block, map } = handover();
  const ctx = { device, memblock: memblockFromMap(map), setupData: block.setupData };
  const handed = map.entries().filter((r) => r.type === E820.SCRATCH);
  assert.ok(handed.length > 0);
  const scratch = readHandedScratch(ctx, handed);
  assert.ok(scratch.length > 0);
  for (const a of scratch)
    assert.ok(handed.some((r) => r.base <= a.base && a.base + a.size <= r.base + r.size));
  assert.throws(() => readHandedScratch(ctx, []), code('EFAULT'));
  const without = {
    ...ctx,
    setupData: block.setupData.filter((s) => s.type !== SETUP.KHO_SCRATCH),
  };
  assert.throws(() => readHandedScratch(without, handed), /carries no KHO scratch/);
});

test('checkTreeChecksum: one changed byte in a tree page refuses the handover', () => {
  const { device, root } = handover();
  checkTreeChecksum(device, root);
  device.bytes(root.memoryMapPages[0]!, 1)[0]! ^= 1;
  assert.throws(() => checkTreeChecksum(device, root), /checksum mismatch/);
});

test('walkPreserved: every block with its order, and the tree pages the handover lists', () => {
  const { device, root } = handover();
  const walk = walkPreserved(device, root);
  // 8 folios, the subtree's block, and the root-owned blocks the kernel preserves itself.
  assert.ok(walk.blocks >= 9, `${walk.blocks} blocks`);
  assert.deepEqual(
    [...walk.nodePhys].sort((a, b) => a - b),
    [...root.memoryMapPages],
  );
  assert.ok(walk.extents.length > 0);
  const short = { ...root, memoryMapPages: root.memoryMapPages.slice(1) };
  assert.throws(() => walkPreserved(device, short), /the tree has \d+ pages, the handover lists/);
  assert.equal(walkPreserved(device, { ...root, memoryMapPhys: 0 }).blocks, 0);
});

test('checkSubtreesPreserved: a subtree that is not a preserved block is refused', () => {
  const { device, root } = handover();
  const walk = walkPreserved(device, root);
  checkSubtreesPreserved(root, walk);
  const pfns = new Set<number>();
  forEachBlock(walk.blockRuns, (pfn) => pfns.add(pfn));
  let free = 1;
  while (pfns.has(free)) free++;
  const stray = { ...root, subtrees: new Map([...root.subtrees, ['stray', free * 4096]]) };
  assert.throws(() => checkSubtreesPreserved(stray, walk), /subtree 'stray' at 0x/);
  // Inside a block of several pages but not at its head: refused too.
  let inside = -1;
  forEachBlock(walk.blockRuns, (pfn, order) => {
    if (order > 0 && inside < 0) inside = pfn + 1;
  });
  assert.ok(inside > 0, 'the handover has a block of order > 0');
  const within = { ...root, subtrees: new Map([...root.subtrees, ['within', inside * 4096]]) };
  assert.throws(() => checkSubtreesPreserved(within, walk), /subtree 'within' at 0x/);
});

test('checkInPreservedMemory: every preserved run and tree page lies in preserved memory of the map', () => {
  const { device, map, root } = handover();
  const walk = walkPreserved(device, root);
  checkInPreservedMemory(map, walk);
  const first = map.entries().find((r) => r.type === E820.PRESERVED)!;
  map.update(first.base, first.size, E820.PRESERVED, E820.RESERVED);
  assert.throws(() => checkInPreservedMemory(map, walk), /not preserved memory in the map/);
});
