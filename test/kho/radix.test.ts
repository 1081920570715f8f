import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { LivekexecError } from '../../src/base/errors.js';
import {
  KHO_BITMAP_BITS,
  KHO_INNER_LEVELS,
  KHO_TABLE_ENTRIES,
  KHO_TREE_DEPTH,
} from '../../src/kho/abi.js';
import { KhoError } from '../../src/kho/errors.js';
import { coalescedExtents, type KhoExtent, KhoRadixTree } from '../../src/kho/radix.js';
import type { MemoryDevice } from '../../src/memory/device.js';
import { PAGE_SIZE } from '../../src/memory/device.js';
import { HeapDevice } from '../../src/memory/heap.js';
import { RangePageSource, SparseDevice } from './_device.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

interface Block {
  pfn: number;
  order: number;
}

/** A device whose last `metaBytes` feed the tree; blocks live below. */
function setup(size: number, metaBytes: number) {
  const device = new HeapDevice(size);
  const source = new RangePageSource(size - metaBytes, size);
  const tree = new KhoRadixTree(device, source);
  return { device, source, tree, dataPages: (size - metaBytes) / PAGE_SIZE };
}

function walkAll(device: MemoryDevice, root: number): Block[] {
  const out: Block[] = [];
  KhoRadixTree.walk(device, root, (pfn, order) => out.push({ pfn, order }));
  return out;
}

/** The walk's documented order: higher orders first, pfn increasing within an order. */
function walkOrder(blocks: Block[]): Block[] {
  return [...blocks].sort((a, b) => b.order - a.order || a.pfn - b.pfn);
}

/** Random distinct blocks inside [0, dataPages). */
function blocksArb(dataPages: number, maxOrder: number, maxLength: number) {
  return fc.uniqueArray(
    fc
      .integer({ min: 0, max: maxOrder })
      .chain((order) =>
        fc
          .integer({ min: 0, max: Math.floor(dataPages / 2 ** order) - 1 })
          .map((i) => ({ pfn: i * 2 ** order, order })),
      ),
    { maxLength, selector: (b) => `${b.order}:${b.pfn}` },
  );
}

