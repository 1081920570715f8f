/**
 * kv-cache's slab store on the emulated machine: values in kernel folios,
 * saved to PKRAM and found again after kexec at the same pages; a damaged
 * index gives StoreError EFAULT and nothing else.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { CHUNK_BYTES, PKRAM_NODE, SlabStore, StoreError } from '../../examples/kv-cache/store.js';
import type { Kernel } from '../../src/kernel/kernel.js';
import { Machine } from '../../src/machine.js';
import type { Folio } from '../../src/mm/folio.js';

const MiB = 1024 * 1024;

function value(seed: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = (seed * 31 + i * 7) & 0xff;
  return out;
}

function kexec(k: Kernel): Kernel {
  k.kexec.load();
  return k.kexec.exec();
}

test('values live in kernel folios and come back after kexec at the same pages, with overwrites and deletes', () => {
  const m = Machine.create({ size: 32 * MiB });
  const k1 = m.boot();
  const store = new SlabStore(k1);
  const want = new Map<string, Uint8Array>();
  for (let i = 0; i < 300; i++) {
    const v = value(i, 64 + ((i * 977) % 4000));
    store.put(`k${i}`, v);
    want.set(`k${i}`, v);
  }
  store.put('k7', value(999, 10));
  want.set('k7', value(999, 10));
  assert.equal(store.delete('k8'), true);
  want.delete('k8');
  assert.equal(store.delete('nope'), false);
  assert.equal(store.get('k8'), null);
  // The value is a view of the folio's bytes, not a heap copy.
  const chunk0 = store.chunkFolios()[0];
  assert.equal(store.get('k0')?.buffer, k1.folioBytes(chunk0).buffer);
  const pfns = store.chunkFolios().map((f) => f.pfn);
  assert.ok(pfns.length > 1);
  store.save({ listenerToken: 42 });

  const k2 = kexec(k1);
  const back = SlabStore.restore(k2);
  assert.ok(back);
  assert.equal(back.extra.listenerToken, 42);
  assert.deepEqual(
    back.store.chunkFolios().map((f) => f.pfn),
    pfns,
    'zero-copy: same pages',
  );
  assert.equal(back.store.entries, want.size);
  assert.equal(
    back.store.bytes,
    [...want.values()].reduce((n, v) => n + v.length, 0),
  );
  for (const [k, v] of want) assert.deepEqual(back.store.get(k), v, k);
  assert.deepEqual(k2.pkram.list(), [], 'the node was consumed');

  // The restored store keeps appending and travels again.
  back.store.put('new', value(5, 100));
  back.store.save({ listenerToken: 7 });
  const k3 = kexec(k2);
  const again = SlabStore.restore(k3);
  assert.ok(again);
  assert.deepEqual(again.store.get('new'), value(5, 100));
  assert.deepEqual(again.store.get('k1'), want.get('k1'));
  assert.equal(again.store.entries, want.size + 1);
});

test('no saved store: restore gives null (cold boot, or a kexec with nothing saved)', () => {
  const m = Machine.create({ size: 16 * MiB });
  const k1 = m.boot();
  assert.equal(SlabStore.restore(k1), null);
  assert.equal(SlabStore.restore(kexec(k1)), null);
});

test('bad puts: empty or long keys (EINVAL), values over a chunk (E2BIG), a full device (ENOMEM)', () => {
  const m = Machine.create({ size: 4 * MiB });
  const k = m.boot();
  const store = new SlabStore(k);
  const isCode = (code: string) => (e: unknown) => e instanceof StoreError && e.code === code;
  assert.throws(() => store.put('', value(1, 1)), isCode('EINVAL'));
  assert.throws(() => store.put('x'.repeat(1025), value(1, 1)), isCode('EINVAL'));
  assert.throws(() => store.put('big', new Uint8Array(CHUNK_BYTES + 1)), isCode('E2BIG'));
  store.put('max', new Uint8Array(CHUNK_BYTES));
  assert.throws(() => {
    for (let i = 0; ; i++) store.put(`fill${i}`, new Uint8Array(CHUNK_BYTES));
  }, isCode('ENOMEM'));
  assert.equal(store.get('max')?.length, CHUNK_BYTES);
});

/** A kernel after kexec holding kv-cache's node, and that node's folios and index bytes taken apart. */
function savedStore() {
  const m = Machine.create({ size: 16 * MiB });
  const k1 = m.boot();
  const store = new SlabStore(k1);
  for (let i = 0; i < 40; i++) store.put(`key-${i}`, value(i, 500 + i * 90));
  store.save({ listenerToken: 3 });
  const k2 = kexec(k1);
  const node = k2.pkram.prepareLoad(PKRAM_NODE);
  const obj = node.prepareLoadObj();
  assert.ok(obj);
  const folios: { folio: Folio; index: number }[] = [];
  for (let f = obj.loadFolio(); f !== null; f = obj.loadFolio()) {
    folios.push({ folio: k2.pkram.takeFolio(f.folio), index: f.index });
  }
  const index = new Uint8Array(obj.byteLength);
  assert.equal(obj.read(index), index.length);
  obj.finishLoadObj();
  node.finishLoad();
  const resave = (bytes: Uint8Array, chunks: typeof folios): void => {
    const n = k2.pkram.prepareSave(PKRAM_NODE);
    const o = n.prepareSaveObj();
    for (const c of chunks) o.saveFolio(c.folio, c.index);
    o.write(bytes);
    o.finishSaveObj();
    n.finishSave();
  };
  return { k2, folios, index, resave };
}

