import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  FDT_NOP,
  FDT_TAGSIZE,
  HDR_OFF_DT_STRINGS,
  HDR_OFF_DT_STRUCT,
  HDR_SIZE_DT_STRUCT,
  HDR_TOTALSIZE,
} from '../../src/fdt/format.js';
import { KhoError } from '../../src/kho/errors.js';
import { parseRootFdt } from '../../src/kho/root-fdt.js';
import { Machine } from '../../src/machine.js';
import { PAGE_SIZE } from '../../src/memory/device.js';
import { readDeviceHeader } from '../../src/memory/header.js';
import { E820 } from '../../src/memory/memmap-types.js';
import { code, MiB, smallFdt } from './_helpers.js';

test('finalize and abort follow debugfs: EBUSY while finalized, EEXIST twice, ENOENT without', () => {
  const k = Machine.create({ size: 16 * MiB }).boot();
  const f = k.allocPages(0)!;
  const g = k.allocPages(1)!;
  k.kho.preserveFolio(f);
  const root = k.kho.finalize();
  assert.ok(root.length > 0);
  assert.throws(() => k.kho.finalize(), code('EEXIST'));
  assert.throws(() => k.kho.preserveFolio(g), code('EBUSY'));
  assert.throws(() => k.kho.unpreserveFolio(f), code('EBUSY'));
  assert.throws(() => k.kho.preservePages(g.pfn, 2), code('EBUSY'));
  assert.throws(() => k.kho.addSubtree('x', smallFdt('x')), code('EBUSY'));
  k.kho.abort();
  assert.throws(() => k.kho.abort(), code('ENOENT'));
  k.kho.preserveFolio(g);
  k.kho.unpreserveFolio(f);
});

test('preserving memory inside scratch is EINVAL; free pages and foreign folios are refused', () => {
  const k = Machine.create({ size: 16 * MiB }).boot();
  const s = k.kho.scratch[0];
  assert.ok(s);
  assert.throws(() => k.kho.preservePages(s.base / PAGE_SIZE, 1), code('EINVAL'));
  assert.throws(() => k.kho.preserveFolio({ pfn: s.base / PAGE_SIZE, order: 0 }), code('EINVAL'));
  const f = k.allocPages(2)!;
  assert.throws(() => k.kho.preserveFolio({ pfn: f.pfn, order: 1 }), code('EINVAL'), 'wrong order');
  k.freePages(f);
  assert.throws(() => k.kho.preservePages(f.pfn, 4), code('EINVAL'), 'free pages');
  const g = k.allocPages(0)!;
  k.kho.preserveFolio(g);
  assert.throws(
    () => k.kho.preserveFolio(g),
    (e) => e instanceof KhoError && ['EEXIST', 'EINVAL'].includes(e.code),
  );
  assert.throws(() => k.freePages(g), 'a preserved folio cannot be freed');
  k.kho.unpreserveFolio(g);
  k.freePages(g);
});

test('kexec places its boot block inside the scratch areas', () => {
  const k = Machine.create({ size: 32 * MiB }).boot();
  const { segment } = k.kexec.load();
  assert.ok(
    k.kho.scratch.some(
      (a) => segment.base >= a.base && segment.base + segment.size <= a.base + a.size,
    ),
  );
  const free = k.pages.stats().freePages;
  k.kexec.unload();
  assert.equal(
    k.pages.stats().freePages,
    free,
    'scratch segments never come from the page allocator',
  );
});

