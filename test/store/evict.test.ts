/** Caches: TTLs, LRU eviction when full, and the memory budget. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Machine } from '../../src/machine.js';
import { openStore, StoreError } from '../../src/store/index.js';

const MiB = 1024 * 1024;

test('an entry with a ttl is gone once it expires, and survives a handover until then', () => {
  let now = 1_700_000_000_000;
  const clock = () => now;
  const k = Machine.create({ size: 32 * MiB }).boot();
  const s = openStore(k, { name: 'ttl', clock });
  s.put('short', 'a', { ttl: 1000 });
  s.put('long', 'b', { ttl: 60_000 });
  s.put('forever', 'c');
  assert.equal(s.get('short')?.toString(), 'a');
  k.kexec.load();
  const k2 = k.kexec.exec();
  const s2 = openStore(k2, { name: 'ttl', clock });
  now += 2000;
  assert.equal(s2.get('short'), undefined);
  assert.equal(s2.has('short'), false);
  assert.equal(s2.get('long')?.toString(), 'b');
  assert.equal(s2.size, 3, 'expired entries count until removed');
  assert.equal(s2.purgeExpired(), 1);
  assert.equal(s2.size, 2);
  now += 60_000;
  assert.deepEqual([...s2.keys()].map(String), ['forever']);
  assert.throws(
    () => s2.put('x', 'y', { ttl: -1 }),
    (e) => e instanceof StoreError && e.code === 'EINVAL',
  );
});

test('a full cache that evicts keeps taking puts, dropping the least recently used first', () => {
  const k = Machine.create({ size: 64 * MiB }).boot();
  const s = openStore(k, { name: 'lru', evict: 'lru', budget: '4M' });
  const v = Buffer.alloc(1000, 1);
  s.put('hot', v);
  for (let i = 0; i < 20_000; i++) {
    s.put(`k${i}`, v);
    if (i % 100 === 0) assert.ok(s.get('hot'), `hot key evicted at ${i}`);
  }
  assert.ok(s.size > 1000 && s.size < 4500, `${s.size} entries in 4 MiB`);
  assert.ok(s.stats().bytes <= 4 * MiB);
  assert.deepEqual(s.get('k19999'), v, 'the newest entry is there');
  assert.equal(s.get('k0'), undefined, 'an old one was evicted');
  assert.deepEqual(s.check().problems, []);
});

test('without eviction a spent budget is ENOSPC and a full device ENOMEM, the store unchanged', () => {
  const k = Machine.create({ size: 64 * MiB }).boot();
  const s = openStore(k, { name: 'b', budget: '2M' });
  const v = Buffer.alloc(1000, 1);
  let n = 0;
  assert.throws(
    () => {
      for (; ; n++) s.put(`k${n}`, v);
    },
    (e) => e instanceof StoreError && e.code === 'ENOSPC',
  );
  assert.equal(s.size, n);
  assert.ok(s.stats().bytes <= 2 * MiB);
  assert.deepEqual(s.get('k0'), v);
  const small = Machine.create({ size: 8 * MiB }).boot();
  const t = openStore(small, { name: 'd' });
  assert.throws(
    () => {
      for (let i = 0; ; i++) t.put(`k${i}`, v);
    },
    (e) => e instanceof StoreError && e.code === 'ENOMEM',
  );
  assert.deepEqual(t.check().problems, []);
});
