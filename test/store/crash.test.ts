/**
 * Crash consistency on a pmpool: a process killed before any metadata store
 * of an update (put, overwrite, delete, a large value, a table resize) leaves
 * a store that a cold boot opens consistent, with the update either done or
 * not, never torn. A kill is the device's bytes at that moment, booted cold
 * on another machine.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Machine } from '../../src/machine.js';
import { openStore, type PreservedStore, StoreError } from '../../src/store/index.js';

const MiB = 1024 * 1024;
const SIZE = 16 * MiB;
const CMDLINE = 'pmpool=4M,8M';

function value(i: number, len = 30 + (i % 70)): Buffer {
  return Buffer.alloc(len, (i * 7) & 0xff);
}

function contents(s: PreservedStore): Map<string, string> {
  return new Map([...s.entries()].map(([k, v]) => [k.toString(), v.toString('hex')]));
}

type Update = (s: PreservedStore) => void;

/** A crash-safe store on the pool with `base` entries, and a hook to kill it. */
function setUp(base: number, beforeStore: () => void) {
  const m = Machine.create({ size: SIZE });
  const k = m.boot(CMDLINE);
  const s = openStore(k, { name: 'c', pool: k.pmpool!, crashSafe: true, beforeStore });
  for (let i = 0; i < base; i++) s.put(`key-${i}`, value(i));
  for (let i = 0; i < base; i += 5) s.delete(`key-${i}`);
  return { m, k, s };
}

/** Kills `update` before each of its metadata stores in turn; each cold boot must see before or after. */
function killEverywhere(name: string, base: number, update: Update): number {
  let armed = false;
  let stores = 0;
  const probe = setUp(base, () => {
    if (armed) stores++;
  });
  const before = contents(probe.s);
  const usedBefore = probe.k.pmpool!.stats().usedPages;
  armed = true;
  update(probe.s);
  armed = false;
  const after = contents(probe.s);
  const usedAfter = probe.k.pmpool!.stats().usedPages;
  assert.notDeepEqual(before, after, `${name} changes the store`);
  for (let kill = 0; kill <= stores; kill++) {
    let n = 0;
    let image: Uint8Array | null = null;
    let on = false;
    const { m, s } = setUp(base, () => {
      if (on && n++ === kill) image = m.device.bytes(0, SIZE).slice();
    });
    on = true;
    update(s);
    on = false;
    const dead = image ?? m.device.bytes(0, SIZE).slice();
    const m2 = Machine.create({ size: SIZE });
    m2.device.bytes(0, SIZE).set(dead);
    const k2 = m2.boot(CMDLINE);
    const back = openStore(k2, { name: 'c', pool: k2.pmpool!, crashSafe: true });
    const got = contents(back);
    const which = sameMap(got, before) ? 'before' : sameMap(got, after) ? 'after' : 'torn';
    assert.notEqual(which, 'torn', `${name}, killed before store ${kill} of ${stores}: torn`);
    assert.deepEqual(back.check().problems, [], `${name}, killed before store ${kill}`);
    // A span the killed update was taking or giving back is found and given back.
    back.reclaim();
    const used = k2.pmpool!.stats().usedPages;
    assert.ok(
      used <= Math.max(usedBefore, usedAfter),
      `${name}, killed before store ${kill}: ${used} pages used after reclaim, ${usedBefore}/${usedAfter} without a kill`,
    );
    assert.equal(back.reclaim(), 0, 'nothing left to reclaim');
    assert.equal(back.size, got.size);
    // And it goes on working.
    back.put('after-the-crash', 'ok');
    assert.equal(back.get('after-the-crash')?.toString(), 'ok');
  }
  return stores;
}

function sameMap(a: Map<string, string>, b: Map<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

test('a killed put, overwrite, delete and large put: the store opens with it done or not, never torn', () => {
  const n = [
    killEverywhere('a new key', 60, (s) => s.put('fresh', value(1000))),
    killEverywhere('an overwrite', 60, (s) => s.put('key-3', value(3000, 200))),
    killEverywhere('a delete', 60, (s) => s.delete('key-7')),
    killEverywhere('a 20 KiB value', 60, (s) => s.put('large', value(9, 20 * 1024))),
  ];
  assert.ok(
    n.every((x) => x >= 10),
    `kill points: ${n.join(', ')}`,
  );
});

test('a killed update in the middle of a table resize: still before or after', () => {
  // 1024 slots grow past 5/8 full at 640 entries; updates then zero and migrate a piece each.
  let stores = 0;
  for (const base of [660, 700, 1000]) {
    stores += killEverywhere(`put at ${base} entries`, base, (s) => {
      s.put('x', value(1));
    });
  }
  assert.ok(stores > 30);
});

test('a store that is not crash-safe, left open by a killed process, is refused (EIO), not read', () => {
  const m = Machine.create({ size: SIZE });
  const k = m.boot(CMDLINE);
  const s = openStore(k, { name: 'c', pool: k.pmpool! });
  s.put('a', 'b');
  const m2 = Machine.create({ size: SIZE });
  m2.device.bytes(0, SIZE).set(m.device.bytes(0, SIZE));
  const k2 = m2.boot(CMDLINE);
  assert.throws(
    () => openStore(k2, { name: 'c', pool: k2.pmpool! }),
    (e) => e instanceof StoreError && e.code === 'EIO',
  );
  // Closed cleanly, it opens after a restart.
  s.close();
  const m3 = Machine.create({ size: SIZE });
  m3.device.bytes(0, SIZE).set(m.device.bytes(0, SIZE));
  const k3 = m3.boot(CMDLINE);
  assert.equal(openStore(k3, { name: 'c', pool: k3.pmpool! }).get('a')?.toString(), 'b');
});

test('crashSafe needs a pool; a store on a pool that holds other allocations is refused', () => {
  const k = Machine.create({ size: SIZE }).boot(CMDLINE);
  assert.throws(
    () => openStore(k, { name: 'c', crashSafe: true }),
    (e) => e instanceof StoreError && e.code === 'EINVAL',
  );
  k.pmpool!.alloc(1);
  assert.throws(
    () => openStore(k, { name: 'c', pool: k.pmpool! }),
    (e) => e instanceof StoreError && e.code === 'EINVAL',
  );
});
