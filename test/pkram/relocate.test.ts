/** PKRAM relocation: folios (and PKRAM's own pages) moved off avoided ranges, before and after the save. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PAGE_SIZE } from '../../src/memory/device.js';
import { Pkram, PkramError } from '../../src/pkram/index.js';
import { bootId, folioBytes, machine, makeFolio, pattern, readAll, successor } from './_setup.js';

const overlaps = (a: { base: number; size: number }, b: { base: number; size: number }): boolean =>
  a.base < b.base + b.size && b.base < a.base + a.size;

describe('Pkram relocation', () => {
  it('a folio saved into an avoided range is copied; a compound folio becomes base pages', () => {
    const m = machine(2048);
    const f = makeFolio(m, 2, 42);
    const original = folioBytes(m, f).slice();
    const avoid = { base: (f.pfn + 1) * PAGE_SIZE, size: 100 };
    m.pkram.setAvoidRanges([avoid]);
    const node = m.pkram.prepareSave('r');
    const obj = node.prepareSaveObj();
    obj.saveFolio(f, 40);
    obj.finishSaveObj();
    node.finishSave();
    assert.equal(node.relocatedFolios, 1);
    const info = m.pkram.list()[0].objects[0];
    assert.deepEqual([info.folios, info.relocatedFolios, info.foliosByOrder], [4, 4, [4]]);
    // The program's folio stays the program's.
    assert.equal(m.buddy.pageState(f.pfn), 'allocated');
    const superPfn = m.pkram.finalize();
    for (const r of Pkram.preservedRanges(m.device, superPfn, 4096)) assert.ok(!overlaps(r, avoid));

    const s = successor(m.device, superPfn, { generation: 1, predecessorBootId: bootId(1) });
    const lo = s.pkram.prepareLoad('r').prepareLoadObj()!;
    for (let i = 0; i < 4; i++) {
      const got = lo.loadFolio()!;
      assert.equal(got.index, 40 + i);
      assert.equal(got.folio.order, 0);
      assert.deepEqual(
        folioBytes(s, got.folio),
        original.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE),
      );
    }
    assert.equal(lo.loadFolio(), null);
  });

  it('relocateCollisions moves folios saved before the avoid ranges were set', () => {
    const m = machine(2048);
    const keep = makeFolio(m, 0, 1);
    const hit = makeFolio(m, 3, 2);
    const original = folioBytes(m, hit).slice();
    const bytes = pattern(9000, 3);
    const node = m.pkram.prepareSave('late');
    const obj = node.prepareSaveObj();
    obj.saveFolio(keep, 1);
    obj.saveFolio(hit, 8);
    obj.write(bytes);
    obj.finishSaveObj();
    node.finishSave();
    const before = m.buddy.stats().allocatedPages;
    const tableBefore = m.pkram.tablePages;
    const avoid = { base: hit.pfn * PAGE_SIZE, size: 8 * PAGE_SIZE };
    m.pkram.setAvoidRanges([avoid]);
    assert.deepEqual(m.pkram.relocateCollisions(), { nodes: 1, relocatedFolios: 1 });
    // Eight copies made; the rebuilt node's metadata replaced the old one's (the table may shrink:
    // no order-3 key is left).
    assert.equal(m.buddy.stats().allocatedPages, before + 8 + m.pkram.tablePages - tableBefore);
    assert.deepEqual(m.pkram.relocateCollisions(), { nodes: 0, relocatedFolios: 0 });
    const superPfn = m.pkram.finalize();
    for (const r of Pkram.preservedRanges(m.device, superPfn, 4096)) assert.ok(!overlaps(r, avoid));

    const s = successor(m.device, superPfn, { generation: 1, predecessorBootId: bootId(1) });
    const lo = s.pkram.prepareLoad('late').prepareLoadObj()!;
    assert.deepEqual(lo.loadFolio(), { folio: keep, index: 1 });
    for (let i = 0; i < 8; i++) {
      const got = lo.loadFolio()!;
      assert.equal(got.index, 8 + i);
      assert.ok(got.folio.pfn < hit.pfn || got.folio.pfn >= hit.pfn + 8);
      assert.deepEqual(
        folioBytes(s, got.folio),
        original.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE),
      );
    }
    assert.deepEqual(readAll(lo, 4096), bytes);
  });

  it("PKRAM's own pages in an avoided range move too (node, links, data, super block, table)", () => {
    const m = machine(1024);
    const node = m.pkram.prepareSave('meta');
    const obj = node.prepareSaveObj();
    obj.write(pattern(20_000, 9));
    obj.finishSaveObj();
    node.finishSave();
    const first = m.pkram.finalize();
    // Ban everything PKRAM has used so far: all low pages.
    const avoid = { base: 0, size: 64 * PAGE_SIZE };
    m.pkram.setAvoidRanges([avoid]);
    assert.equal(m.pkram.relocateCollisions().nodes, 1);
    const superPfn = m.pkram.finalize();
    assert.notEqual(superPfn, first);
    assert.ok(superPfn >= 64);
    for (const r of Pkram.preservedRanges(m.device, superPfn, 4096)) assert.ok(!overlaps(r, avoid));
    const s = successor(m.device, superPfn, { generation: 1, predecessorBootId: bootId(1) });
    assert.deepEqual(
      readAll(s.pkram.prepareLoad('meta').prepareLoadObj()!, 999),
      pattern(20_000, 9),
    );
  });

  it('in a successor, an inherited folio that is relocated is freed after the copy', () => {
    const m = machine(2048);
    const f = makeFolio(m, 1, 5);
    const node = m.pkram.prepareSave('inh');
    const obj = node.prepareSaveObj();
    obj.saveFolio(f, 0);
    obj.finishSaveObj();
    node.finishSave();
    const s = successor(m.device, m.pkram.finalize(), {
      generation: 1,
      predecessorBootId: bootId(1),
    });
    assert.equal(s.buddy.pageState(f.pfn), 'reserved');
    s.pkram.setAvoidRanges([{ base: f.pfn * PAGE_SIZE, size: 2 * PAGE_SIZE }]);
    assert.deepEqual(s.pkram.relocateCollisions(), { nodes: 1, relocatedFolios: 1 });
    assert.equal(s.buddy.pageState(f.pfn), 'free');
    s.pkram.remove('inh');
    assert.equal(s.buddy.stats().freePages, 2048 - 2);
  });

  it('EINVAL for a malformed avoid range; ENOMEM leaves the node as it was', () => {
    const m = machine(64);
    assert.throws(
      () => m.pkram.setAvoidRanges([{ base: -1, size: 1 }]),
      (e) => e instanceof PkramError && e.code === 'EINVAL',
    );
    const f = makeFolio(m, 4, 1);
    const node = m.pkram.prepareSave('n');
    const obj = node.prepareSaveObj();
    obj.saveFolio(f, 0);
    obj.finishSaveObj();
    node.finishSave();
    // Fill memory so the 16 copies cannot be made.
    while (m.buddy.allocPages(0) !== null) {}
    m.pkram.setAvoidRanges([{ base: f.pfn * PAGE_SIZE, size: PAGE_SIZE }]);
    assert.throws(
      () => m.pkram.relocateCollisions(),
      (e) => e instanceof PkramError && e.code === 'ENOMEM',
    );
    assert.deepEqual(
      m.pkram.list().map((n) => [n.name, n.folios]),
      [['n', 1]],
    );
  });
});
