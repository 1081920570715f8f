/**
 * Memory hotplug across generations: a successor boots a larger device and
 * keeps everything; a cold boot grows a device too, and never shrinks one.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { DeviceError } from '../../src/memory/errors.js';
import { boot } from '../../src/process.js';
import { openStore } from '../../src/store/index.js';
import { Fixture, removeDevice, tempDevice } from './_fixture.js';

const MiB = 1024 * 1024;
const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups) c();
});

test('a successor asks for a larger device: it grows, the store keeps every entry and uses the new memory', {
  timeout: 60_000,
}, async () => {
  const device = tempDevice('grow');
  const fx = new Fixture('store-grow.mjs', [device]);
  cleanups.push(() => {
    fx.cleanup();
    removeDevice(device);
  });
  const filled = await fx.waitFor('filled', 30_000);
  assert.equal(filled.size, 16 * MiB);
  assert.equal(filled.entries, 4000);
  assert.equal(filled.full, true, '16 MiB cannot take 20 MB more');
  const grown = await fx.waitFor('grown', 30_000);
  assert.equal(grown.pid, filled.pid, 'in place');
  assert.equal(grown.kind, 'kexec');
  assert.equal(grown.size, 48 * MiB);
  assert.equal(grown.kept, 4000, 'every entry kept');
  assert.equal(grown.more, 20 * 1024 * 1024, 'the new memory is used');
  assert.deepEqual(grown.log, ['memory: hotplugged [0x1000000, +0x2000000)']);
});

test('a cold boot grows a device that is too small, and refuses to shrink one', async () => {
  const device = tempDevice('grow-cold');
  cleanups.push(() => removeDevice(device));
  const k1 = await boot({ device, size: '8M' });
  k1.device.close();
  const k2 = await boot({ device, size: '12M' });
  assert.equal(k2.device.size, 12 * MiB);
  assert.equal(k2.pages.stats().totalPages, (12 * MiB) / 4096);
  assert.ok(k2.log.includes('memory: hotplugged [0x800000, +0x400000)'), k2.log.join('\n'));
  const s = openStore(k2, { name: 'x' });
  s.put('a', Buffer.alloc(3 * MiB));
  k2.device.close();
  await assert.rejects(
    boot({ device, size: '8M' }),
    (e) => e instanceof DeviceError && e.code === 'EINVAL' && /never shrinks/.test(e.message),
  );
});
