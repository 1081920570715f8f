import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Machine } from '../../src/index.js';
import { E820 } from '../../src/memory/memmap-types.js';
import { SLOT_HEADER_SIZE, SLOT_PAYLOAD_LEN } from '../../src/status/abi.js';
import { decodeSlot, encodeSlot, findStatusArea, readArea } from '../../src/status/area.js';
import { StatusError } from '../../src/status/errors.js';
import {
  decodeStatusHistory,
  decodeStatusPayload,
  encodeStatusPayload,
} from '../../src/status/payload.js';

const MiB = 1024 * 1024;

function published() {
  const m = Machine.create({ size: 16 * MiB, status: true });
  const k = m.boot('kho=on');
  k.kho.preserveFolio(k.allocPages(2) as never);
  const lu = k.liveupdate;
  lu.createSession('web');
  const status = k.publishedStatus();
  lu.close();
  return { m, k, status };
}

test('status payload: what is encoded decodes to the same status, and its history alone to the same history', () => {
  const { status } = published();
  assert.deepEqual(decodeStatusPayload(encodeStatusPayload(status)), status);
  assert.deepEqual(decodeStatusHistory(encodeStatusPayload(status)), status.handover);
});

test('status area: the newest valid slot wins, a torn or damaged slot falls back to the other', () => {
  const { m, k } = published();
  const area = k.status().statusArea;
  assert.ok(area);
  assert.ok(k.publishStatus());
  const first = readArea(m.device, area);
  assert.ok(first.ok);
  k.allocPages(0);
  assert.ok(k.publishStatus());
  const second = readArea(m.device, area);
  assert.ok(second.ok);
  assert.equal(second.sequence, first.sequence + 1);
  assert.notEqual(second.slot, first.slot);
  // Damage the newest slot's payload: the reader takes the older one, whole.
  const half = area.size / 2;
  const at = area.base + second.slot * half + SLOT_HEADER_SIZE + 40;
  m.device.bytes(at, 1)[0] ^= 0xff;
  const after = readArea(m.device, area);
  assert.ok(after.ok);
  assert.equal(after.sequence, first.sequence);
  // Both damaged: an error with the reason, never a status.
  m.device.bytes(area.base + first.slot * half, 4).fill(0);
  const none = readArea(m.device, area);
  assert.equal(none.ok, false);
  assert.match(String(!none.ok && none.error.message), /no valid status slot: .*(magic|checksum)/);
});

test('status area: a slot never written is passed over, one whose length overruns it is refused, neither is read as a status', () => {
  const { m, k } = published();
  const area = k.status().statusArea;
  assert.ok(area);
  const half = area.size / 2;
  m.device.bytes(area.base, area.size).fill(0);
  const blank = readArea(m.device, area);
  assert.equal(blank.ok, false);
  assert.match(String(!blank.ok && blank.error.message), /no valid status slot: bad magic 0x0/);
  // One valid slot beside a blank one: that slot, read whole.
  const payload = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
  m.device.bytes(area.base + half, half).set(encodeSlot(payload, 7, half));
  const one = readArea(m.device, area);
  assert.ok(one.ok);
  assert.equal(one.slot, 1);
  assert.equal(one.sequence, 7);
  assert.deepEqual(one.payload, payload);
  // A header claiming more payload than the slot holds: refused, the other slot wins.
  const older = encodeSlot(payload, 6, half);
  new DataView(older.buffer).setUint32(SLOT_PAYLOAD_LEN, half, true);
  m.device.bytes(area.base, older.length).set(older);
  m.device.bytes(area.base + half, half).fill(0);
  const over = readArea(m.device, area);
  assert.equal(over.ok, false);
  assert.match(String(!over.ok && over.error.message), /overruns the \d+-byte slot/);
});

test('status area: found by its memory map type; a range that cannot hold two slots is refused', () => {
  const map = [
    { base: 0, size: 4096, type: E820.RESERVED },
    { base: 4096, size: 8192, type: E820.STATUS },
  ];
  assert.deepEqual(findStatusArea(map, 1 * MiB), { base: 4096, size: 8192 });
  assert.equal(findStatusArea(map.slice(0, 1), 1 * MiB), null);
  assert.throws(
    () => findStatusArea([{ base: 4096, size: 12288, type: E820.STATUS }], 1 * MiB),
    (e: unknown) => e instanceof StatusError && e.code === 'EINVAL',
  );
  assert.throws(
    () => findStatusArea([{ base: 4096, size: 8192, type: E820.STATUS }], 8192),
    (e: unknown) => e instanceof StatusError && e.code === 'EINVAL',
  );
});

test('status slot: a newer layout an old reader cannot read is EPROTONOSUPPORT', () => {
  const slot = encodeSlot(new Uint8Array(8), 1, 4096);
  const v = new DataView(slot.buffer);
  v.setUint32(4, 9, true);
  v.setUint32(8, 9, true);
  assert.throws(
    () => decodeSlot(slot),
    (e: unknown) => e instanceof StatusError && e.code === 'EPROTONOSUPPORT',
  );
});

test('status decoders: any damage to a slot or its tree is a StatusError or a valid status, never another exception', () => {
  const { status } = published();
  const payload = encodeStatusPayload(status);
  const slot = encodeSlot(payload, 7, 32 * 1024);
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(slot.length - 1), fc.integer({ min: 1, max: 255 })), {
        minLength: 1,
        maxLength: 8,
      }),
      fc.boolean(),
      (flips, fixCrc) => {
        const bad = slot.slice();
        for (const [at, x] of flips) bad[at] ^= x;
        try {
          decodeSlot(bad);
        } catch (err) {
          assert.ok(err instanceof StatusError, String(err));
        }
        // The tree behind a valid checksum is untrusted too.
        const tree = payload.slice();
        if (fixCrc) for (const [at, x] of flips) tree[at % tree.length] ^= x;
        try {
          const s = decodeStatusPayload(tree);
          for (const r of s.layout.runs) assert.ok(r.base + r.size <= s.deviceSize);
        } catch (err) {
          assert.ok(err instanceof StatusError, String(err));
        }
        // What a booting generation reads of it: the history alone, the same checks.
        try {
          const h = decodeStatusHistory(tree);
          assert.ok(Number.isSafeInteger(h.handovers) && h.handovers >= 0);
        } catch (err) {
          assert.ok(err instanceof StatusError, String(err));
        }
      },
    ),
    { numRuns: 2000 },
  );
});
