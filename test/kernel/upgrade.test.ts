/** kernel.upgrade's order: the device's mappings are dropped while the generation still serves. */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { type UpgradeHost, upgrade } from '../../src/kernel/upgrade.js';
import { Machine } from '../../src/machine.js';

/** A host that records what upgrade asks of it, in order. */
function recordingHost(steps: string[], listening: () => boolean): UpgradeHost<string> {
  const machine = Machine.create({ size: 32 * 2 ** 20 }).boot();
  return {
    liveupdate: machine.liveupdate,
    load: () => {
      steps.push('load');
    },
    zapMappings: async () => {
      steps.push(`zap (serving: ${listening()})`);
      await new Promise((resolve) => setTimeout(resolve, 5));
      steps.push('zapped');
    },
    unload: () => {
      steps.push('unload');
    },
    exec: () => {
      steps.push(`exec (serving: ${listening()})`);
      return 'successor';
    },
  };
}

test('upgrade drops the mappings after the load, while the server still listens, and before the hooks and the exec', async () => {
  const steps: string[] = [];
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = recordingHost(steps, () => server.listening);
  const got = await upgrade(host, {
    servers: { web: server },
    beforeExec: [() => steps.push('hook')],
  });
  assert.equal(got, 'successor');
  assert.deepEqual(steps, [
    'load',
    'zap (serving: true)',
    'zapped',
    'hook',
    'exec (serving: false)',
  ]);
});