test('a damaged index: StoreError EFAULT (its chunks freed) or a store whose every entry lies inside its chunks', () => {
  // The undamaged index restores.
  const good = savedStore();
  good.resave(good.index, good.folios);
  assert.equal(SlabStore.restore(good.k2)?.store.entries, 40);

  const { index } = good;
  fc.assert(
    fc.property(
      fc.array(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }), {
        minLength: 1,
        maxLength: 6,
      }),
      fc.nat({ max: 3 }),
      fc.boolean(),
      (edits, cut, dropChunk) => {
        const { k2, folios, resave } = savedStore();
        const bytes = index.slice(0, cut === 0 ? index.length : index.length - cut * 7);
        for (const e of edits) if (bytes.length > 0) bytes[e.at % bytes.length] = e.byte;
        const kept = dropChunk ? folios.slice(1) : folios;
        if (dropChunk) k2.freePages(folios[0]!.folio);
        const allocated = k2.pages.stats().allocatedPages;
        resave(bytes, kept);
        try {
          const back = SlabStore.restore(k2);
          assert.ok(back);
          for (const key of back.store.keys()) {
            const v = back.store.get(key);
            assert.ok(v && v.length <= CHUNK_BYTES);
          }
        } catch (err) {
          if (!(err instanceof StoreError) || err.code !== 'EFAULT') throw err;
          // Before the save, the test held the chunks; now nobody does (the node's own pages are gone too).
          const pages = kept.reduce((n, c) => n + 2 ** c.folio.order, 0);
          assert.equal(k2.pages.stats().allocatedPages, allocated - pages, 'the chunks are freed');
        }
        assert.deepEqual(k2.pkram.list(), [], 'the node is always consumed');
      },
    ),
    { numRuns: 150, seed: 15 },
  );
});

test('an empty value into an empty store (no chunk yet) is stored, and survives kexec', () => {
  const m = Machine.create({ size: 8 * MiB });
  const k1 = m.boot();
  const store = new SlabStore(k1);
  store.put('empty', new Uint8Array(0));
  assert.equal(store.get('empty')?.length, 0);
  assert.equal(store.entries, 1);
  store.save({ listenerToken: 1 });
  const back = SlabStore.restore(kexec(k1));
  assert.ok(back);
  assert.equal(back.store.get('empty')?.length, 0);
  back.store.put('next', value(2, 10));
  assert.deepEqual(back.store.get('next'), value(2, 10));
});
