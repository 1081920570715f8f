/** kernel.upgrade: the order of its steps, and what it does to connections it drains. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import { type AddressInfo, createServer } from 'node:net';
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

test('upgrade drops the mappings after the load, while the server still listens, and before the hooks and the exec', async (t) => {
  const steps: string[] = [];
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = recordingHost(steps, () => server.listening);
  t.after(() => host.liveupdate.close());
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

/** One GET on a new connection (no keep-alive): the body, or the error. */
function get(port: number): Promise<string> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve(body));
    });
    req.on('error', (err) => resolve(`error: ${err.message}`));
  });
}

test('kernel.upgrade: requests on connections accepted right before the upgrade are served, not reset (Node.js 26 closes accepted connections whose request was not read yet as idle)', {
  timeout: 20_000,
}, async (t) => {
  const k = Machine.create({ size: 32 * 1024 * 1024 }).boot();
  const old = http.createServer((_req, res) => res.end('old'));
  t.after(() => old.close());
  old.listen(0, '127.0.0.1');
  await once(old, 'listening');
  const { port } = old.address() as AddressInfo;
  // The upgrade starts as the server accepts the connections: their requests are not read yet.
  const upgraded = new Promise<Awaited<ReturnType<typeof k.upgrade>>>((resolve, reject) => {
    let seen = 0;
    old.on('connection', () => {
      if (++seen === 4) k.upgrade({ servers: { web: old } }).then(resolve, reject);
    });
  });
  const replies = Promise.all([get(port), get(port), get(port), get(port)]);
  const next = await upgraded;
  const taken = next.takeServer(
    'web',
    http.createServer((_req, res) => res.end('new')),
  );
  assert.ok(taken);
  t.after(() => taken.close());
  if (!taken.listening) await once(taken, 'listening');
  assert.deepEqual(await replies, ['old', 'old', 'old', 'old']);
  assert.equal(await get(port), 'new', 'the successor serves on the same socket');
});
