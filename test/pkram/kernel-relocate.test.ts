/**
 * The relocation path through the kernel, and the RFC's block cache.
 *
 * livekexec's kexec claims free pages for its segments (or, with KHO on, uses
 * scratch, which the allocator never hands out), so a saved folio cannot sit
 * under a segment. What reaches the copy path is `pkram_ban=`: a banned range
 * that holds folios a predecessor saved before the ban was given. These tests
 * use a real ban on the successor's command line and a real kexec.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Machine } from '../../src/machine.js';
import { crc32c } from '../../src/memory/crc32c.js';
import { PAGE_SIZE } from '../../src/memory/device.js';
import type { LoadedFolio } from '../../src/pkram/index.js';
import { fillPattern, pattern, readAll } from './_setup.js';

const MiB = 1024 * 1024;

test('pkram_ban= over an inherited order-9 folio: kexec load copies it into base pages outside the ban', () => {
  const m = Machine.create({ size: 32 * MiB });
  const k1 = m.boot();
  const node = k1.pkram.prepareSave('db');
  const obj = node.prepareSaveObj();
  const big = k1.allocPages(9);
  const small = k1.allocPages(0);
  assert.ok(big && small);
  fillPattern(k1.folioBytes(big), 1);
  fillPattern(k1.folioBytes(small), 2);
  obj.saveFolio(big, 1000);
  obj.saveFolio(small, 5);
  obj.write(pattern(9000, 3));
  obj.finishSaveObj();
  node.finishSave();
  const ban = { base: big.pfn * PAGE_SIZE, size: 2 * MiB };
  k1.kexec.load({ cmdline: `pkram_ban=2M@0x${ban.base.toString(16)}` });
  const k2 = k1.kexec.exec();
  assert.deepEqual(k2.status().pkram.bans, [ban]);
  assert.deepEqual(
    k2.pkram.list()[0].objects[0].foliosByOrder.slice(0, 10),
    [1, 0, 0, 0, 0, 0, 0, 0, 0, 1],
  );
  const reservedBefore = k2.pages.stats().reservedPages;
  k2.kexec.load(); // segmentsPlaced: avoid segments + bans, relocate
  assert.deepEqual(k2.status().pkram.lastRelocation, { nodes: 1, relocatedFolios: 1 });
  const info = k2.pkram.list()[0].objects[0];
  assert.equal(info.folios, 513);
  assert.equal(info.relocatedFolios, 512);
  // The old folio's pages went back to the allocator.
  assert.ok(k2.pages.stats().reservedPages <= reservedBefore - 512);
  const k3 = k2.kexec.exec();
  const n3 = k3.pkram.prepareLoad('db');
  const o3 = n3.prepareLoadObj();
  assert.ok(o3);
  const want = pattern(2 * MiB, 1);
  const seen = new Set<number>();
  for (let i = 0; i < 512; i++) {
    const got: LoadedFolio | null = o3.loadFolio();
    assert.ok(got);
    assert.equal(got.folio.order, 0);
    assert.equal(got.index, 1000 + i);
    const phys = got.folio.pfn * PAGE_SIZE;
    assert.ok(phys + PAGE_SIZE <= ban.base || phys >= ban.base + ban.size, 'copy inside the ban');
    assert.deepEqual(k3.folioBytes(got.folio), want.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
    seen.add(got.folio.pfn);
  }
  assert.equal(seen.size, 512);
  const s = o3.loadFolio();
  assert.ok(s);
  assert.deepEqual(s.folio, small);
  assert.deepEqual(k3.folioBytes(s.folio), pattern(PAGE_SIZE, 2));
  assert.deepEqual(readAll(o3, 4096), pattern(9000, 3));
  n3.finishLoad();
});

test('a folio in a banned range saved after kexec load is copied at finishSave', () => {
  const m = Machine.create({ size: 32 * MiB });
  const k1 = m.boot();
  const probe = k1.allocPages(4);
  assert.ok(probe);
  k1.freePages(probe);
  const k = m.boot(`pkram_ban=64K@0x${(probe.pfn * PAGE_SIZE).toString(16)}`);
  k.kexec.load();
  k.pages.allocPagesAt(probe.pfn, 4);
  const folio = { pfn: probe.pfn, order: 4 };
  fillPattern(k.folioBytes(folio), 7);
  const node = k.pkram.prepareSave('late');
  const obj = node.prepareSaveObj();
  obj.saveFolio(folio, 0);
  obj.finishSaveObj();
  node.finishSave();
  assert.equal(k.pkram.list()[0].objects[0].relocatedFolios, 16);
  const k2 = k.kexec.exec();
  const n = k2.pkram.prepareLoad('late');
  const o = n.prepareLoadObj();
  assert.ok(o);
  const want = pattern(16 * PAGE_SIZE, 7);
  for (let i = 0; i < 16; i++) {
    const got: LoadedFolio | null = o.loadFolio();
    assert.ok(got);
    assert.notEqual(got.folio.pfn, probe.pfn + i);
    assert.ok(got.folio.pfn < probe.pfn || got.folio.pfn >= probe.pfn + 16);
    assert.deepEqual(k2.folioBytes(got.folio), want.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
  }
  n.finishLoad();
});

test('block cache: 64 MiB of 4 KiB blocks with a checksummed index survives kexec, every checksum verified', () => {
  const BLOCKS = 16384;
  const m = Machine.create({ size: 160 * MiB });
  const k1 = m.boot();
  const node = k1.pkram.prepareSave('blockcache');
  const data = node.prepareSaveObj();
  // The index: per block { u32 block number, u32 crc32c }, then a crc32c of the index.
  const index = new Uint8Array(BLOCKS * 8 + 4);
  const iv = new DataView(index.buffer);
  for (let b = 0; b < BLOCKS; b++) {
    const f = k1.allocPages(0);
    assert.ok(f);
    const bytes = k1.folioBytes(f);
    fillPattern(bytes, b + 1);
    data.saveFolio(f, b);
    iv.setUint32(b * 8, b, true);
    iv.setUint32(b * 8 + 4, crc32c(bytes), true);
  }
  iv.setUint32(BLOCKS * 8, crc32c(index.subarray(0, BLOCKS * 8)), true);
  data.finishSaveObj();
  const meta = node.prepareSaveObj();
  for (let at = 0; at < index.length; at += 10_000) meta.write(index.subarray(at, at + 10_000));
  meta.finishSaveObj();
  node.finishSave();
  k1.kexec.load();
  const k2 = k1.kexec.exec();
  const n2 = k2.pkram.prepareLoad('blockcache');
  const d2 = n2.prepareLoadObj();
  assert.ok(d2);
  const blocks: { pfn: number; index: number }[] = [];
  for (let got = d2.loadFolio(); got; got = d2.loadFolio()) {
    blocks.push({ pfn: got.folio.pfn, index: got.index });
  }
  d2.finishLoadObj();
  const m2 = n2.prepareLoadObj();
  assert.ok(m2);
  const idx = readAll(m2, 65536);
  m2.finishLoadObj();
  n2.finishLoad();
  assert.equal(idx.length, index.length);
  const dv = new DataView(idx.buffer, idx.byteOffset, idx.length);
  assert.equal(dv.getUint32(BLOCKS * 8, true), crc32c(idx.subarray(0, BLOCKS * 8)));
  assert.equal(blocks.length, BLOCKS);
  let verified = 0;
  for (const b of blocks) {
    assert.equal(dv.getUint32(b.index * 8, true), b.index);
    const bytes = k2.folioBytes({ pfn: b.pfn, order: 0 });
    assert.equal(crc32c(bytes), dv.getUint32(b.index * 8 + 4, true), `block ${b.index}`);
    verified++;
  }
  assert.equal(verified, BLOCKS);
  // A damaged block is caught by its checksum.
  k2.folioBytes({ pfn: blocks[77].pfn, order: 0 })[5] ^= 1;
  assert.notEqual(
    crc32c(k2.folioBytes({ pfn: blocks[77].pfn, order: 0 })),
    dv.getUint32(blocks[77].index * 8 + 4, true),
  );
});
