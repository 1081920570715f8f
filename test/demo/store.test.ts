/**
 * kv-cache's store on the emulated machine: values in a preserved store in
 * kernel pages, found again after kexec at the same pages with nothing
 * saved; the listener token rides along; a damaged store is never served.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CacheStore, MAX_VALUE_BYTES, StoreError } from '../../examples/kv-cache/store.js';
import type { Kernel } from '../../src/kernel/kernel.js';
import { Machine } from '../../src/machine.js';

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

test('values live in preserved pages and come back after kexec at the same pages, with overwrites and deletes', () => {
  const m = Machine.create({ size: 32 * MiB });
  const k1 = m.boot();
  const { store, extra } = CacheStore.open(k1);
  assert.equal(extra, null, 'a cold boot has no predecessor');
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
  // The value is a view of the device's bytes, not a heap copy.
  assert.equal(store.get('k0')?.buffer, k1.device.bytes(0, 1).buffer);
  const root = store.values.stats().root;
  store.save({ listenerToken: 42 });

  const k2 = kexec(k1);
  const back = CacheStore.open(k2);
  assert.equal(back.extra?.listenerToken, 42);
  assert.equal(back.store.values.stats().root, root, 'zero-copy: same pages');
  assert.equal(back.store.entries, want.size);
  assert.equal(
    back.store.bytes,
    [...want].reduce((n, [k, v]) => n + k.length + v.length, 0),
  );
  for (const [k, v] of want) assert.deepEqual(back.store.get(k), v, k);

  back.store.put('new', value(5, 100));
  const k3 = kexec(k2);
  const again = CacheStore.open(k3);
  assert.equal(again.extra, null, 'no token was saved this time');
  assert.deepEqual(again.store.get('new'), value(5, 100));
  assert.equal(again.store.entries, want.size + 1);
});

test('bad puts: empty or long keys (EINVAL), values over 64 KiB (E2BIG), a full device (ENOMEM)', () => {
  const k = Machine.create({ size: 16 * MiB }).boot();
  const { store } = CacheStore.open(k);
  const isCode = (code: string) => (e: unknown) => e instanceof StoreError && e.code === code;
  assert.throws(() => store.put('', value(1, 1)), isCode('EINVAL'));
  assert.throws(() => store.put('x'.repeat(1025), value(1, 1)), isCode('EINVAL'));
  assert.throws(() => store.put('big', new Uint8Array(MAX_VALUE_BYTES + 1)), isCode('E2BIG'));
  store.put('max', new Uint8Array(MAX_VALUE_BYTES));
  assert.throws(() => {
    for (let i = 0; ; i++) store.put(`fill${i}`, new Uint8Array(MAX_VALUE_BYTES));
  }, isCode('ENOMEM'));
  assert.equal(store.get('max')?.length, MAX_VALUE_BYTES);
});

test('a damaged store is not served: the successor starts empty and says why', () => {
  const k1 = Machine.create({ size: 16 * MiB }).boot();
  const { store } = CacheStore.open(k1);
  for (let i = 0; i < 40; i++) store.put(`key-${i}`, value(i, 500));
  const root = store.values.stats().root;
  const k2 = kexec(k1);
  k2.device.bytes(root + 8, 1)[0] ^= 0xff; // the super block's flags, under its crc
  const writes: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((s: string) => writes.push(s) > 0) as typeof process.stderr.write;
  let back: ReturnType<typeof CacheStore.open>;
  try {
    back = CacheStore.open(k2);
  } finally {
    process.stderr.write = write;
  }
  assert.equal(back.store.entries, 0);
  assert.match(writes.join(''), /unusable, starting empty: EFAULT: .*crc.*page \d+/);
});
