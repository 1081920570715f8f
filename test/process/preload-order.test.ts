import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Fixture, removeDevice, tempDevice } from './_fixture.js';
import { requestLoop } from './_load.js';

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups) c();
});

const UPGRADES = 20;

for (const order of ['load-first', 'session-first']) {
  test(`preloaded upgrades with the LUO session created ${order === 'load-first' ? 'after' : 'before'} the kexec load: the socket goes across every time, 0 failed requests over ${UPGRADES} upgrades under load`, {
    timeout: 180_000,
  }, async () => {
    const device = tempDevice(`preload-${order}`);
    const fx = new Fixture('preload-order.mjs', [device, order, String(UPGRADES)]);
    cleanups.push(() => {
      fx.cleanup();
      removeDevice(device);
    });
    const first = await fx.waitFor('serving');
    const traffic = requestLoop(first.port as number, 2);
    const last = await fx.waitFor(
      (e) => e.event === 'serving' && e.generation === UPGRADES + 1,
      150_000,
    );
    await new Promise((r) => setTimeout(r, 200));
    const counted = await traffic.stop();
    assert.deepEqual(fx.all('retrieve-failed'), [], fx.report());
    assert.equal(last.port, first.port, 'the same socket every time');
    assert.equal(
      new Set(fx.all('serving').map((e) => e.pid)).size,
      UPGRADES + 1,
      'a new process each time',
    );
    assert.deepEqual(counted.failed, [], `no request may fail; ${fx.report()}`);
    assert.ok(counted.ok > UPGRADES, `${counted.ok} requests served`);
    process.kill(last.pid, 'SIGTERM');
    await fx.ended();
  });
}
