import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { readDeviceHeader } from '../../src/memory/header.js';
import type { MappedDevice } from '../../src/memory/mapped.js';
import { boot } from '../../src/process.js';
import { Fixture, removeDevice, tempDevice } from './_fixture.js';

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups) c();
});

test('kill -9 in the middle of kexec load: the device stays consistent and the next boot is a clean cold boot', {
  timeout: 30_000,
}, async () => {
  const device = tempDevice('kill');
  const fx = new Fixture('load-loop.mjs', [device]);
  cleanups.push(() => {
    fx.cleanup();
    removeDevice(device);
  });
  const first = await fx.waitFor('boot');
  await fx.waitFor('looping');
  await new Promise((r) => setTimeout(r, 50));
  fx.child.kill('SIGKILL');
  assert.equal((await fx.exited).signal, 'SIGKILL');
  const kernel = await boot({ device });
  try {
    assert.equal(kernel.boot.kind, 'cold');
    assert.equal(kernel.boot.coldReason, undefined);
    assert.equal(kernel.generation, 2);
    assert.notEqual(kernel.boot.bootId, first.bootId);
    assert.equal(readDeviceHeader(kernel.device).bootBlock, 0, 'no boot block was left pending');
    assert.equal(kernel.pages.stats().allocatedPages, 0, 'no page is lost to the killed load');
    assert.notEqual(kernel.kexec.load({}), null);
  } finally {
    (kernel.device as MappedDevice).close();
  }
});
