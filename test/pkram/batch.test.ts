/** saveFolios and loadFolios: many folios per call from and into typed arrays, across a kexec. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Folio, PkramError } from '../../src/pkram/index.js';
import { bootId, folioBytes, machine, makeFolio, pattern, successor } from './_setup.js';

function code(c: string, message?: RegExp): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof PkramError, `expected a PkramError, got ${e}`);
    assert.equal(e.code, c);
    if (message) assert.match(e.message, message);
    return true;
  };
}

/** Loads the rest of an object's folios `chunk` at a time through loadFolios. */
function loadAll(
  obj: { loadFolios(p: Float64Array, o: Uint8Array, i: Float64Array): number },
  chunk: number,
): { folio: Folio; index: number }[] {
  const out: { folio: Folio; index: number }[] = [];
  const pfns = new Float64Array(chunk);
  const orders = new Uint8Array(chunk);
  const indexes = new Float64Array(chunk);
  for (let n = obj.loadFolios(pfns, orders, indexes); n > 0; ) {
    for (let i = 0; i < n; i++) {
      out.push({ folio: { pfn: pfns[i], order: orders[i] }, index: indexes[i] });
    }
    if (n < chunk) assert.equal(obj.loadFolios(pfns, orders, indexes), 0);
    n = n < chunk ? 0 : obj.loadFolios(pfns, orders, indexes);
  }
  return out;
}