test('folios, page ranges, page lists and alloc-preserve come back at the same addresses', () => {
  const m = Machine.create({ size: 32 * MiB });
  const k1 = m.boot();
  const folio = k1.allocPages(3)!;
  k1.folioBytes(folio).fill(0x11);
  k1.kho.preserveFolio(folio);
  const range = k1.allocPages(4)!; // 16 pages, preserved as a range of 13 pages
  k1.kho.preservePages(range.pfn + 1, 13);
  const scattered = [k1.allocPages(0)!, k1.allocPages(2)!, k1.allocPages(0)!];
  scattered.forEach((f, i) => {
    k1.folioBytes(f).fill(0x20 + i);
  });
  const list = k1.kho.preservePageList(scattered);
  const ap = k1.kho.allocPreserve(3 * PAGE_SIZE);
  assert.equal(ap.order, 2);
  k1.folioBytes(ap).fill(0x77);
  k1.kexec.load();
  const k2 = k1.kexec.exec();
  assert.ok(k2.kho.isKhoBoot());
  const f2 = k2.kho.restoreFolio(folio.pfn * PAGE_SIZE);
  assert.deepEqual(f2, folio);
  assert.ok(k2.folioBytes(f2).every((b) => b === 0x11));
  assert.throws(
    () => k2.kho.restoreFolio(folio.pfn * PAGE_SIZE),
    code('EINVAL'),
    'restored once only',
  );
  assert.deepEqual(k2.kho.restorePages((range.pfn + 1) * PAGE_SIZE, 13), {
    base: (range.pfn + 1) * PAGE_SIZE,
    size: 13 * PAGE_SIZE,
  });
  const back = k2.kho.restorePageList(list);
  assert.deepEqual(back, scattered);
  back.forEach((f, i) => {
    assert.ok(k2.folioBytes(f).every((b) => b === 0x20 + i));
  });
  assert.equal(k2.device.bytes(ap.pfn * PAGE_SIZE, 1)[0], 0x77);
  k2.kho.restoreFree(ap.pfn * PAGE_SIZE);
  assert.equal(k2.kho.unclaimed().blocks, 0);
  // Restored folios are ordinary allocations now.
  k2.freePages(f2);
  for (const f of back) k2.freePages(f);
});

test('a preserved folio that nobody restores is carried to the next generation, or freed on request', () => {
  const m = Machine.create({ size: 32 * MiB });
  const k1 = m.boot();
  const f = k1.allocPages(1)!;
  k1.folioBytes(f).fill(5);
  k1.kho.preserveFolio(f);
  k1.kho.addSubtree('orphan', smallFdt('vendor,unknown-v1'));
  k1.kexec.load();
  const k2 = k1.kexec.exec();
  assert.deepEqual(k2.kho.unclaimed().subtrees, ['orphan']);
  assert.equal(k2.kho.unclaimed().blocks, 2);
  k2.kexec.load();
  const k3 = k2.kexec.exec(); // k2 claimed nothing
  assert.equal(k3.device.bytes(f.pfn * PAGE_SIZE, 1)[0], 5);
  assert.deepEqual(k3.kho.unclaimed().subtrees, ['orphan']);
  assert.equal(k3.kho.retrieveSubtree('orphan').getString(0, 'compatible'), 'vendor,unknown-v1');
  const free = k3.pages.stats().freePages;
  assert.equal(k3.kho.releaseUnclaimed(), 2 * PAGE_SIZE);
  assert.equal(k3.pages.stats().freePages, free + 2);
  assert.throws(() => k3.kho.restoreFolio(f.pfn * PAGE_SIZE), code('EINVAL'));
});

test('retrieving a subtree gives its pages back, and a raw subtree its data block too', () => {
  const m = Machine.create({ size: 32 * MiB });
  const k1 = m.boot();
  k1.kho.addSubtree('tree', smallFdt('app,tree-v1'));
  k1.kho.addSubtree('raw', new Uint8Array(3 * PAGE_SIZE).fill(1), { compatible: 'app,raw-v1' });
  k1.kexec.load();
  const k2 = k1.kexec.exec();
  const held = k2.kho.unclaimed().bytes / PAGE_SIZE;
  const free = k2.pages.stats().freePages;
  assert.equal(k2.kho.retrieveSubtree('tree').getString(0, 'compatible'), 'app,tree-v1');
  const treePages = k2.pages.stats().freePages - free;
  assert.ok(treePages >= 1, 'the FDT subtree pages are free');
  assert.equal(k2.kho.unclaimed().bytes / PAGE_SIZE, held - treePages);
  // Retrieved as an FDT, a raw subtree's descriptor and the block it names both go back.
  assert.equal(k2.kho.retrieveSubtree('raw').getString(0, 'compatible'), 'app,raw-v1');
  assert.deepEqual(k2.kho.unclaimed(), { subtrees: [], blocks: 0, bytes: 0 });
  assert.equal(k2.pages.stats().freePages, free + held);
  assert.throws(() => k2.kho.retrieveSubtree('tree'), code('ENOENT'));
});

/** `blob` with a NOP token before its root node: a valid FDT with no node at offset 0. */
function withLeadingNop(blob: Uint8Array): Uint8Array {
  const v = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const struct = v.getUint32(HDR_OFF_DT_STRUCT);
  const out = new Uint8Array(blob.length + FDT_TAGSIZE);
  out.set(blob.subarray(0, struct));
  new DataView(out.buffer).setUint32(struct, FDT_NOP);
  out.set(blob.subarray(struct), struct + FDT_TAGSIZE);
  const o = new DataView(out.buffer);
  o.setUint32(HDR_TOTALSIZE, out.length);
  o.setUint32(HDR_OFF_DT_STRINGS, v.getUint32(HDR_OFF_DT_STRINGS) + FDT_TAGSIZE);
  o.setUint32(HDR_SIZE_DT_STRUCT, v.getUint32(HDR_SIZE_DT_STRUCT) + FDT_TAGSIZE);
  return out;
}

