/**
 * The control channel rehearsal a preloaded handover runs before "ready"
 * (successor) and at load (predecessor): it must finish, and leave no
 * descriptor behind, or every kexec load of a long-lived service would leak some.
 * The status read a preloaded successor rehearses on the device its
 * predecessor still owns: it must only read, and never throw.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import { Machine } from '../../src/machine.js';
import { rehearseControlChannel, rehearseStatusRead } from '../../src/rehearsal.js';

function openFds(): string[] {
  return readdirSync('/proc/self/fd').sort();
}

test('a control channel rehearsal leaves no descriptor open', async () => {
  await rehearseControlChannel(); // libuv and koffi open theirs on first use
  const before = openFds();
  for (let i = 0; i < 5; i++) await rehearseControlChannel();
  assert.deepEqual(openFds(), before);
});

test('a status read rehearsal reads the device of its owner without writing it, and never throws on a damaged one', () => {
  const m = Machine.create({ size: 16 * 2 ** 20, status: true });
  const k = m.boot('kho=on');
  assert.ok(k.publishStatus());
  const area = k.status().statusArea;
  assert.ok(area);
  const before = m.device.bytes(0, m.device.size).slice();
  rehearseStatusRead(m.device);
  assert.ok(Buffer.from(m.device.bytes(0, m.device.size)).equals(before), 'not a byte written');
  // Caught mid-write: a torn slot, then a torn device header.
  m.device.bytes(area.base, area.size).fill(0xa5);
  assert.doesNotThrow(() => rehearseStatusRead(m.device));
  m.device.bytes(0, 64).fill(0xa5);
  assert.doesNotThrow(() => rehearseStatusRead(m.device));
});