function expectKho(code: string, pattern?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof KhoError, `expected KhoError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (pattern) assert.match(err.message, pattern);
    return true;
  };
}

function readU64(device: MemoryDevice, phys: number): number {
  const v = device.view(phys, 8);
  return v.getUint32(0, true) + v.getUint32(4, true) * 2 ** 32;
}

function writeU64(device: MemoryDevice, phys: number, value: number): void {
  const v = device.view(phys, 8);
  v.setUint32(0, value >>> 0, true);
  v.setUint32(4, Math.floor(value / 2 ** 32), true);
}

/** The single root-to-leaf path of a tree holding keys of one leaf: [node phys, slot taken]. */
function onlyPath(device: MemoryDevice, root: number): { phys: number; slot: number }[] {
  const path: { phys: number; slot: number }[] = [];
  let node = root;
  for (let level = KHO_INNER_LEVELS; level >= 1; level--) {
    let slot = -1;
    for (let i = 0; i < KHO_TABLE_ENTRIES; i++) {
      if (readU64(device, node + i * 8) !== 0) {
        slot = i;
        break;
      }
    }
    assert.ok(slot >= 0, `level ${level} node has a child`);
    path.push({ phys: node, slot });
    node = readU64(device, node + slot * 8);
  }
  path.push({ phys: node, slot: -1 });
  return path;
}

describe('KhoRadixTree: preserve and walk', () => {
  it('round-trips random (pfn, order) sets in walk order', () => {
    const { device, source, dataPages } = setup(1 * GiB, 4 * MiB);
    fc.assert(
      fc.property(blocksArb(dataPages, 17, 300), (blocks) => {
        const tree = new KhoRadixTree(device, source);
        for (const b of blocks) tree.preserve(b.pfn, b.order);
        for (const b of blocks) assert.ok(tree.isPreserved(b.pfn, b.order));
        const seen = walkAll(device, tree.rootPhys);
        assert.deepEqual(seen, walkOrder(blocks));
        const byOrder = new Map<number, number>();
        for (const b of blocks) byOrder.set(b.order, (byOrder.get(b.order) ?? 0) + 1);
        assert.deepEqual(
          [...tree.preservedByOrder()],
          [...byOrder].sort((a, b) => a[0] - b[0]),
        );
        tree.clear();
        assert.equal(source.inUse.size, 0);
      }),
      { numRuns: 150 },
    );
  });

  it('reports the pages it uses, and the successor finds the same ones', () => {
    const { device, tree } = setup(64 * MiB, 1 * MiB);
    tree.preserve(3, 0);
    tree.preserve(64, 6);
    tree.preserve(8192, 13);
    const result = KhoRadixTree.walk(device, tree.rootPhys, () => {});
    assert.deepEqual([...tree.metadataPages()].sort(), [...result.nodePhys].sort());
    assert.equal(result.blocks, 3);
    assert.equal(result.pages, 1 + 64 + 8192);
    assert.equal(tree.preservedPages(), 1 + 64 + 8192);
    // Order 0 takes root slot 2 (its own 5-node path); orders 6 and 13 share
    // root slot 0 and its level-4 node, then part (4 nodes each).
    assert.equal(tree.metadataPageCount, 1 + 5 + 1 + 4 + 4);
  });

  it('isPreserved is exact: another order covering the page does not count', () => {
    const { tree } = setup(64 * MiB, 1 * MiB);
    tree.preserve(512, 9);
    assert.equal(tree.isPreserved(512, 9), true);
    assert.equal(tree.isPreserved(512, 0), false);
    assert.equal(tree.isPreserved(1024, 9), false);
  });

  it('keeps exact keys beyond 32 bits (pfn up to 2^41, orders up to 40)', () => {
    const device = new SparseDevice(2 ** 53 - PAGE_SIZE);
    const source = new RangePageSource(PAGE_SIZE, 1 * MiB);
    const tree = new KhoRadixTree(device, source);
    const blocks: Block[] = [
      { pfn: device.pages - 1, order: 0 },
      { pfn: 2 ** 39, order: 39 },
      { pfn: 0, order: 40 },
      { pfn: 2 ** 33 + 2 ** 20, order: 20 },
      { pfn: 2 ** 32 + 1, order: 0 },
      { pfn: 2 ** 31, order: 31 },
      { pfn: 0, order: 0 },
    ];
    for (const b of blocks) tree.preserve(b.pfn, b.order);
    assert.deepEqual(walkAll(device, tree.rootPhys), walkOrder(blocks));
    for (const b of blocks) assert.ok(tree.isPreserved(b.pfn, b.order));
    assert.equal(tree.isPreserved(2 ** 32, 0), false);
    for (const b of blocks) tree.unpreserve(b.pfn, b.order);
    assert.equal(tree.metadataPageCount, 0);
  });

  it('counts its changes: preserve, unpreserve and clear move the count, lookups and refusals do not', () => {
    const { tree } = setup(64 * MiB, 1 * MiB);
    const at = () => tree.changes;
    const c0 = at();
    tree.preserve(8, 3);
    const c1 = at();
    assert.ok(c1 > c0);
    assert.throws(() => tree.preserve(8, 3), expectKho('EEXIST'));
    tree.isPreserved(8, 3);
    assert.equal(at(), c1);
    tree.unpreserve(8, 3);
    const c2 = at();
    assert.ok(c2 > c1);
    assert.throws(() => tree.unpreserve(8, 3), expectKho('ENOENT'));
    assert.equal(at(), c2);
    tree.preserve(0, 0);
    const c3 = at();
    tree.clear();
    assert.ok(at() > c3);
  });

  it('finds bits and slots at the edges of the chunks a walk skips when zero', () => {
    // Leaves skip 2048-bit chunks and inner nodes 32-slot chunks that are all zero:
    // bits 0, 31, 32, 2047, 2048, 32767 of a leaf, in leaves at level-1 slots 0, 31, 32, 511.
    const device = new SparseDevice(64 * GiB + 1 * MiB);
    const source = new RangePageSource(64 * GiB, 64 * GiB + 1 * MiB);
    const tree = new KhoRadixTree(device, source);
    const blocks: Block[] = [];
    for (const slot of [0, 31, 32, 511]) {
      for (const bit of [0, 31, 32, 2047, 2048, 32767]) {
        blocks.push({ pfn: slot * KHO_BITMAP_BITS + bit, order: 0 });
      }
    }
    for (const b of blocks) tree.preserve(b.pfn, b.order);
    assert.deepEqual(walkAll(device, tree.rootPhys), walkOrder(blocks));
  });

  it('16 GiB of order-0 pages costs 128 leaf bitmaps (512 KiB) plus 5 inner nodes', () => {
    const { device, tree, source } = setup(16 * GiB + 1 * MiB, 1 * MiB);
    const pages = (16 * GiB) / PAGE_SIZE;
    for (let pfn = 0; pfn < pages; pfn++) tree.preserve(pfn, 0);
    const leaves = pages / KHO_BITMAP_BITS;
    assert.equal(leaves, 128);
    assert.equal(tree.metadataPageCount, leaves + KHO_INNER_LEVELS);
    assert.equal(source.inUse.size, 133);
    assert.deepEqual([...tree.preservedByOrder()], [[0, pages]]);
    const extents = coalescedExtents(device, tree.rootPhys, 4, { includeMetadata: false });
    assert.deepEqual(extents, [{ phys: 0, size: 16 * GiB }]);
    // The tree's pages sit right above the data here, so they merge into one extent.
    const withMeta = coalescedExtents(device, tree.rootPhys, 4);
    assert.deepEqual(withMeta, [{ phys: 0, size: 16 * GiB + 133 * PAGE_SIZE }]);
  });
});

describe('KhoRadixTree: unpreserve frees what it no longer needs', () => {
  it('removes blocks and returns every page once all are gone', () => {
    const { device, source, dataPages } = setup(1 * GiB, 4 * MiB);
    fc.assert(
      fc.property(
        blocksArb(dataPages, 12, 200).chain((blocks) =>
          fc.tuple(fc.constant(blocks), fc.shuffledSubarray(blocks, { minLength: blocks.length })),
        ),
        fc.nat(),
        ([blocks, shuffled], cut) => {
          const tree = new KhoRadixTree(device, source);
          for (const b of blocks) tree.preserve(b.pfn, b.order);
          const half = blocks.length === 0 ? 0 : cut % (blocks.length + 1);
          for (const b of shuffled.slice(0, half)) tree.unpreserve(b.pfn, b.order);
          const rest = shuffled.slice(half);
          assert.deepEqual(walkAll(device, tree.rootPhys), walkOrder(rest));
          for (const b of shuffled.slice(0, half))
            assert.equal(tree.isPreserved(b.pfn, b.order), false);
          const walked = KhoRadixTree.walk(device, tree.rootPhys, () => {});
          assert.deepEqual([...tree.metadataPages()].sort(), [...walked.nodePhys].sort());
          for (const b of rest) tree.unpreserve(b.pfn, b.order);
          assert.equal(tree.rootPhys, 0);
          assert.equal(tree.metadataPageCount, 0);
          assert.equal(source.inUse.size, 0);
          assert.equal(tree.preservedByOrder().size, 0);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('frees a leaf as soon as it empties and reuses nothing stale', () => {
    const { device, tree, source } = setup(64 * MiB, 1 * MiB);
    tree.preserve(7, 0);
    assert.equal(source.inUse.size, KHO_TREE_DEPTH);
    tree.unpreserve(7, 0);
    assert.equal(source.inUse.size, 0);
    assert.equal(tree.rootPhys, 0);
    // The cached leaf was freed: the next preserve must build a fresh path.
    tree.preserve(7, 0);
    assert.equal(source.inUse.size, KHO_TREE_DEPTH);
    assert.deepEqual(walkAll(device, tree.rootPhys), [{ pfn: 7, order: 0 }]);
  });
});

describe('KhoRadixTree: errors', () => {
  it('rejects bad blocks with EINVAL', () => {
    const { tree, device } = setup(64 * MiB, 1 * MiB);
    assert.throws(() => tree.preserve(3, 1), expectKho('EINVAL', /multiple/));
    assert.throws(() => tree.preserve(1.5, 0), expectKho('EINVAL'));
    assert.throws(() => tree.preserve(-1, 0), expectKho('EINVAL'));
    assert.throws(() => tree.preserve(0, -1), expectKho('EINVAL', /order/));
    assert.throws(() => tree.preserve(0, 53), expectKho('EINVAL', /order/));
    assert.throws(() => tree.preserve(device.pages, 0), expectKho('EINVAL', /outside/));
    assert.throws(() => tree.preserve(0, 15), expectKho('EINVAL', /outside/));
    assert.throws(() => tree.isPreserved(1, 3), expectKho('EINVAL'));
    assert.equal(tree.metadataPageCount, 0);
  });

  it('EEXIST on a second preserve, ENOENT on unpreserving what is not there', () => {
    const { tree } = setup(64 * MiB, 1 * MiB);
    tree.preserve(16, 4);
    assert.throws(() => tree.preserve(16, 4), expectKho('EEXIST'));
    assert.throws(() => tree.unpreserve(16, 0), expectKho('ENOENT'));
    assert.throws(() => tree.unpreserve(32, 4), expectKho('ENOENT'));
    tree.unpreserve(16, 4);
    assert.throws(() => tree.unpreserve(16, 4), expectKho('ENOENT'));
  });

  it('ENOMEM half-way through a path unwinds the nodes it created', () => {
    const device = new HeapDevice(64 * MiB);
    const small = new RangePageSource(60 * MiB, 60 * MiB + 3 * PAGE_SIZE);
    const tree = new KhoRadixTree(device, small);
    assert.throws(() => tree.preserve(0, 0), expectKho('ENOMEM'));
    assert.equal(tree.rootPhys, 0);
    assert.equal(tree.metadataPageCount, 0);
    assert.equal(small.inUse.size, 0);

    const enough = new RangePageSource(60 * MiB, 60 * MiB + 7 * PAGE_SIZE);
    const tree2 = new KhoRadixTree(device, enough);
    tree2.preserve(0, 0); // 6 pages; one left
    assert.throws(() => tree2.preserve(0, 1), expectKho('ENOMEM'));
    assert.equal(tree2.metadataPageCount, KHO_TREE_DEPTH);
    assert.deepEqual(walkAll(device, tree2.rootPhys), [{ pfn: 0, order: 0 }]);
  });

  it('a page source that throws is ENOMEM; one returning a bad page is EINVAL', () => {
    const device = new HeapDevice(64 * MiB);
    const throwing = new KhoRadixTree(device, {
      allocPage: () => {
        throw new Error('buddy empty');
      },
      freePage: () => {},
    });
    assert.throws(() => throwing.preserve(0, 0), expectKho('ENOMEM', /buddy empty/));
    // A typed refusal keeps its code and stays the cause (PKRAM's EINVAL came out as ENOMEM).
    const refusal = new LivekexecError('EINVAL', 'page source is sealed');
    const typed = new KhoRadixTree(device, {
      allocPage: () => {
        throw refusal;
      },
      freePage: () => {},
    });
    assert.throws(
      () => typed.preserve(0, 0),
      (e: unknown) => e instanceof KhoError && e.code === 'EINVAL' && e.cause === refusal,
    );
    for (const bad of [123, device.size, -PAGE_SIZE, 0.5]) {
      const tree = new KhoRadixTree(device, { allocPage: () => bad, freePage: () => {} });
      assert.throws(() => tree.preserve(0, 0), expectKho('EINVAL', /unusable/));
    }
  });
});

describe('KhoRadixTree.walk: untrusted trees', () => {
  function oneBlockTree() {
    const { device, tree } = setup(64 * MiB, 1 * MiB);
    tree.preserve(5, 0);
    return { device, tree, root: tree.rootPhys, path: onlyPath(device, tree.rootPhys) };
  }

  function assertRefused(device: MemoryDevice, root: number, pattern: RegExp, limits = {}) {
    let visits = 0;
    assert.throws(
      () =>
        KhoRadixTree.walk(
          device,
          root,
          () => {
            visits++;
          },
          limits,
        ),
      expectKho('EFAULT', pattern),
    );
    assert.equal(visits, 0, 'a refused tree visits nothing');
  }

  it('an empty tree (root 0) visits nothing', () => {
    const device = new HeapDevice(1 * MiB);
    const r = KhoRadixTree.walk(device, 0, () => assert.fail('no visit'));
    assert.deepEqual(r, { nodePhys: [], blocks: 0, pages: 0 });
  });

  it('refuses a pointer outside the device', () => {
    const { device, root, path } = oneBlockTree();
    writeU64(device, path[2].phys + path[2].slot * 8, device.size);
    assertRefused(device, root, /outside/);
    assertRefused(device, device.size + PAGE_SIZE, /outside/);
  });

  it('refuses an unaligned pointer and an unaligned root', () => {
    const { device, root, path } = oneBlockTree();
    assertRefused(device, root + 8, /unaligned/);
    assertRefused(device, -PAGE_SIZE, /not a physical address/);
    assertRefused(device, 2 ** 60, /not a physical address/);
    const slot = path[4].phys + path[4].slot * 8;
    writeU64(device, slot, path[5].phys + 8);
    assertRefused(device, root, /unaligned/);
  });

  it('refuses a pointer above 2^53', () => {
    const { device, root, path } = oneBlockTree();
    device.view(path[1].phys + path[1].slot * 8 + 4, 4).setUint32(0, 0x0020_0000, true);
    assertRefused(device, root, /2\^53/);
  });

  it('refuses a cycle back to the root and a node shared by two slots', () => {
    const a = oneBlockTree();
    writeU64(a.device, a.path[3].phys + a.path[3].slot * 8, a.root);
    assertRefused(a.device, a.root, /reached twice/);
    const b = oneBlockTree();
    writeU64(b.device, b.path[3].phys + ((b.path[3].slot + 1) % 512) * 8, b.path[4].phys);
    assertRefused(b.device, b.root, /reached twice/);
  });

  it('refuses root slots beyond the key range', () => {
    const { device, root, path } = oneBlockTree();
    writeU64(device, root + 4 * 8, path[1].phys);
    assertRefused(device, root, /key range/);
  });

  it('refuses a bit past the device end before visiting the good block before it', () => {
    const { device, root, path } = oneBlockTree();
    const leaf = path[KHO_INNER_LEVELS].phys;
    const pfn = device.pages; // same leaf as pfn 5 (order 0 keys 2^52 + pfn)
    device.bytes(leaf + (pfn >>> 3), 1)[0] |= 1 << (pfn & 7);
    assertRefused(device, root, /outside/);
  });

  it('refuses key 0 (no order marker)', () => {
    const device = new HeapDevice(1 * MiB);
    for (let level = 0; level < KHO_INNER_LEVELS; level++) {
      writeU64(device, (level + 1) * PAGE_SIZE, (level + 2) * PAGE_SIZE);
    }
    device.bytes((KHO_INNER_LEVELS + 1) * PAGE_SIZE, 1)[0] = 1;
    assertRefused(device, PAGE_SIZE, /key 0/);
  });

  it('enforces maxNodes and maxBlocks', () => {
    const { device, root } = oneBlockTree();
    assertRefused(device, root, /more than 3 nodes/, { maxNodes: 3 });
    assertRefused(device, root, /more than 0 preserved blocks/, { maxBlocks: 0 });
    assert.equal(
      KhoRadixTree.walk(device, root, () => {}, { maxNodes: 6, maxBlocks: 1 }).blocks,
      1,
    );
  });

  it('random damage: EFAULT with no visit, or only blocks inside the device', () => {
    const size = 64 * MiB;
    const metaStart = size - 1 * MiB;
    const { device, tree, dataPages } = setup(size, 1 * MiB);
    const blocks = fc.sample(blocksArb(dataPages, 12, 80), { numRuns: 1, seed: 7 })[0];
    for (const b of [...blocks, { pfn: 5, order: 0 }, { pfn: 1024, order: 10 }]) {
      if (!tree.isPreserved(b.pfn, b.order)) tree.preserve(b.pfn, b.order);
    }
    const root = tree.rootPhys;
    const nodes = [...tree.metadataPages()];
    // Offsets worth hitting: used slots of inner nodes and set bytes of leaves.
    const hot: number[] = [];
    for (const phys of nodes) {
      const bytes = device.bytes(phys, PAGE_SIZE);
      for (let off = 0; off < PAGE_SIZE; off++) if (bytes[off] !== 0) hot.push(phys + off);
    }
    const snapshot = device.bytes(metaStart, 1 * MiB).slice();
    const damage = fc.oneof(
      // a byte at a random place in a node
      fc.record({
        at: fc.nat(nodes.length - 1).chain((n) => fc.nat(PAGE_SIZE - 1).map((o) => nodes[n] + o)),
        byte: fc.nat(255),
      }),
      // a byte next to live data
      fc.record({
        at: fc
          .nat(hot.length - 1)
          .chain((h) => fc.integer({ min: -8, max: 8 }).map((d) => hot[h] + d)),
        byte: fc.nat(255),
      }),
      // a whole slot rewritten to a page address, maybe another node (cycles, sharing)
      fc.record({
        slotAt: fc
          .nat(nodes.length - 1)
          .chain((n) => fc.nat(KHO_TABLE_ENTRIES - 1).map((s) => nodes[n] + s * 8)),
        target: fc.oneof(
          fc.constantFrom(...nodes),
          fc.nat(device.pages + 16).map((p) => p * PAGE_SIZE),
          fc.tuple(fc.nat(2 ** 20), fc.nat(2 ** 20)).map(([h, l]) => h * 2 ** 20 + l),
        ),
      }),
    );
    fc.assert(
      fc.property(fc.array(damage, { minLength: 1, maxLength: 6 }), (hits) => {
        device.bytes(metaStart, 1 * MiB).set(snapshot);
        for (const h of hits) {
          if ('slotAt' in h) writeU64(device, h.slotAt, h.target);
          else if (h.at >= metaStart && h.at < size) device.bytes(h.at, 1)[0] = h.byte;
        }
        const seen: Block[] = [];
        try {
          const r = KhoRadixTree.walk(device, root, (pfn, order) => {
            seen.push({ pfn, order });
          });
          assert.equal(r.blocks, seen.length);
          for (const b of seen) {
            assert.ok(Number.isInteger(b.pfn) && b.pfn % 2 ** b.order === 0);
            assert.ok(b.pfn + 2 ** b.order <= device.pages, `block ${b.pfn}/${b.order} inside`);
          }
          assert.equal(new Set(r.nodePhys).size, r.nodePhys.length);
        } catch (err) {
          assert.ok(err instanceof KhoError, `only KhoError escapes, got ${String(err)}`);
          assert.equal(err.code, 'EFAULT');
          assert.equal(seen.length, 0, 'a refused tree visits nothing');
        }
      }),
      { numRuns: 2500 },
    );
  });
});

describe('coalescedExtents', () => {
  function covered(extents: KhoExtent[], phys: number): boolean {
    return extents.some((e) => phys >= e.phys && phys < e.phys + e.size);
  }

  it('merges neighbours, then closes the smallest gaps', () => {
    const { device, tree } = setup(64 * MiB, 1 * MiB);
    tree.preserve(0, 0);
    tree.preserve(1, 0);
    tree.preserve(4, 2);
    tree.preserve(100, 0);
    const ext = (max: number) =>
      coalescedExtents(device, tree.rootPhys, max, { includeMetadata: false });
    const p = (pfn: number, pages: number) => ({ phys: pfn * PAGE_SIZE, size: pages * PAGE_SIZE });
    assert.deepEqual(ext(10), [p(0, 2), p(4, 4), p(100, 1)]);
    assert.deepEqual(ext(2), [p(0, 8), p(100, 1)]);
    assert.deepEqual(ext(1), [p(0, 101)]);
    assert.deepEqual(coalescedExtents(device, 0, 3), []);
    assert.throws(() => ext(0), expectKho('EINVAL'));
    assert.throws(() => ext(1.5), expectKho('EINVAL'));
  });

  it('covers every preserved and metadata page within maxEntries ranges', () => {
    const { device, source, dataPages } = setup(256 * MiB, 2 * MiB);
    fc.assert(
      fc.property(blocksArb(dataPages, 10, 120), fc.integer({ min: 1, max: 12 }), (blocks, max) => {
        const tree = new KhoRadixTree(device, source);
        for (const b of blocks) tree.preserve(b.pfn, b.order);
        const extents = coalescedExtents(device, tree.rootPhys, max);
        assert.ok(extents.length <= max);
        for (let i = 1; i < extents.length; i++) {
          assert.ok(extents[i - 1].phys + extents[i - 1].size < extents[i].phys, 'sorted, apart');
        }
        for (const b of blocks) {
          assert.ok(covered(extents, b.pfn * PAGE_SIZE));
          assert.ok(covered(extents, (b.pfn + 2 ** b.order - 1) * PAGE_SIZE));
        }
        for (const m of tree.metadataPages()) assert.ok(covered(extents, m));
        // With room for every run, nothing is rounded: exactly the union.
        const exact = coalescedExtents(device, tree.rootPhys, 1e9);
        const union = new Uint8Array(device.pages);
        for (const b of blocks) union.fill(1, b.pfn, b.pfn + 2 ** b.order);
        for (const m of tree.metadataPages()) union[m / PAGE_SIZE] = 1;
        const want = union.reduce((s, v) => s + v, 0);
        assert.equal(
          exact.reduce((s, e) => s + e.size / PAGE_SIZE, 0),
          want,
        );
        tree.clear();
      }),
      { numRuns: 100 },
    );
  });
});
