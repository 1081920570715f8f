/** PKRAM within one boot: every save and load path, streams, names, errors, page accounting. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HeapDevice } from '../../src/memory/heap.js';
import { PKRAM_NAME_MAX, Pkram, PkramError } from '../../src/pkram/index.js';
import { bootId, folioBytes, machine, makeFolio, pattern, readAll } from './_setup.js';

function code(c: string): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof PkramError, `expected a PkramError, got ${e}`);
    assert.equal(e.code, c);
    return true;
  };
}

describe('Pkram save and load in one boot', () => {
  it('round-trips folios with their indexes and bytes, object by object', () => {
    const m = machine();
    const a = makeFolio(m, 0, 1);
    const b = makeFolio(m, 3, 2);
    const c = makeFolio(m, 9, 3);
    const node = m.pkram.prepareSave('db');
    const o1 = node.prepareSaveObj();
    o1.saveFolio(a, 7);
    o1.saveFolio(b, 100);
    o1.write(pattern(10, 1));
    o1.write(pattern(5000, 2));
    o1.finishSaveObj();
    const o2 = node.prepareSaveObj();
    o2.saveFolio(c, 2 ** 40);
    o2.finishSaveObj();
    node.finishSave();
    assert.deepEqual(
      m.pkram.list().map((n) => [n.name, n.objects.length, n.folios, n.bytes]),
      [['db', 2, 3, 5010]],
    );
    assert.deepEqual(m.pkram.list()[0].objects[0].foliosByOrder, [1, 0, 0, 1]);

    const load = m.pkram.prepareLoad('db');
    assert.deepEqual(m.pkram.list(), []);
    const l1 = load.prepareLoadObj();
    assert.ok(l1);
    assert.deepEqual(l1.loadFolio(), { folio: a, index: 7 });
    assert.deepEqual(l1.loadFolio(), { folio: b, index: 100 });
    assert.equal(l1.loadFolio(), null);
    const bytes = readAll(l1, 777);
    assert.deepEqual(bytes.subarray(0, 10), pattern(10, 1));
    assert.deepEqual(bytes.subarray(10), pattern(5000, 2));
    l1.finishLoadObj();
    const l2 = load.prepareLoadObj();
    assert.ok(l2);
    assert.deepEqual(l2.loadFolio(), { folio: c, index: 2 ** 40 });
    assert.equal(l2.read(new Uint8Array(4)), 0);
    l2.finishLoadObj();
    assert.equal(load.prepareLoadObj(), null);
    load.finishLoad();
    assert.equal(load.state, 'loaded');
  });

  for (const len of [0, 1, 4095, 4096, 4097, 3 * 4096 + 5, 300_000]) {
    it(`byte stream of ${len} bytes, read in odd chunks`, () => {
      const m = machine();
      const data = pattern(len, len);
      const node = m.pkram.prepareSave(`bytes-${len}`);
      const obj = node.prepareSaveObj();
      // Uneven writes: 1, 3, 4099, then the rest.
      let at = 0;
      for (const n of [1, 3, 4099, len]) {
        const end = Math.min(len, at + n);
        obj.write(data.subarray(at, end));
        at = end;
      }
      assert.equal(obj.byteLength, len);
      obj.finishSaveObj();
      node.finishSave();
      assert.equal(m.pkram.list()[0].bytes, len);
      for (const chunk of [1, 7, 4095, 4096, 65_537]) {
        if (chunk === 1 && len > 5000) continue; // byte-at-a-time over 300 KB is slow and adds nothing
        const name = `bytes-${len}`;
        const l = m.pkram.prepareLoad(name);
        const lo = l.prepareLoadObj()!;
        assert.deepEqual(readAll(lo, chunk), data);
        // Put the node back for the next chunk size by saving it again.
        lo.finishLoadObj();
        l.finishLoad();
        const again = m.pkram.prepareSave(name);
        const ao = again.prepareSaveObj();
        ao.write(data);
        ao.finishSaveObj();
        again.finishSave();
      }
    });
  }

  it('read returns fewer bytes at the end, then 0', () => {
    const m = machine();
    const node = m.pkram.prepareSave('n');
    const obj = node.prepareSaveObj();
    obj.write(pattern(10, 5));
    obj.finishSaveObj();
    node.finishSave();
    const lo = m.pkram.prepareLoad('n').prepareLoadObj()!;
    const buf = new Uint8Array(8);
    assert.equal(lo.read(buf), 8);
    assert.equal(lo.read(buf), 2);
    assert.deepEqual(buf.subarray(0, 2), pattern(10, 5).subarray(8));
    assert.equal(lo.read(buf), 0);
  });

  it('finishLoad after a partial load frees the rest; page counts return exactly', () => {
    const m = machine();
    const base = m.buddy.stats();
    const folios = [makeFolio(m, 0, 1), makeFolio(m, 2, 2), makeFolio(m, 0, 3)];
    const withFolios = m.buddy.stats();
    const node = m.pkram.prepareSave('partial');
    for (let k = 0; k < 3; k++) {
      const obj = node.prepareSaveObj();
      obj.saveFolio(folios[k], k);
      for (let i = 0; i < 300; i++) obj.saveFolio(makeFolio(m, 0, 10 + i), 1000 + i); // > one link page
      obj.write(pattern(9000, k));
      obj.finishSaveObj();
    }
    node.finishSave();
    assert.ok(m.pkram.preservedPages > 0);
    const load = m.pkram.prepareLoad('partial');
    const lo = load.prepareLoadObj()!;
    assert.deepEqual(lo.loadFolio(), { folio: folios[0], index: 0 });
    lo.read(new Uint8Array(100));
    load.finishLoad(); // open object and two untouched objects
    // Same boot: the saved folios are still the program's; PKRAM freed only its own pages.
    assert.equal(m.pkram.preservedPages, 0);
    assert.equal(m.pkram.tablePages, 0);
    assert.equal(m.buddy.stats().allocatedPages, withFolios.allocatedPages + 900);
    assert.ok(base.allocatedPages < withFolios.allocatedPages);
  });

  it('discardSave frees everything the save allocated and leaves the folios alone', () => {
    const m = machine();
    const f = makeFolio(m, 4, 9);
    const before = m.buddy.stats();
    const node = m.pkram.prepareSave('gone');
    const o1 = node.prepareSaveObj();
    o1.saveFolio(f, 0);
    o1.write(pattern(20_000, 1));
    o1.finishSaveObj();
    const o2 = node.prepareSaveObj(); // left open
    o2.write(pattern(5, 1));
    assert.ok(m.buddy.stats().allocatedPages > before.allocatedPages);
    node.discardSave();
    assert.deepEqual(m.buddy.stats(), before);
    assert.deepEqual(folioBytes(m, f), pattern(16 * 4096, 9));
    assert.equal(m.buddy.pageState(f.pfn), 'allocated');
    assert.equal(node.state, 'discarded');
    // The name is free again.
    m.pkram.prepareSave('gone').discardSave();
    assert.throws(() => m.pkram.prepareLoad('gone'), code('ENOENT'));
  });

  it('remove frees a saved node by name', () => {
    const m = machine();
    const before = m.buddy.stats();
    const node = m.pkram.prepareSave('x');
    node.prepareSaveObj().write(pattern(50_000, 3));
    assert.throws(() => node.finishSave(), code('EINVAL')); // object still open
    node.discardSave();
    const again = m.pkram.prepareSave('x');
    const o = again.prepareSaveObj();
    o.write(pattern(50_000, 3));
    o.finishSaveObj();
    again.finishSave();
    m.pkram.remove('x');
    assert.deepEqual(m.buddy.stats(), before);
    assert.throws(() => m.pkram.remove('x'), code('ENOENT'));
  });

  it('names of 256 bytes are taken, 257 are ENAMETOOLONG, multi-byte counted in bytes', () => {
    const m = machine();
    const n256 = 'a'.repeat(PKRAM_NAME_MAX);
    m.pkram.prepareSave(n256).finishSave();
    assert.equal(m.pkram.list()[0].name, n256);
    assert.throws(() => m.pkram.prepareSave('a'.repeat(257)), code('ENAMETOOLONG'));
    const euro = '€'.repeat(85); // 255 bytes
    m.pkram.prepareSave(euro).finishSave();
    assert.throws(() => m.pkram.prepareSave(`${euro}€`), code('ENAMETOOLONG'));
    assert.throws(() => m.pkram.prepareSave(''), code('EINVAL'));
    assert.throws(() => m.pkram.prepareSave('\ud800'), code('EINVAL'));
    assert.ok(m.pkram.prepareLoad(n256));
  });

  it('EEXIST for a saved name and for a name being saved', () => {
    const m = machine();
    m.pkram.prepareSave('a').finishSave();
    assert.throws(() => m.pkram.prepareSave('a'), code('EEXIST'));
    const open = m.pkram.prepareSave('b');
    assert.throws(() => m.pkram.prepareSave('b'), code('EEXIST'));
    assert.throws(() => m.pkram.prepareLoad('b'), code('ENOENT'));
    open.finishSave();
  });

  it('ENOMEM when pages run out, and the failed call records nothing', () => {
    const m = machine(64);
    const f = makeFolio(m, 0, 1);
    const node = m.pkram.prepareSave('big');
    const obj = node.prepareSaveObj();
    obj.saveFolio(f, 0);
    assert.throws(() => obj.write(new Uint8Array(64 * 4096)), code('ENOMEM'));
    assert.ok(obj.byteLength > 0 && obj.byteLength < 64 * 4096);
    obj.finishSaveObj();
    node.discardSave();
    assert.equal(m.buddy.stats().allocatedPages, 1);
  });

  it('EINVAL for calls in the wrong state and bad folios', () => {
    const m = machine();
    const node = m.pkram.prepareSave('s');
    const obj = node.prepareSaveObj();
    const f = makeFolio(m, 0, 1);
    assert.throws(() => node.prepareSaveObj(), code('EINVAL'));
    assert.throws(() => obj.loadFolio(), code('EINVAL'));
    assert.throws(() => obj.read(new Uint8Array(1)), code('EINVAL'));
    assert.throws(() => obj.saveFolio({ pfn: 3, order: 1 }, 0), code('EINVAL'));
    assert.throws(() => obj.saveFolio({ pfn: 2048, order: 0 }, 0), code('EINVAL'));
    assert.throws(() => obj.saveFolio({ pfn: 2, order: 19 }, 0), code('EINVAL'));
    assert.throws(() => obj.saveFolio({ pfn: 2, order: 0 }, -1), code('EINVAL'));
    assert.throws(() => obj.saveFolio({ pfn: 2, order: 0 }, 1.5), code('EINVAL'));
    obj.saveFolio(f, 0);
    obj.finishSaveObj();
    assert.throws(() => obj.finishSaveObj(), code('EINVAL'));
    assert.throws(() => obj.write(new Uint8Array(1)), code('EINVAL'));
    node.finishSave();
    assert.throws(() => node.finishSave(), code('EINVAL'));
    assert.throws(() => node.discardSave(), code('EINVAL'));
    assert.throws(() => node.prepareLoadObj(), code('EINVAL'));
    // The same folio saved again elsewhere is refused.
    const n2 = m.pkram.prepareSave('t');
    assert.throws(() => n2.prepareSaveObj().saveFolio(f, 0), code('EINVAL'));
    const load = m.pkram.prepareLoad('s');
    assert.throws(() => load.finishSave(), code('EINVAL'));
    load.finishLoad();
    assert.throws(() => load.finishLoad(), code('EINVAL'));
  });

  it('ENODEV everywhere when PKRAM is disabled', () => {
    const device = new HeapDevice(64 * 4096);
    const pkram = new Pkram({
      device,
      pages: { allocPages: () => 1, freePages: () => {} },
      generation: 0,
      bootId: bootId(0),
      disabled: 'crash kernel',
    });
    assert.throws(() => pkram.prepareSave('a'), code('ENODEV'));
    assert.throws(() => pkram.prepareLoad('a'), code('ENODEV'));
    assert.throws(() => pkram.list(), code('ENODEV'));
    assert.throws(() => pkram.finalize(), code('ENODEV'));
    assert.throws(() => pkram.remove('a'), code('ENODEV'));
    assert.throws(() => pkram.setAvoidRanges([]), code('ENODEV'));
  });

  it('EINVAL for a bad generation or boot id', () => {
    const device = new HeapDevice(64 * 4096);
    const pages = { allocPages: () => null, freePages: () => {} };
    assert.throws(
      () => new Pkram({ device, pages, generation: -1, bootId: bootId(0) }),
      code('EINVAL'),
    );
    assert.throws(
      () => new Pkram({ device, pages, generation: 0, bootId: new Uint8Array(3) }),
      code('EINVAL'),
    );
  });
});
