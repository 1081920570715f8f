/**
 * kv-cache's batch endpoints (the demo fills and checks a million keys with
 * them): bad bodies are 400, a full device 507, and a batch stores or finds
 * every key it names.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { after, test } from 'node:test';
import { demoDevicePath, SERVER_SCRIPT } from '../../examples/kv-cache/driver.js';
import { removeDevice } from '../process/_fixture.js';

function post(port: number, path: string, body: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: 'POST', path, agent: false },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function putEntry(key: string, value: Buffer): Buffer {
  const k = Buffer.from(key);
  const head = Buffer.alloc(6);
  head.writeUInt16LE(k.length, 0);
  head.writeUInt32LE(value.length, 2);
  return Buffer.concat([head, k, value]);
}

function getEntry(key: string): Buffer {
  const k = Buffer.from(key);
  const head = Buffer.alloc(2);
  head.writeUInt16LE(k.length, 0);
  return Buffer.concat([head, k]);
}

const device = demoDevicePath();
after(() => removeDevice(device));

test('kv-cache /kv-batch and /kv-mget: every key stored and found; cut-off bodies 400; a full device 507', {
  timeout: 30_000,
}, async () => {
  const child = spawn(
    process.execPath,
    [SERVER_SCRIPT, '--device', device, '--size', '8M', '--port', '0', '--exit-with-stdin'],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  after(() => child.kill('SIGKILL'));
  const { port } = await new Promise<{ port: number }>((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      out += d;
      if (out.includes('\n')) resolve(JSON.parse(out.slice(0, out.indexOf('\n'))));
    });
    child.on('exit', () => reject(new Error('kv-cache exited')));
  });
  const values = Array.from({ length: 50 }, (_, i) => Buffer.alloc(100 + i, i));
  const batch = Buffer.concat(values.map((v, i) => putEntry(`k${i}`, v)));
  assert.equal((await post(port, '/kv-batch', batch)).status, 204);
  const got = await post(
    port,
    '/kv-mget',
    Buffer.concat([getEntry('k7'), getEntry('nope'), getEntry('k49')]),
  );
  assert.equal(got.status, 200);
  const b = got.body;
  assert.equal(b.readUInt32LE(0), 107);
  assert.ok(b.subarray(4, 111).equals(values[7]));
  assert.equal(b.readUInt32LE(111), 0xffffffff, 'no such key');
  assert.equal(b.readUInt32LE(115), 149);
  assert.ok(b.subarray(119).equals(values[49]));
  for (const cut of [batch.subarray(0, 3), batch.subarray(0, 50)]) {
    const r = await post(port, '/kv-batch', cut);
    assert.equal(r.status, 400);
    assert.match(r.body.toString(), /cut off/);
  }
  assert.equal((await post(port, '/kv-mget', Buffer.from([5]))).status, 400);
  const big = Buffer.concat(
    Array.from({ length: 200 }, (_, i) => putEntry(`big${i}`, Buffer.alloc(60 * 1024))),
  );
  const full = await post(port, '/kv-batch', big);
  assert.equal(full.status, 507, full.body.toString());
  assert.match(full.body.toString(), /ENOMEM/);
});
