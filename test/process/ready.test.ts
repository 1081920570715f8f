import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { FakeServiceManager } from './_fake-manager.js';
import { Fixture, removeDevice, tempDevice } from './_fixture.js';

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups) c();
});

test("boot({ notifyReady: 'good' }): systemd hears READY=1 when the program calls kernel.markGood(), not at boot", {
  timeout: 30_000,
}, async () => {
  const device = tempDevice('ready');
  const manager = new FakeServiceManager();
  cleanups.push(() => {
    manager.close();
    removeDevice(device);
  });
  const fx = new Fixture('ready.mjs', [device], { start: (argv) => manager.start(argv) });
  cleanups.push(() => fx.cleanup());
  await fx.waitFor('booted');
  const marking = await fx.waitFor('marking-good');
  await manager.waitFor((t) => t === 'READY=1');
  // Nothing before the program said so: the first READY=1 came after 'marking-good'.
  assert.equal(manager.notifications.indexOf('READY=1'), manager.notifications.length - 1);
  assert.ok(marking.t > 0);
  await fx.exited;
  assert.deepEqual(
    manager.notifications.filter((n) => n.startsWith('READY=1')),
    ['READY=1'],
    'once',
  );
});
