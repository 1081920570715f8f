/**
 * One owner per preserved page across KHO, PKRAM, the pools and reserve_mem:
 * a second claim is a typed error when it is made, and a successor handed a
 * page claimed twice (a predecessor's bug, or damage) gives it to no one twice.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KhoError } from '../../src/kho/errors.js';
import { Machine } from '../../src/machine.js';
import { PAGE_SIZE } from '../../src/memory/device.js';
import { Pkram, PkramError } from '../../src/pkram/index.js';
import { buddyPageSource } from '../../src/pkram/kernel-pkram.js';
import { allocateAll, MiB } from './_helpers.js';

function isError(type: typeof KhoError | typeof PkramError, code: string, holder: RegExp) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof type, `expected a ${type.name}, got ${e}`);
    assert.equal(e.code, code);
    assert.match(e.message, holder);
    return true;
  };
}

describe('one owner per preserved page', () => {
  it('a KHO-preserved folio cannot be saved into PKRAM (EEXIST naming KHO)', () => {
    const k = Machine.create({ size: 32 * MiB }).boot();
    const f = k.allocPages(2)!;
    k.kho.preserveFolio(f);
    const obj = k.pkram.prepareSave('db').prepareSaveObj();
    assert.throws(() => obj.saveFolio(f, 0), isError(PkramError, 'EEXIST', /preserved by KHO/));
    // Nor one page inside a preserved range.
    const r = k.allocPages(4)!;
    k.kho.preservePages(r.pfn, 16);
    assert.throws(
      () => obj.saveFolio({ pfn: r.pfn + 4, order: 2 }, 1),
      isError(PkramError, 'EEXIST', /preserved by KHO/),
    );
  });

  it('a folio or page PKRAM holds cannot be preserved through KHO (EEXIST naming PKRAM)', () => {
    const k = Machine.create({ size: 32 * MiB }).boot();
    const f = k.allocPages(1)!;
    const node = k.pkram.prepareSave('db');
    const obj = node.prepareSaveObj();
    obj.saveFolio(f, 0);
    obj.write(new Uint8Array(10));
    obj.finishSaveObj();
    node.finishSave();
    assert.throws(() => k.kho.preserveFolio(f), isError(KhoError, 'EEXIST', /by PKRAM/));
    // PKRAM's own metadata (its node page) is PKRAM's too.
    assert.throws(() => k.kho.preservePages(node.pfn, 1), isError(KhoError, 'EEXIST', /by PKRAM/));
    // Once loaded, the folio is the program's again: KHO may take it.
    const back = k.pkram.prepareLoad('db');
    back.prepareLoadObj()!.loadFolio();
    back.finishLoad();
    k.kho.preserveFolio(f);
  });

  it("a pool's pages belong to the pool: neither KHO nor PKRAM may preserve them", () => {
    const k = Machine.create({ size: 32 * MiB }).boot('pmpool=8M,1M');
    const r = k.pmpool!.alloc(4, 4)!;
    assert.throws(
      () => k.kho.preservePages(r.pfn, 4),
      isError(KhoError, 'EEXIST', /pmpool default pool/),
    );
    const obj = k.pkram.prepareSave('db').prepareSaveObj();
    assert.throws(
      () => obj.saveFolio({ pfn: r.pfn, order: 2 }, 0),
      isError(PkramError, 'EEXIST', /pmpool default pool/),
    );
  });

  it('a reserve_mem region is preserved through KHO: PKRAM may not save its pages', () => {
    const k = Machine.create({ size: 32 * MiB }).boot('reserve_mem=64K:4K:trace');
    const region = k.reserveMem('trace');
    const obj = k.pkram.prepareSave('db').prepareSaveObj();
    assert.throws(
      () => obj.saveFolio({ pfn: region.phys / PAGE_SIZE, order: 0 }, 0),
      isError(PkramError, 'EEXIST', /preserved by KHO/),
    );
  });

  it("a block received through KHO and not restored is not PKRAM's to save; once restored it is", () => {
    const k1 = Machine.create({ size: 32 * MiB }).boot();
    const f = k1.allocPages(0)!;
    k1.kho.preserveFolio(f);
    k1.kexec.load();
    const k2 = k1.kexec.exec();
    const obj = k2.pkram.prepareSave('db').prepareSaveObj();
    assert.throws(
      () => obj.saveFolio(f, 0),
      isError(PkramError, 'EEXIST', /KHO \(received, not restored\)/),
    );
    const mine = k2.kho.restoreFolio(f.pfn * PAGE_SIZE);
    obj.saveFolio(mine, 0);
  });

  it('KHO taking a page of a node still being saved fails that node at finishSave', () => {
    const k = Machine.create({ size: 32 * MiB }).boot();
    const f = k.allocPages(0)!;
    const node = k.pkram.prepareSave('db');
    const obj = node.prepareSaveObj();
    obj.saveFolio(f, 0);
    obj.finishSaveObj();
    k.kho.preserveFolio(f); // PKRAM does not hold it yet: its node is not saved
    assert.throws(() => node.finishSave(), isError(PkramError, 'EEXIST', /preserved by KHO/));
    assert.equal(node.state, 'saving', 'the node stays open');
    node.discardSave();
  });

  it('a successor handed one page by both KHO and PKRAM refuses PKRAM and hands the page out once', () => {
    // A predecessor that did not check (an older livekexec): a second PKRAM, without the
    // kernel's ownership checks, saves a folio KHO preserves and is handed over by pkram=.
    const m = Machine.create({ size: 32 * MiB });
    const k1 = m.boot();
    const shared = k1.allocPages(0)!;
    const other = k1.allocPages(0)!;
    k1.kho.preserveFolio(shared);
    const unchecked = new Pkram({
      device: m.device,
      pages: buddyPageSource(k1.pages),
      generation: k1.boot.generation,
      bootId: Uint8Array.from(Buffer.from(k1.boot.bootId, 'hex')),
    });
    const node = unchecked.prepareSave('db');
    const obj = node.prepareSaveObj();
    obj.saveFolio(shared, 1);
    obj.saveFolio(other, 2);
    obj.finishSaveObj();
    node.finishSave();
    const superPfn = unchecked.finalize();
    k1.kexec.load({ cmdline: `pkram=${superPfn.toString(16)}` });
    const k2 = k1.kexec.exec();
    assert.match(k2.log.join('\n'), /PKRAM: refusing the super block .* already claimed/);
    assert.throws(() => k2.pkram.prepareLoad('db'), isError(PkramError, 'ENOENT', /db/));
    assert.deepEqual(k2.kho.restoreFolio(shared.pfn * PAGE_SIZE), shared);
    const handed = new Set(allocateAll(k2));
    assert.ok(!handed.has(other.pfn), "PKRAM's refused pages stay reserved");
    assert.ok(!handed.has(shared.pfn), 'the restored folio is not handed out again');
  });
});
