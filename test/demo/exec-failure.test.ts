/**
 * kv-cache when the exec of an upgrade fails: the running version keeps
 * serving with every value, on the same socket, and can try again.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { after, test } from 'node:test';
import { demoDevicePath, SERVER_SCRIPT } from '../../examples/kv-cache/driver.js';
import { removeDevice } from '../process/_fixture.js';

interface Answer {
  status: number;
  body: string;
  version: string;
}

function ask(port: number, method: string, path: string, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
      });
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body: text,
          version: String(res.headers['x-version']),
        }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

const device = demoDevicePath();
after(() => removeDevice(device));

test('a failed upgrade exec: version 1 keeps serving its values on the same port, and fails again cleanly', {
  timeout: 30_000,
}, async () => {
  const child = spawn(
    process.execPath,
    [SERVER_SCRIPT, '--device', device, '--size', '8M', '--port', '0', '--exit-with-stdin'].concat([
      '--upgrade-program',
      '/nonexistent/kv-cache',
    ]),
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  after(() => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    stderr += d;
  });
  const ready = await new Promise<{ port: number; pid: number }>((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      out += d;
      if (out.includes('\n')) resolve(JSON.parse(out.slice(0, out.indexOf('\n'))));
    });
    child.on('exit', () => reject(new Error(`exited: ${stderr}`)));
  });
  const { port } = ready;
  assert.equal((await ask(port, 'PUT', '/kv/a', 'alpha')).status, 204);
  for (let attempt = 1; attempt <= 2; attempt++) {
    const up = await ask(port, 'POST', '/admin/upgrade?version=2');
    assert.equal(up.status, 202);
    // Wait for the failure to be reported, then the service must answer as version 1.
    const deadline = Date.now() + 10_000;
    while (stderr.split('upgrade to version 2 failed').length <= attempt) {
      assert.ok(Date.now() < deadline, `no failure reported: ${stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.match(stderr, /execve\(\/nonexistent\/kv-cache\): ENOENT/);
    const a = await ask(port, 'GET', '/kv/a');
    assert.deepEqual([a.status, a.body, a.version], [200, 'alpha', '1']);
    assert.equal((await ask(port, 'PUT', `/kv/b${attempt}`, `beta${attempt}`)).status, 204);
  }
  const stats = JSON.parse((await ask(port, 'GET', '/stats')).body) as Record<string, unknown>;
  assert.deepEqual(
    [stats.entries, stats.version, stats.pid, stats.generation],
    [3, 1, ready.pid, 1],
  );
  assert.doesNotMatch(stderr, /freeze|EAGAIN/, 'the second attempt found the session clean');
  // /metrics counts both failures, and no completed handover.
  const metrics = await ask(port, 'GET', '/metrics');
  assert.equal(metrics.status, 200);
  assert.match(metrics.body, /^livekexec_handovers_failed_total 2$/m);
  assert.match(metrics.body, /^livekexec_handovers_total 0$/m);
  child.stdin.end();
});
