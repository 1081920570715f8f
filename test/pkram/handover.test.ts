/** PKRAM across emulated kexecs: attach, stale super blocks, preserved ranges, the block cache. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KhoRadixTree } from '../../src/kho/radix.js';
import { crc32c } from '../../src/memory/crc32c.js';
import { PAGE_SIZE } from '../../src/memory/device.js';
import type { Folio } from '../../src/mm/folio.js';
import { PKRAM_MAGIC, SB_OFF_GENERATION, SB_OFF_MAGIC } from '../../src/pkram/abi.js';
import { Pkram, PkramError } from '../../src/pkram/index.js';
import { sealPage } from '../../src/pkram/seal.js';
import { consumeSuper } from '../../src/pkram/super.js';
import {
  bootId,
  folioBytes,
  type Machine,
  machine,
  makeFolio,
  pattern,
  readAll,
  reserve,
  successor,
} from './_setup.js';

function refused(c: string, reason?: string): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof PkramError, `expected a PkramError, got ${e}`);
    assert.equal(e.code, c);
    if (reason !== undefined) assert.equal(e.reason, reason);
    return true;
  };
}

function saveSample(
  m: Machine,
  name: string,
  seed: number,
): { folios: Folio[]; bytes: Uint8Array } {
  const folios = [makeFolio(m, 0, seed), makeFolio(m, 9, seed + 1), makeFolio(m, 2, seed + 2)];
  const bytes = pattern(10_000 + seed, seed);
  const node = m.pkram.prepareSave(name);
  const obj = node.prepareSaveObj();
  for (const [i, f] of folios.entries()) obj.saveFolio(f, i * 1000);
  obj.write(bytes);
  obj.finishSaveObj();
  node.prepareSaveObj().finishSaveObj(); // an empty object too
  node.finishSave();
  return { folios, bytes };
}

describe('Pkram handover', () => {
  it('a successor attaches, loads folios and bytes equal, and gets every page back', () => {
    const m = machine(4096, 5, 1);
    const seeds = [10, 20];
    const saved = seeds.map((s) => saveSample(m, `node-${s}`, s));
    const expected = saved.map((s) => s.folios.map((f) => folioBytes(m, f).slice()));
    const superPfn = m.pkram.finalize();

    const s = successor(m.device, superPfn, { generation: 5, predecessorBootId: bootId(1) });
    assert.equal(s.pkram.generation, 6);
    assert.deepEqual(
      s.pkram.list().map((n) => n.name),
      ['node-10', 'node-20'],
    );
    for (let k = 0; k < 2; k++) {
      const node = s.pkram.prepareLoad(`node-${seeds[k]}`);
      const obj = node.prepareLoadObj()!;
      for (let i = 0; i < 3; i++) {
        const got = obj.loadFolio();
        assert.ok(got);
        assert.equal(got.index, i * 1000);
        assert.equal(got.folio.order, saved[k].folios[i].order);
        assert.deepEqual(folioBytes(s, got.folio), expected[k][i]);
        s.pages.freePages(got.folio.pfn, got.folio.order); // the folio is ours now
      }
      assert.equal(obj.loadFolio(), null);
      assert.deepEqual(readAll(obj, 1000), saved[k].bytes);
      obj.finishLoadObj();
      const empty = node.prepareLoadObj()!;
      assert.equal(empty.loadFolio(), null);
      assert.equal(empty.read(new Uint8Array(1)), 0);
      empty.finishLoadObj();
      node.finishLoad();
    }
    // Everything but page 0 and the super block page (kept for this kernel's finalize) is free.
    assert.equal(s.buddy.stats().freePages, 4096 - 2);
    assert.equal(s.buddy.stats().allocatedPages, 0);
  });

  it('partial loads in the successor free the rest exactly', () => {
    const m = machine(4096, 1, 1);
    saveSample(m, 'a', 1);
    saveSample(m, 'b', 2);
    const s = successor(m.device, m.pkram.finalize(), {
      generation: 1,
      predecessorBootId: bootId(1),
    });
    const node = s.pkram.prepareLoad('a');
    const obj = node.prepareLoadObj()!;
    const got = obj.loadFolio()!;
    obj.read(new Uint8Array(10));
    node.finishLoad();
    s.pkram.remove('b');
    s.pages.freePages(got.folio.pfn, got.folio.order);
    assert.equal(s.buddy.stats().freePages, 4096 - 2);
  });

  it('survives many kexecs: loads some, saves new ones, finalizes for the next', () => {
    let m = machine(4096, 0, 0);
    const live = new Map<string, Uint8Array>();
    for (let gen = 0; gen < 6; gen++) {
      const name = `gen-${gen}`;
      const bytes = pattern(3000 * (gen + 1), gen);
      const node = m.pkram.prepareSave(name);
      const obj = node.prepareSaveObj();
      obj.saveFolio(makeFolio(m, gen % 3, gen), gen);
      obj.write(bytes);
      obj.finishSaveObj();
      node.finishSave();
      live.set(name, bytes);
      if (gen % 2 === 1) {
        // Load the oldest.
        const oldest = [...live.keys()][0];
        const l = m.pkram.prepareLoad(oldest);
        const lo = l.prepareLoadObj()!;
        lo.loadFolio();
        assert.deepEqual(readAll(lo, 4096), live.get(oldest));
        l.finishLoad();
        live.delete(oldest);
      }
      const superPfn = m.pkram.finalize();
      m = successor(
        m.device,
        superPfn,
        { generation: gen, predecessorBootId: bootId(gen) },
        gen + 1,
      );
      assert.equal(m.pkram.generation, gen + 1);
      assert.deepEqual(new Set(m.pkram.list().map((n) => n.name)), new Set(live.keys()));
    }
    for (const [name, bytes] of live) {
      const l = m.pkram.prepareLoad(name);
      assert.deepEqual(readAll(l.prepareLoadObj()!, 333), bytes);
      l.finishLoad();
    }
    // The last loads took no folios, so finishLoad freed them: only page 0 and the super block remain.
    assert.equal(m.buddy.stats().freePages, 4096 - 2);
    assert.equal(m.buddy.stats().allocatedPages, 0);
  });

  it('refuses stale super blocks: generation, boot id, crc, magic, already loaded', () => {
    const m = machine(1024, 3, 7);
    saveSample(m, 'n', 1);
    const superPfn = m.pkram.finalize();
    const good = { generation: 3, predecessorBootId: bootId(7) };
    const dev = m.device;
    const pages = m.pages;
    assert.throws(
      () => Pkram.attach({ device: dev, pages, superPfn, expect: { ...good, generation: 2 } }),
      refused('EINVAL', 'generation'),
    );
    assert.throws(
      () =>
        Pkram.attach({
          device: dev,
          pages,
          superPfn,
          expect: { ...good, predecessorBootId: bootId(8) },
        }),
      refused('EINVAL', 'boot-id'),
    );
    const sb = dev.bytes(superPfn * PAGE_SIZE, PAGE_SIZE);
    sb[SB_OFF_GENERATION] ^= 1;
    assert.throws(
      () => Pkram.attach({ device: dev, pages, superPfn, expect: good }),
      refused('EFAULT', 'crc'),
    );
    sb[SB_OFF_GENERATION] ^= 1;
    sb[SB_OFF_MAGIC] ^= 0xff;
    assert.throws(
      () => Pkram.attach({ device: dev, pages, superPfn, expect: good }),
      refused('ENODEV', 'magic'),
    );
    sb[SB_OFF_MAGIC] ^= 0xff;
    assert.throws(
      () => Pkram.attach({ device: dev, pages, superPfn: 0, expect: good }),
      refused('ENODEV'),
    );
    assert.throws(
      () => Pkram.attach({ device: dev, pages, superPfn: 5000, expect: good }),
      refused('ENODEV'),
    );
    // Nothing above changed anything: a proper successor attaches, then the block is consumed.
    const s = successor(dev, superPfn, good);
    assert.throws(
      () => Pkram.attach({ device: dev, pages: s.pages, superPfn, expect: good }),
      refused('EINVAL', 'consumed'),
    );
    // After the successor finalizes into the same page, the old generation is stale.
    assert.equal(s.pkram.finalize(), superPfn);
    assert.throws(
      () => Pkram.attach({ device: dev, pages: s.pages, superPfn, expect: good }),
      refused('EINVAL', 'generation'),
    );
  });

  it('a crc-valid super block with bad pointers is EFAULT', () => {
    const m = machine(1024, 3, 7);
    saveSample(m, 'n', 1);
    const superPfn = m.pkram.finalize();
    const view = m.device.view(superPfn * PAGE_SIZE, PAGE_SIZE);
    view.setUint32(0x20, 5, true); // node list head -> a page that is not a node
    view.setUint32(0x40, crc32c(m.device.bytes(superPfn * PAGE_SIZE, 0x40)), true);
    assert.throws(
      () =>
        Pkram.attach({
          device: m.device,
          pages: m.pages,
          superPfn,
          expect: { generation: 3, predecessorBootId: bootId(7) },
        }),
      refused('EFAULT'),
    );
  });

  it('preserved ranges and the region list cover every preserved page, coalesced', () => {
    const m = machine(4096, 1, 1);
    const { folios } = saveSample(m, 'n', 1);
    const superPfn = m.pkram.finalize();
    const ranges = Pkram.preservedRanges(m.device, superPfn, 4096);
    const regions = Pkram.regionList(m.device, superPfn);
    assert.deepEqual(regions, ranges);
    const covered = (pfn: number): boolean =>
      ranges.some((r) => r.base <= pfn * PAGE_SIZE && pfn * PAGE_SIZE < r.base + r.size);
    for (const f of folios) for (let i = 0; i < 2 ** f.order; i++) assert.ok(covered(f.pfn + i));
    assert.ok(covered(superPfn));
    const one = Pkram.preservedRanges(m.device, superPfn, 1);
    assert.equal(one.length, 1);
    assert.throws(() => Pkram.preservedRanges(m.device, superPfn, 0), refused('EINVAL'));
    const info = Pkram.inspect(m.device, superPfn);
    assert.equal(info.generation, 1);
    assert.equal(info.orphanPages, 0);
    assert.deepEqual(
      info.nodes.map((n) => [n.name, n.folios]),
      [['n', 3]],
    );
  });

  it('block cache: 4 MiB of 4 KiB blocks and a checksummed index survive a kexec', () => {
    const m = machine(4096, 1, 1);
    const blocks = 1024;
    const index = new DataView(new ArrayBuffer(blocks * 12));
    const node = m.pkram.prepareSave('blockcache');
    const obj = node.prepareSaveObj();
    for (let b = 0; b < blocks; b++) {
      const f = makeFolio(m, 0, b + 1);
      obj.saveFolio(f, b);
      index.setUint32(b * 12, b, true);
      index.setUint32(b * 12 + 4, crc32c(folioBytes(m, f)), true);
      index.setUint32(b * 12 + 8, b * 7919, true); // the block's disk address
    }
    const indexBytes = new Uint8Array(index.buffer);
    obj.write(indexBytes);
    const sum = new Uint8Array(4);
    new DataView(sum.buffer).setUint32(0, crc32c(indexBytes), true);
    obj.write(sum);
    obj.finishSaveObj();
    node.finishSave();
    const superPfn = m.pkram.finalize();

    const s = successor(m.device, superPfn, { generation: 1, predecessorBootId: bootId(1) });
    const ln = s.pkram.prepareLoad('blockcache');
    const lo = ln.prepareLoadObj()!;
    const all = readAll(lo, 5000);
    const idx = all.subarray(0, blocks * 12);
    assert.equal(
      crc32c(idx),
      new DataView(all.buffer, all.byteOffset + blocks * 12, 4).getUint32(0, true),
    );
    const iv = new DataView(idx.buffer, idx.byteOffset, idx.length);
    let verified = 0;
    for (let got = lo.loadFolio(); got !== null; got = lo.loadFolio()) {
      assert.equal(iv.getUint32(got.index * 12, true), got.index);
      assert.equal(crc32c(folioBytes(s, got.folio)), iv.getUint32(got.index * 12 + 4, true));
      verified++;
    }
    assert.equal(verified, blocks);
    lo.finishLoadObj();
    ln.finishLoad();
  });

  it('finalize writes the super block again once a successor consumed it, though nothing else changed', () => {
    const m = machine(4096, 5, 1);
    saveSample(m, 'a', 10);
    const superPfn = m.pkram.finalize();
    const expect = { generation: 5, predecessorBootId: bootId(1) };
    assert.equal(m.pkram.finalize(), superPfn);
    // A successor attached (and consumed it), then this generation went on: its next
    // finalize must leave a super block a successor can take.
    consumeSuper(m.device, superPfn);
    assert.throws(() => Pkram.inspect(m.device, superPfn, expect), refused('EINVAL', 'consumed'));
    assert.equal(m.pkram.finalize(), superPfn);
    assert.deepEqual(
      Pkram.inspect(m.device, superPfn, expect).nodes.map((n) => n.name),
      ['a'],
    );
  });

  it('attach takes over the table early boot checked, without walking it again', () => {
    const expect = { generation: 5, predecessorBootId: bootId(1) };
    const saved = (seed: number): { m: Machine; superPfn: number } => {
      const m = machine(4096, 5, 1);
      saveSample(m, 'a', seed);
      return { m, superPfn: m.pkram.finalize() };
    };
    const a = saved(10);
    const b = saved(20);
    const early = KhoRadixTree.check(a.m.device, a.m.pkram.tableRoot);
    const attach = (s: { m: Machine; superPfn: number }): Pkram => {
      const { pages } = reserve(s.m.device, s.superPfn, expect);
      walks = 0;
      const { device } = s.m;
      return Pkram.attach({ device, pages, superPfn: s.superPfn, expect, table: early });
    };
    const check = KhoRadixTree.check;
    let walks = 0;
    KhoRadixTree.check = (...args) => {
      walks++;
      return check(...args);
    };
    try {
      const pa = attach(a);
      assert.equal(walks, 0, "early boot's check is taken as is");
      assert.equal(pa.prepareLoad('a').prepareLoadObj()?.loadFolio()?.index, 0);
      // A check of another table is not used: the table is walked.
      const pb = attach(b);
      assert.equal(walks, 1);
      assert.deepEqual(pb.names(), ['a']);
    } finally {
      KhoRadixTree.check = check;
    }
  });

  it('a table page changed after early boot checked it is refused by its crc', () => {
    const m = machine(4096, 5, 1);
    saveSample(m, 'a', 10);
    const superPfn = m.pkram.finalize();
    const expect = { generation: 5, predecessorBootId: bootId(1) };
    const table = KhoRadixTree.check(m.device, m.pkram.tableRoot);
    const { pages } = reserve(m.device, superPfn, expect);
    // A root slot beyond the key range, set after early boot: a walk would refuse the table
    // ('table'); attach, which takes early boot's check instead, must refuse it too.
    m.device.view(m.pkram.tableRoot, PAGE_SIZE).setUint32(4000, PAGE_SIZE, true);
    const { device } = m;
    assert.throws(
      () => Pkram.attach({ device, pages, superPfn, expect, table }),
      refused('EFAULT', 'crc'),
    );
    assert.equal(device.view(superPfn * PAGE_SIZE, 8).getUint32(SB_OFF_MAGIC, true), PKRAM_MAGIC);
  });

  it('attach counts the pages no node references, and refuses pages a folio entry names twice', () => {
    const m = machine(4096, 1, 1);
    saveSample(m, 'a', 1);
    saveSample(m, 'b', 2);
    const superPfn = m.pkram.finalize();
    const before = Pkram.inspect(m.device, superPfn);
    assert.equal(before.orphanPages, 0);
    const b = before.nodes.find((n) => n.name === 'b')!;
    const bPages =
      b.metadataPages +
      b.objects.reduce(
        (n, o) => n + o.foliosByOrder.reduce((k, count, order) => k + count * 2 ** order, 0),
        0,
      );
    // The node list cut after its first node ('a'), its pages resealed: node
    // b's pages are orphans.
    const sb = m.device.view(superPfn * PAGE_SIZE, PAGE_SIZE);
    assert.equal(before.nodes[0]?.name, 'a');
    const nodePfn = sb.getUint32(0x20, true);
    const nodeView = m.device.view(nodePfn * PAGE_SIZE, PAGE_SIZE);
    const next = nodeView.getUint32(0x08, true);
    const relink = (nodes: number, to: number): void => {
      nodeView.setUint32(0x08, to, true);
      sealPage(m.device, nodePfn, 'node');
      sb.setUint32(0x34, nodes, true);
      sb.setUint32(0x48, crc32c(m.device.bytes(superPfn * PAGE_SIZE, 0x48)), true);
    };
    relink(1, 0);
    assert.equal(Pkram.inspect(m.device, superPfn).orphanPages, bPages);
    relink(2, next);
    assert.equal(Pkram.inspect(m.device, superPfn).orphanPages, 0);
    // Node a's third folio entry (order 2) renamed to the first 4 pages of its
    // order-9 folio, the link page resealed: pages claimed twice.
    const objPfn = m.device.view(nodePfn * PAGE_SIZE, PAGE_SIZE).getUint32(0x10, true);
    const linkPfn = m.device.view(objPfn * PAGE_SIZE, PAGE_SIZE).getUint32(0x10, true);
    const link = m.device.view(linkPfn * PAGE_SIZE, PAGE_SIZE);
    const big = link.getUint32(0x20 + 16, true) >>> 12;
    link.setUint32(0x20 + 2 * 16, (big * PAGE_SIZE + 2) >>> 0, true);
    sealPage(m.device, linkPfn, 'link');
    assert.throws(
      () => Pkram.inspect(m.device, superPfn),
      (e: unknown) => e instanceof PkramError && /referenced twice/.test(e.message),
    );
  });
});