test('a subtree whose tree starts with a NOP is retrieved (no node at offset 0 is no raw blob either), and its pages go back', () => {
  const m = Machine.create({ size: 32 * MiB });
  const k1 = m.boot();
  k1.kho.addSubtree('nop', withLeadingNop(smallFdt('app,nop-v1')));
  k1.kexec.load();
  const k2 = k1.kexec.exec();
  const free = k2.pages.stats().freePages;
  const fdt = k2.kho.retrieveSubtree('nop');
  const root = fdt.nextNode(-1, 0).offset; // past the NOP, as libfdt's fdt_next_node
  assert.equal(root, FDT_TAGSIZE);
  assert.equal(fdt.getString(root, 'compatible'), 'app,nop-v1');
  assert.ok(k2.pages.stats().freePages > free, 'its pages are free');
  assert.deepEqual(k2.kho.unclaimed(), { subtrees: [], blocks: 0, bytes: 0 });
});

test('subtrees: EEXIST, ENOENT, bad names and bad FDTs are refused', () => {
  const m = Machine.create({ size: 16 * MiB });
  const k = m.boot();
  k.kho.addSubtree('mine', smallFdt('test,v1'));
  assert.throws(() => k.kho.addSubtree('mine', smallFdt('test,v1')), code('EEXIST'));
  assert.throws(() => k.kho.addSubtree('bad name', smallFdt('test,v1')), code('EINVAL'));
  assert.throws(() => k.kho.addSubtree('junk', new Uint8Array(64)), code('EINVAL'));
  assert.throws(() => k.kho.removeSubtree('none'), code('ENOENT'));
  assert.throws(() => k.kho.retrieveSubtree('mine'), code('ENOENT'), 'not a KHO boot');
  k.kho.removeSubtree('mine');
  k.kexec.load();
  const k2 = k.kexec.exec();
  assert.throws(() => k2.kho.retrieveSubtree('mine'), code('ENOENT'));
});

test('kho=off: KHO calls are EOPNOTSUPP and nothing is set aside', () => {
  const k = Machine.create({ size: 16 * MiB }).boot('kho=off');
  assert.equal(k.kho.enabled, false);
  assert.equal(k.kho.scratch.length, 0);
  assert.throws(() => k.kho.preserveFolio(k.allocPages(0)!), code('EOPNOTSUPP'));
  assert.throws(() => k.kho.finalize(), code('EOPNOTSUPP'));
  assert.ok(!k.memoryMap.entries().some((r) => r.type === E820.SCRATCH));
});

test('a KHO boot reuses its scratch areas and ignores kho_scratch=', () => {
  const m = Machine.create({ size: 64 * MiB, nodes: 2 });
  const k1 = m.boot('kho_scratch=512K,2M,128K');
  assert.deepEqual(
    k1.kho.scratch.map((a) => [a.kind, a.size]),
    [
      ['lowmem', 512 * 1024],
      ['global', 2 * MiB],
      ['pernode', 128 * 1024],
      ['pernode', 128 * 1024],
    ],
  );
  assert.ok(
    k1.kho.scratch[2].base < 32 * MiB && k1.kho.scratch[3].base >= 32 * MiB,
    'one per node',
  );
  k1.kexec.load({ cmdline: 'kho_scratch=8M,8M,8M' });
  const k2 = k1.kexec.exec();
  assert.deepEqual(k2.kho.scratch, k1.kho.scratch);
  assert.match(k2.log.join('\n'), /scratch-only until the handover is read/);
  // Scratch is memory the successor may use before the handover is read: in its map and memblock.
  for (const a of k2.kho.scratch) {
    assert.ok(
      k2.memoryMap
        .entries()
        .some(
          (r) => r.type === E820.SCRATCH && r.base <= a.base && a.base + a.size <= r.base + r.size,
        ),
    );
  }
});

