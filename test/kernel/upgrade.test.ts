/** kernel.upgrade: the order of its steps, and what it does to connections it drains. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { type AddressInfo, createConnection, createServer } from 'node:net';
import { type TestContext, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import type { Kernel } from '../../src/kernel/kernel.js';
import { type UpgradeHost, upgrade } from '../../src/kernel/upgrade.js';
import { Machine } from '../../src/machine.js';
import { fixture } from '../_helpers/paths.js';

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

/** A booted emulated kernel and an HTTP (or, with `tls`, https) server answering "old" on a free port, closed after the test. */
async function oldServer(
  t: TestContext,
  tls = false,
): Promise<{ k: Kernel; old: http.Server; port: number }> {
  const k = Machine.create({ size: 32 * 1024 * 1024 }).boot();
  const answer = (_req: http.IncomingMessage, res: http.ServerResponse) => res.end('old');
  const old = tls ? https.createServer(TLS_FIXTURE, answer) : http.createServer(answer);
  t.after(() => old.close());
  old.listen(0, '127.0.0.1');
  await once(old, 'listening');
  return { k, old, port: (old.address() as AddressInfo).port };
}

/** A self-signed certificate for localhost (test/fixtures/tls/README.md). */
const TLS_FIXTURE = {
  key: readFileSync(fixture('tls', 'key.pem')),
  cert: readFileSync(fixture('tls', 'cert.pem')),
};

test('kernel.upgrade: requests on connections accepted right before the upgrade are served, not reset (Node.js 26 closes accepted connections whose request was not read yet as idle)', {
  timeout: 20_000,
}, async (t) => {
  const { k, old, port } = await oldServer(t);
  // The upgrade starts as the server accepts the connections: their requests are not read yet.
  const upgraded = new Promise<Awaited<ReturnType<typeof k.upgrade>>>((resolve, reject) => {
    let seen = 0;
    old.on('connection', () => {
      if (++seen === 4) k.upgrade({ servers: { web: old } }).then(resolve, reject);
    });
  });
  const replies = Promise.all([get(port), get(port), get(port), get(port)]);
  const next = await upgraded;
  t.after(() => next.liveupdate.close());
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

/** A raw connection (TLS with `tls`) that sends one GET `delayMs` after it is up: the response's body, or the error. */
function lateGet(port: number, delayMs: number, up: () => void, tls = false): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls
      ? tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false })
      : createConnection(port, '127.0.0.1');
    let reply = '';
    socket.setEncoding('utf8');
    socket.on(tls ? 'secureConnect' : 'connect', () => {
      up();
      setTimeout(
        () => socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
        delayMs,
      );
    });
    socket.on('data', (d: string) => {
      reply += d;
    });
    socket.on('end', () => resolve(reply.slice(reply.indexOf('\r\n\r\n') + 4)));
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(`error: ${err.code}`));
  });
}

for (const tls of [false, true]) {
  test(`kernel.upgrade: a request sent 200 ms after its ${tls ? 'TLS ' : ''}connection was accepted, the drain under way, is answered, not reset`, {
    timeout: 20_000,
  }, async (t) => {
    const { k, old, port } = await oldServer(t, tls);
    // http.Server takes a TLS connection up once its handshake is done.
    const acceptedByServer = once(old, tls ? 'secureConnection' : 'connection');
    let upgraded: Promise<unknown> = Promise.resolve();
    const reply = lateGet(
      port,
      200,
      () => {
        upgraded = acceptedByServer.then(() => k.upgrade({ servers: { web: old } }));
      },
      tls,
    );
    assert.equal(await reply, 'old');
    const next = (await upgraded) as Awaited<ReturnType<typeof k.upgrade>>;
    next.takeServer('web')?.close();
    next.liveupdate.close();
  });
}

test('kernel.upgrade: a keep-alive connection idle between requests is closed at once, the upgrade does not wait for the drain timeout', {
  timeout: 20_000,
}, async (t) => {
  const { k, old, port } = await oldServer(t);
  const agent = new http.Agent({ keepAlive: true });
  t.after(() => agent.destroy());
  const body = await new Promise<string>((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
        let b = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          b += d;
        });
        res.on('end', () => resolve(b));
      })
      .on('error', reject);
  });
  assert.equal(body, 'old');
  const started = performance.now();
  const next = await k.upgrade({ servers: { web: old }, drainTimeoutMs: 10_000 });
  assert.ok(performance.now() - started < 5_000, 'closed long before the 10 s drain timeout');
  next.takeServer('web')?.close();
  next.liveupdate.close();
});