describe('Pkram batches', () => {
  it('saveFolios and loadFolios carry folios of mixed orders and their indexes over a kexec', () => {
    const m = machine(8192, 3, 3);
    // 700 folios: more than two link pages, orders 0..3, indexes past 2^32.
    const folios = Array.from({ length: 700 }, (_, i) => makeFolio(m, i % 4, i));
    const indexes = Float64Array.from(folios, (_, i) => 2 ** 33 + i * 16);
    const bytes = folios.map((f) => folioBytes(m, f).slice());
    const node = m.pkram.prepareSave('batch');
    const obj = node.prepareSaveObj();
    obj.saveFolios(
      folios.slice(0, 300).map((f) => f.pfn),
      folios.slice(0, 300).map((f) => f.order),
      indexes.subarray(0, 300),
    );
    // One order for all: the order-0 folios of the rest.
    const zero = folios.map((f, i) => ({ f, i })).filter((x) => x.i >= 300 && x.f.order === 0);
    obj.saveFolios(
      Float64Array.from(zero, (x) => x.f.pfn),
      0,
      Float64Array.from(zero, (x) => indexes[x.i]),
    );
    obj.finishSaveObj();
    node.finishSave();
    const expected = [...folios.slice(0, 300).keys(), ...zero.map((x) => x.i)];
    assert.equal(m.pkram.list()[0].folios, expected.length);

    const s = successor(m.device, m.pkram.finalize(), {
      generation: 3,
      predecessorBootId: bootId(3),
    });
    const lo = s.pkram.prepareLoad('batch').prepareLoadObj()!;
    const got = loadAll(lo, 97);
    assert.deepEqual(
      got,
      expected.map((i) => ({ folio: folios[i], index: indexes[i] })),
    );
    for (const [k, g] of got.entries())
      assert.deepEqual(folioBytes(s, g.folio), bytes[expected[k]]);
  });

  it('loadFolios and loadFolio share one cursor, and finishLoad frees exactly what was not taken', () => {
    const m = machine(4096, 1, 1);
    const folios = Array.from({ length: 600 }, (_, i) => makeFolio(m, 0, i));
    const node = m.pkram.prepareSave('n');
    const obj = node.prepareSaveObj();
    obj.saveFolios(
      folios.map((f) => f.pfn),
      0,
      folios.map((_, i) => i),
    );
    obj.write(pattern(5000, 1));
    obj.finishSaveObj();
    node.finishSave();
    const s = successor(m.device, m.pkram.finalize(), {
      generation: 1,
      predecessorBootId: bootId(1),
    });
    const meta = s.pkram.list()[0].metadataPages;
    const table = s.pkram.tablePages;
    const free0 = s.buddy.stats().freePages;
    const ln = s.pkram.prepareLoad('n');
    const lo = ln.prepareLoadObj()!;
    const pfns = new Float64Array(250);
    const orders = new Uint8Array(250);
    const indexes = new Float64Array(250);
    assert.equal(lo.loadFolios(pfns, orders, indexes), 250);
    assert.deepEqual(lo.loadFolio(), { folio: folios[250], index: 250 });
    assert.equal(lo.loadFolios(pfns.subarray(0, 10), orders, indexes), 10);
    assert.equal(indexes[9], 260);
    lo.finishLoadObj();
    ln.finishLoad();
    // 261 folios are the caller's (still reserved); PKRAM freed the 339 others, all its pages
    // and the table it took over (emptied).
    assert.equal(meta, 1 + 1 + 4 + 2); // node, object, 3 + 1 link pages, 2 data pages
    assert.equal(s.pkram.tablePages, 0);
    assert.equal(s.buddy.stats().freePages - free0, 339 + meta + table);
    assert.equal(s.buddy.pageState(folios[260].pfn), 'reserved');
    assert.equal(s.buddy.pageState(folios[261].pfn), 'free');
  });

  it('saveFolios keeps the folios before a refused one, and names it', () => {
    const m = machine();
    const a = makeFolio(m, 0, 1);
    const b = makeFolio(m, 0, 2);
    const c = makeFolio(m, 2, 3);
    const node = m.pkram.prepareSave('n');
    const obj = node.prepareSaveObj();
    // c is order 2: pfn + 1 is misaligned at that order.
    assert.throws(
      () => obj.saveFolios([a.pfn, b.pfn, c.pfn + 1, c.pfn], [0, 0, 2, 2], [0, 1, 2, 3]),
      code('EINVAL', /folio 2 of 4: .*misaligned/),
    );
    obj.saveFolios([a.pfn], 0, [9]);
    obj.finishSaveObj();
    // a is saved twice in the one node: the save as a whole is refused, as with saveFolio.
    assert.throws(() => node.finishSave(), code('EINVAL', /saved twice/));
    node.discardSave();
    const again = m.pkram.prepareSave('m');
    const o2 = again.prepareSaveObj();
    o2.saveFolios([a.pfn, b.pfn], 0, [0, 1]);
    o2.finishSaveObj();
    again.finishSave();
    assert.equal(m.pkram.list()[0].folios, 2);
    // Preserved by a saved node: refused at saveFolios time, as saveFolio does; the folios
    // before it are recorded, the ones after are not.
    const d = makeFolio(m, 0, 4);
    const e = makeFolio(m, 0, 5);
    const x = m.pkram.prepareSave('x');
    const third = x.prepareSaveObj();
    assert.throws(
      () => third.saveFolios([d.pfn, b.pfn, e.pfn], 0, [0, 1, 2]),
      code('EINVAL', /folio 1 of 3: .*already preserved/),
    );
    third.finishSaveObj();
    x.finishSave();
    const info = m.pkram.list().find((n) => n.name === 'x')!;
    assert.equal(info.folios, 1);
    const lo = m.pkram.prepareLoad('x').prepareLoadObj()!;
    assert.deepEqual(lo.loadFolio(), { folio: d, index: 0 });
    assert.equal(lo.loadFolio(), null);
  });

  it('ENOMEM mid-batch keeps the folios before the one that found no link page, and names it', () => {
    const m = machine(300);
    const node = m.pkram.prepareSave('n');
    const obj = node.prepareSaveObj();
    // Page 0, the node and object pages, and 296 folios: one free page, one link page (254 entries).
    const folios = Array.from({ length: 296 }, (_, i) => makeFolio(m, 0, i));
    assert.equal(m.buddy.stats().freePages, 1);
    assert.throws(
      () =>
        obj.saveFolios(
          folios.map((f) => f.pfn),
          0,
          folios.map((_, i) => i),
        ),
      code('ENOMEM', /folio 254 of 296/),
    );
    obj.finishSaveObj();
    // The folios not recorded are still only the program's: freeing them makes room for the table.
    for (const f of folios.slice(254)) m.buddy.freePages(f.pfn, 0);
    node.finishSave();
    assert.equal(m.pkram.list()[0].folios, 254);
  });

  it('refuses arrays of different lengths and loads into arrays of the wrong kind', () => {
    const m = machine();
    const f = makeFolio(m, 0, 1);
    const node = m.pkram.prepareSave('n');
    const obj = node.prepareSaveObj();
    assert.throws(() => obj.saveFolios([f.pfn], [0, 0], [0]), code('EINVAL'));
    assert.throws(() => obj.saveFolios([f.pfn], 0, []), code('EINVAL'));
    assert.throws(() => obj.saveFolios(null as unknown as number[], 0, []), code('EINVAL'));
    assert.throws(
      () => obj.loadFolios(new Float64Array(1), new Uint8Array(1), new Float64Array(1)),
      code('EINVAL', /not loading/),
    );
    obj.saveFolios([f.pfn], 0, [0]);
    obj.finishSaveObj();
    node.finishSave();
    const lo = m.pkram.prepareLoad('n').prepareLoadObj()!;
    assert.throws(
      () => lo.loadFolios(new Float64Array(2), new Uint8Array(1), new Float64Array(2)),
      code('EINVAL'),
    );
    assert.throws(
      () => lo.loadFolios([0] as unknown as Float64Array, new Uint8Array(1), new Float64Array(1)),
      code('EINVAL'),
    );
    assert.throws(() => lo.saveFolios([f.pfn], 0, [0]), code('EINVAL', /not saving/));
    const pfns = new Float64Array(4);
    assert.equal(lo.loadFolios(pfns, new Uint8Array(4), new Float64Array(4)), 1);
    assert.equal(pfns[0], f.pfn);
  });
});
