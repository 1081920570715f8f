/** The preserved store on the emulated machine: a map's behaviour, limits, and the handover. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Machine } from '../../src/machine.js';
import { openStore, StoreError } from '../../src/store/index.js';

const MiB = 1024 * 1024;

function code(c: string): (err: unknown) => boolean {
  return (err) => err instanceof StoreError && err.code === c;
}

function value(i: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  for (let j = 0; j < len; j++) b[j] = (i * 31 + j * 7) & 0xff;
  return b;
}

test('put, get, overwrite, delete, size, has, iteration: like a Map', () => {
  const k = Machine.create({ size: 64 * MiB }).boot();
  const s = openStore(k, { name: 'kv' });
  const model = new Map<string, Buffer>();
  for (let i = 0; i < 5000; i++) {
    const v = value(i, (i * 13) % 2000);
    s.put(`key-${i}`, v);
    model.set(`key-${i}`, v);
  }
  for (let i = 0; i < 5000; i += 3) {
    const v = value(i + 1, (i * 17) % 300);
    s.put(`key-${i}`, v);
    model.set(`key-${i}`, v);
  }
  for (let i = 0; i < 5000; i += 7) {
    assert.equal(s.delete(`key-${i}`), true);
    model.delete(`key-${i}`);
  }
  assert.equal(s.delete('key-0'), false);
  assert.equal(s.size, model.size);
  for (const [key, v] of model) assert.deepEqual(s.get(key), v, key);
  assert.equal(s.get('key-7'), undefined);
  assert.equal(s.has('key-1'), true);
  assert.equal(s.has('key-7'), false);
  const seen = new Map([...s.entries()].map(([key, v]) => [key.toString(), v]));
  assert.deepEqual(seen, model);
  assert.equal([...s.keys()].length, model.size);
});

test('bytes keys, UTF-8 string keys and string values are the same bytes', () => {
  const k = Machine.create({ size: 32 * MiB }).boot();
  const s = openStore(k, { name: 'kv' });
  s.put('clé', 'valeur é');
  assert.equal(s.get(Buffer.from('clé'))?.toString(), 'valeur é');
  s.put(Uint8Array.of(0, 1, 2), Uint8Array.of(9));
  assert.deepEqual(s.get(Uint8Array.of(0, 1, 2)), Buffer.of(9));
  s.put('empty', new Uint8Array(0));
  assert.deepEqual(s.get('empty'), Buffer.alloc(0));
});

test('getView is zero-copy: it sees the device bytes, until the next update', () => {
  const k = Machine.create({ size: 32 * MiB }).boot();
  const s = openStore(k, { name: 'kv' });
  s.put('a', Buffer.from('hello'));
  const view = s.getView('a')!;
  assert.equal(view.buffer, k.device.bytes(0, 1).buffer, 'a view of the device itself');
  assert.equal(Buffer.from(view).toString(), 'hello');
});

test('keys and values over the limits are typed errors, the store unchanged', () => {
  const k = Machine.create({ size: 32 * MiB }).boot();
  const s = openStore(k, { name: 'kv', maxKeyBytes: 8, maxValueBytes: 100 });
  assert.throws(() => s.put('123456789', 'x'), code('EINVAL'));
  assert.throws(() => s.put('', 'x'), code('EINVAL'));
  assert.throws(() => s.put('ééééé', 'x'), code('EINVAL'), '10 bytes of UTF-8');
  assert.throws(() => s.put('k', Buffer.alloc(101)), code('E2BIG'));
  assert.throws(() => s.get('123456789'), code('EINVAL'));
  assert.equal(s.size, 0);
  assert.throws(() => openStore(k, { name: 'bad name!' }), code('EINVAL'));
  assert.throws(() => openStore(k, { name: 'x', maxKeyBytes: 5000 }), code('EINVAL'));
});

test('values of 16 MiB and more, in page spans, come back whole', () => {
  const k = Machine.create({ size: 128 * MiB }).boot();
  const s = openStore(k, { name: 'big' });
  const big = value(3, 16 * MiB + 5);
  s.put('big', big);
  s.put('small', 'x');
  assert.ok(Buffer.from(s.getView('big')!).equals(big));
  const k2 = handOver(k);
  const s2 = openStore(k2, { name: 'big' });
  assert.ok(Buffer.from(s2.getView('big')!).equals(big));
  assert.equal(s2.delete('big'), true);
  s2.put('big2', big);
  assert.equal(s2.get('big2')?.length, big.length);
});

test('deletes give memory back: the same churn runs forever in a fixed device', () => {
  const k = Machine.create({ size: 32 * MiB }).boot();
  const s = openStore(k, { name: 'churn', budget: '16M' });
  for (let round = 0; round < 30; round++) {
    for (let i = 0; i < 2000; i++) s.put(`r${round}-${i}`, value(i, 100 + ((i * 37) % 3000)));
    for (let i = 0; i < 2000; i++) assert.equal(s.delete(`r${round}-${i}`), true);
  }
  assert.equal(s.size, 0);
  const st = s.stats();
  assert.equal(st.recordBytes, 0);
  assert.ok(st.bytes <= 16 * MiB, `${st.bytes} bytes`);
});

function handOver(k: ReturnType<ReturnType<typeof Machine.create>['boot']>) {
  k.kexec.load();
  return k.kexec.exec();
}

test('a successor finds every entry at once, and keeps handing it over', () => {
  const m = Machine.create({ size: 64 * MiB });
  let k = m.boot();
  const s = openStore(k, { name: 'kv' });
  for (let i = 0; i < 20000; i++) s.put(`k${i}`, value(i, 40));
  const root = s.stats().root;
  for (let gen = 0; gen < 3; gen++) {
    k = handOver(k);
    const s2 = openStore(k, { name: 'kv', create: false });
    assert.equal(s2.stats().root, root, 'same super block, same address');
    assert.equal(s2.size, 20000 + gen);
    for (let i = 0; i < 20000; i += 97) assert.deepEqual(s2.get(`k${i}`), value(i, 40));
    s2.put(`gen${gen}`, 'x');
  }
  assert.equal(k.kho.unclaimed().blocks, 0, 'the store claimed all it handed over');
});

test('a growing store takes its memory end to end: one run, kept whole across handovers as it grows', () => {
  const k0 = Machine.create({ size: 256 * MiB }).boot();
  let k = k0;
  let s = openStore(k, { name: 'kv' });
  const runs = (): number => {
    const r = s.ranges();
    let n = r.length > 0 ? 1 : 0;
    for (let i = 1; i < r.length; i++) if (r[i - 1].base + r[i - 1].size !== r[i].base) n++;
    return n;
  };
  let next = 0;
  let extents = 0;
  for (let gen = 0; gen < 3; gen++) {
    // Each generation grows the store by a few extents, then hands it over.
    for (const end = next + 12000; next < end; next++) s.put(`k${next}`, value(next, 1000));
    assert.ok(s.stats().extents >= extents + 3, `${s.stats().extents} extents, ${extents} before`);
    extents = s.stats().extents;
    assert.equal(runs(), 1, 'every extent starts where the one before ends');
    k = handOver(k);
    s = openStore(k, { name: 'kv', create: false });
    assert.equal(s.size, next);
    for (let i = 0; i < next; i += 101) assert.deepEqual(s.get(`k${i}`), value(i, 1000));
  }
  assert.equal(k.kho.unclaimed().blocks, 0, 'the store claimed all it handed over');
});

test('the predecessor is frozen by the handover; a failed exec unfreezes it', () => {
  const m = Machine.create({ size: 32 * MiB });
  const k = m.boot();
  const s = openStore(k, { name: 'kv' });
  s.put('a', '1');
  k.kho.finalize();
  assert.throws(() => s.put('b', '2'), code('EBUSY'));
  assert.equal(s.get('a')?.toString(), '1', 'reads go on while frozen');
  k.kho.abort();
  s.put('b', '2');
  const k2 = handOver(k);
  assert.throws(() => s.get('a'), code('ESRCH'), 'the old handle is dead');
  const s2 = openStore(k2, { name: 'kv' });
  assert.equal(s2.get('b')?.toString(), '2');
});

test('a store opened twice, or by a successor while its owner did not hand it over, is refused', () => {
  const k = Machine.create({ size: 32 * MiB }).boot();
  const s = openStore(k, { name: 'kv' });
  assert.throws(() => openStore(k, { name: 'kv' }), code('EBUSY'));
  s.put('a', '1');
  s.close();
  assert.throws(() => s.get('a'), code('ESRCH'));
  const again = openStore(k, { name: 'kv' });
  assert.equal(again.get('a')?.toString(), '1', 'a closed store opens again');
});

test('clear empties the store and gives its memory back', () => {
  const k = Machine.create({ size: 32 * MiB }).boot();
  const s = openStore(k, { name: 'kv' });
  for (let i = 0; i < 3000; i++) s.put(`k${i}`, value(i, 200));
  s.clear();
  assert.equal(s.size, 0);
  assert.equal(s.stats().recordBytes, 0);
  assert.equal(s.get('k1'), undefined);
  s.put('k1', 'again');
  assert.equal(s.get('k1')?.toString(), 'again');
});

test('clear in the middle of a table resize removes the entries of both tables', () => {
  const k = Machine.create({ size: 64 * MiB }).boot();
  const s = openStore(k, { name: 'kv' });
  let n = 0;
  while (n < 4000 || !s.stats().resizing) s.put(`k${n++}`, value(n, 40));
  assert.ok(s.stats().tableSlots > 8192, 'two tables');
  s.clear();
  assert.equal(s.size, 0);
  assert.equal(s.stats().liveBytes, 0);
  assert.deepEqual(s.check().problems, []);
  assert.equal([...s.keys()].length, 0);
  for (let i = 0; i < n; i += 97) s.put(`k${i}`, value(i, 40));
  assert.deepEqual(s.get('k97'), value(97, 40));
});

test('PreservedMap keeps structured values through v8.serialize, across a handover', async () => {
  const { PreservedMap } = await import('../../src/store/index.js');
  const m = Machine.create({ size: 32 * MiB });
  const k = m.boot();
  const sessions = PreservedMap.open<
    string,
    { user: string; seen: Date; tags: Set<string>; n: bigint }
  >(k, {
    name: 'sessions',
  });
  const when = new Date(1700000000000);
  sessions.set('s1', { user: 'ann', seen: when, tags: new Set(['a', 'b']), n: 2n ** 70n });
  const byNumber = PreservedMap.open<number, string>(k, {
    name: 'nums',
    key: 'json',
    value: 'string',
  });
  byNumber.set(42, 'forty-two');
  const k2 = handOver(k);
  const back = PreservedMap.open<
    string,
    { user: string; seen: Date; tags: Set<string>; n: bigint }
  >(k2, {
    name: 'sessions',
  });
  assert.deepEqual(back.get('s1'), {
    user: 'ann',
    seen: when,
    tags: new Set(['a', 'b']),
    n: 2n ** 70n,
  });
  assert.deepEqual([...back.keys()], ['s1']);
  const nums = PreservedMap.open<number, string>(k2, {
    name: 'nums',
    key: 'json',
    value: 'string',
  });
  assert.equal(nums.get(42), 'forty-two');
  assert.deepEqual([...nums], [[42, 'forty-two']]);
});

test('a successor is refused a store its predecessor did not hand over (two generations at once)', async () => {
  const { SB_STATE, STATE_OPEN } = await import('../../src/store/abi.js');
  const m = Machine.create({ size: 32 * MiB });
  const k = m.boot();
  const s = openStore(k, { name: 'kv' });
  s.put('a', '1');
  const root = s.stats().root;
  const k2 = handOver(k);
  // As if the predecessor still had it open: its state says so.
  new Uint32Array(k2.device.bytes(root, 4096).buffer, k2.device.bytes(root, 4).byteOffset, 1024)[
    SB_STATE
  ] = STATE_OPEN;
  assert.throws(
    () => openStore(k2, { name: 'kv' }),
    (e) => e instanceof StoreError && e.code === 'EBUSY' && /open in generation 1/.test(e.message),
  );
});

test("stats name the store's root and the page ranges it owns, for status tools", () => {
  const k = Machine.create({ size: 32 * MiB }).boot();
  const s = openStore(k, { name: 'kv' });
  s.put('a', Buffer.alloc(5 * MiB));
  const st = s.stats();
  const ranges = s.ranges();
  assert.equal(ranges.length, st.extents);
  assert.equal(
    ranges.reduce((n, r) => n + r.size, 0),
    st.bytes,
  );
  assert.ok(
    ranges.some((r) => r.base <= st.root && st.root < r.base + r.size),
    'the root is in the first extent',
  );
  assert.deepEqual(
    k.kho.subtreeNames().filter((n) => n.startsWith('store_')),
    ['store_kv'],
  );
});

test('the table grows a bounded piece per update: no put rehashes the whole table', () => {
  let stores = 0;
  let most = 0;
  const k = Machine.create({ size: 128 * MiB }).boot();
  const s = openStore(k, { name: 'grow', beforeStore: () => stores++ });
  let resizes = 0;
  let wasResizing = false;
  for (let i = 0; i < 100_000; i++) {
    stores = 0;
    s.put(`k${i}`, 'v');
    most = Math.max(most, stores);
    const r = s.stats().resizing;
    if (r && !wasResizing) resizes++;
    wasResizing = r;
  }
  assert.ok(resizes >= 6, `${resizes} resizes from 1024 slots to ${s.stats().tableSlots}`);
  // A put's own stores (up to ~30 with a new slab) plus 8 slots moved (~6 stores each); a whole rehash here is ~300,000.
  assert.ok(most <= 100, `a put made ${most} metadata stores`);
  for (let i = 0; i < 100_000; i += 997) assert.equal(s.get(`k${i}`)?.toString(), 'v');
});

test('a store on a pmpool is handed over by kexec too, through the pool', () => {
  const m = Machine.create({ size: 32 * MiB });
  const k = m.boot('pmpool=4M,16M');
  const s = openStore(k, { name: 'p', pool: k.pmpool! });
  for (let i = 0; i < 1000; i++) s.put(`k${i}`, value(i, 100));
  const k2 = handOver(k);
  const s2 = openStore(k2, { name: 'p', pool: k2.pmpool! });
  assert.equal(s2.size, 1000);
  for (let i = 0; i < 1000; i += 7) assert.deepEqual(s2.get(`k${i}`), value(i, 100));
  assert.equal(s2.stats().root, s.stats().root);
});

test('a store above 4 GiB of device: refs reach it through windows, and it survives a kexec', () => {
  const GiB = 1024 * MiB;
  const m = Machine.create({ size: 5 * GiB });
  const k = m.boot('pmpool=4608M,64M');
  const s = openStore(k, { name: 'high', pool: k.pmpool! });
  for (let i = 0; i < 3000; i++) s.put(`k${i}`, value(i, 1000 + (i % 3000)));
  s.put('big', value(7, 20 * MiB));
  assert.ok(s.stats().root > 4 * GiB);
  const view = s.getView('k5')!;
  assert.deepEqual(Buffer.from(view), value(5, 1005));
  const k2 = handOver(k);
  const s2 = openStore(k2, { name: 'high', pool: k2.pmpool! });
  for (let i = 0; i < 3000; i += 13)
    assert.deepEqual(s2.get(`k${i}`), value(i, 1000 + (i % 3000)), `k${i}`);
  assert.ok(Buffer.from(s2.getView('big')!).equals(value(7, 20 * MiB)));
  assert.deepEqual(s2.check().problems, []);
});

test('a view of the store can be put back into it, even by a put that evicts its entry', () => {
  const k = Machine.create({ size: 64 * MiB }).boot();
  // Room for one 150 KiB value: the second put must evict the first, whose view is its value.
  const s = openStore(k, { name: 'alias', evict: 'lru', budget: '256K' });
  const v = value(1, 150 * 1024);
  s.put('a', v);
  s.put('a-much-longer-key', s.getView('a')!);
  assert.equal(s.get('a'), undefined, 'evicted');
  assert.ok(s.get('a-much-longer-key')?.equals(v));
});
