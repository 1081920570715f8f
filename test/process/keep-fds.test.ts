import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { Fixture, removeDevice, tempDevice } from './_fixture.js';

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups) c();
});

for (const mode of ['inplace', 'preload']) {
  test(`a kept descriptor reaches the successor at its number (${mode})`, {
    timeout: 30_000,
  }, async () => {
    const device = tempDevice(`keep-${mode}`);
    const file = `${device}.kept`;
    writeFileSync(file, `kept across ${mode}`);
    const fx = new Fixture('keep-fds.mjs', [device, mode, file]);
    cleanups.push(() => {
      fx.cleanup();
      removeDevice(device);
      removeDevice(file);
    });
    await fx.waitFor('done');
    const [first, second] = fx.all('boot');
    assert.equal(second.kind, 'kexec', fx.report());
    assert.equal(second.want, first.kept);
    assert.equal(second.here, first.kept, 'placed at the same number');
    assert.equal(second.content, `kept across ${mode}`);
    assert.equal((second.fds as Record<string, string>)[String(first.kept)], file);
    if (mode === 'inplace') assert.equal(second.pid, first.pid);
    else assert.notEqual(second.pid, first.pid);
    fx.finish();
    await fx.ended();
  });
}