test("kho_scratch= in the series' older forms: global,pernode (v3, v4) and one global region (v1, v2)", () => {
  for (const [form, want] of [
    [
      '4M,1M',
      [
        ['global', 4 * MiB],
        ['pernode', MiB],
        ['pernode', MiB],
      ],
    ],
    ['4M', [['global', 4 * MiB]]],
  ] as const) {
    const m = Machine.create({ size: 64 * MiB, nodes: 2 });
    const k1 = m.boot(`kho_scratch=${form}`);
    assert.deepEqual(
      k1.kho.scratch.map((a) => [a.kind, a.size]),
      want,
    );
    assert.match(k1.log.join('\n'), /KHO: kho_scratch=: a 4 MiB global area/);
    const f = k1.allocPages(1)!;
    k1.kho.preserveFolio(f);
    k1.kexec.load({ cmdline: `kho_scratch=${form}` });
    const k2 = k1.kexec.exec();
    assert.deepEqual(k2.kho.restoreFolio(f.pfn * 4096), f, `${form}: the handover revived`);
    assert.deepEqual(k2.kho.scratch, k1.kho.scratch);
    assert.match(k2.log.join('\n'), /kho_scratch= ignored: a KHO boot keeps the scratch areas/);
  }
});

test('status shows kho/out and kho/in as DTS, scratch, and preserved bytes by order', () => {
  const m = Machine.create({ size: 32 * MiB });
  const k1 = m.boot();
  const f = k1.allocPages(3)!;
  k1.kho.preserveFolio(f);
  k1.kho.addSubtree('app', smallFdt('app,state-v1'));
  let st = k1.kho.status();
  assert.equal(st.out.finalized, false);
  assert.equal(st.out.fdt, null);
  assert.deepEqual(
    st.out.preserved.byOrder.find((o) => o.order === 3),
    { order: 3, blocks: 1, bytes: 8 * PAGE_SIZE },
  );
  k1.kho.finalize();
  st = k1.kho.status();
  assert.match(st.out.fdt ?? '', /compatible = "livekexec,kho-v1";[\s\S]*app \{/);
  assert.match(st.out.subtrees.find((s) => s.name === 'app')?.dts ?? '', /app,state-v1/);
  assert.equal(st.in, null);
  assert.equal(k1.kho.checkSuccessor({ cmdline: '' }).understood, true);
  assert.equal(k1.kho.checkSuccessor({ cmdline: 'kho=off' }).understood, false);
  k1.kexec.load();
  const k2 = k1.kexec.exec();
  const st2 = k2.kho.status();
  assert.match(st2.in?.fdt ?? '', /preserved-memory-map/);
  assert.deepEqual(st2.in?.unclaimed.subtrees, ['app']);
  assert.equal(st2.scratch.length, 3);
});

test('a page list naming one block twice, or its own chunk, is EFAULT and restores nothing', () => {
  for (const damage of ['duplicate', 'chunk'] as const) {
    const m = Machine.create({ size: 32 * MiB });
    const k1 = m.boot();
    const folios = [k1.allocPages(0)!, k1.allocPages(1)!];
    const list = k1.kho.preservePageList(folios);
    k1.kexec.load();
    const k2 = k1.kexec.exec();
    // The chunk is preserved memory, outside the tree's checksum: damage an entry.
    const v = k2.device.view(list, PAGE_SIZE);
    const first = v.getBigUint64(0x10, true);
    v.setBigUint64(0x18, damage === 'duplicate' ? first : BigInt(list), true);
    const before = k2.kho.unclaimed();
    assert.throws(() => k2.kho.restorePageList(list), code('EFAULT'), damage);
    assert.deepEqual(k2.kho.unclaimed(), before, `${damage}: nothing claimed`);
    assert.deepEqual(k2.kho.restoreFolio(folios[0].pfn * PAGE_SIZE), folios[0]);
  }
});

test('reserve_mem: a damaged predecessor region is allocated afresh, never half-restored', () => {
  for (const damage of ['shifted', 'outside'] as const) {
    const m = Machine.create({ size: 32 * MiB });
    const k1 = m.boot('reserve_mem=64K:4K:log');
    const log = k1.reserveMem('log');
    k1.kho.finalize();
    k1.kexec.load();
    // The subtree lives in preserved memory, outside any checksum: damage its `start`.
    const phys = parseRootFdt(k1.kho.rootFdt!, k1.device.size).subtrees.get('reserve_mem')!;
    const bytes = k1.device.bytes(phys, PAGE_SIZE);
    const want = new Uint8Array(8);
    new DataView(want.buffer).setBigUint64(0, BigInt(log.base), false);
    const at = Buffer.from(bytes).indexOf(Buffer.from(want));
    assert.ok(at > 0);
    const start = damage === 'shifted' ? log.base + PAGE_SIZE : 2 ** 53 - PAGE_SIZE;
    new DataView(bytes.buffer, bytes.byteOffset).setBigUint64(at, BigInt(start), false);
    const k2 = k1.kexec.exec();
    assert.equal(k2.boot.kind, 'kexec', damage);
    const r = k2.reserveMem('log');
    assert.equal(r.kept, false, damage);
    assert.ok(r.base + r.size <= log.base || r.base >= log.base + log.size, 'not over the old one');
    // The old region's blocks were not claimed by reserve_mem: they are still there to free.
    assert.equal(k2.kho.incoming!.orderAt(log.base / PAGE_SIZE) >= 0, true, damage);
  }
});

test('reserve_mem: a subtree that is no FDT any more never fails the boot (found by npm run torture)', () => {
  for (const damage of ['magic', 'totalsize', 'structure'] as const) {
    const m = Machine.create({ size: 32 * MiB });
    const k1 = m.boot('reserve_mem=64K:4K:log');
    const log = k1.reserveMem('log');
    const f = k1.allocPages(0)!;
    k1.kho.preserveFolio(f);
    k1.kho.finalize();
    k1.kexec.load();
    const phys = parseRootFdt(k1.kho.rootFdt!, k1.device.size).subtrees.get('reserve_mem')!;
    const v = k1.device.view(phys, PAGE_SIZE);
    if (damage === 'magic') v.setUint32(0, 0, false);
    else if (damage === 'totalsize') v.setUint32(4, 0x20000, false);
    else v.setUint32(v.getUint32(8, false), 0x7, false); // the first structure token
    const k2 = k1.kexec.exec();
    assert.equal(k2.boot.kind, 'kexec', damage);
    const r = k2.reserveMem('log');
    assert.equal(r.kept, false, damage);
    assert.ok(r.base + r.size <= log.base || r.base >= log.base + log.size, 'not over the old one');
    assert.ok(
      k2.log.some((l) => /reserve_mem: ignoring the predecessor's regions/.test(l)),
      damage,
    );
    // The rest of the handover is whole.
    assert.deepEqual(k2.kho.restoreFolio(f.pfn * PAGE_SIZE), f);
  }
});

test('preserved memory in many separate runs still kexecs: the header keeps a coarser copy of the map', () => {
  const m = Machine.create({ size: 64 * MiB });
  const k1 = m.boot();
  const kept: number[] = [];
  // 300 separate order-0 pages: far more runs than the header's map can list.
  for (let i = 0; i < 600; i++) {
    const f = k1.allocPages(0)!;
    if (i % 2 === 0) {
      k1.kho.preserveFolio(f);
      k1.device.bytes(f.pfn * PAGE_SIZE, 1)[0] = i & 0xff;
      kept.push(f.pfn);
    }
  }
  k1.kexec.load();
  const k2 = k1.kexec.exec();
  assert.ok(k2.kho.isKhoBoot(), k2.log.join('; '));
  for (const pfn of kept) {
    const f = k2.kho.restoreFolio(pfn * PAGE_SIZE);
    assert.equal(k2.folioBytes(f)[0], (kept.indexOf(pfn) * 2) & 0xff);
  }
  const header = readDeviceHeader(m.device);
  assert.ok(header.memmap.length <= 128);
  // Every kept page is inside a range the header's map keeps out of a cold boot.
  for (const pfn of kept) {
    const r = header.memmap.find(
      (e) => e.base <= pfn * PAGE_SIZE && pfn * PAGE_SIZE < e.base + e.size,
    );
    assert.ok(r && r.type !== E820.USABLE, `pfn ${pfn} is kept in the header's map`);
  }
});

test('a cold boot after a handover treats the old scratch areas as plain memory; the next handover revives', () => {
  const m = Machine.create({ size: 64 * MiB });
  for (let round = 0; round < 3; round++) {
    // Each round is a new process on the same device: a cold boot, then one in-place upgrade.
    const k1 = m.boot('reserve_mem=1M:4K:journal');
    assert.ok(
      !k1.memoryMap
        .entries()
        .some((r) => r.type === E820.SCRATCH && !k1.kho.scratch.some((a) => a.base === r.base)),
      'no stale scratch',
    );
    const f = k1.allocPages(4)!;
    k1.folioBytes(f)[0] = 40 + round;
    k1.kho.preserveFolio(f);
    k1.kexec.load();
    const k2 = k1.kexec.exec();
    assert.ok(k2.kho.isKhoBoot(), `round ${round}: ${k2.log.join('; ')}`);
    assert.equal(k2.folioBytes(k2.kho.restoreFolio(f.pfn * PAGE_SIZE))[0], 40 + round);
  }
});
