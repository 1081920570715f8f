/**
 * `livekexec demo` as a user runs it, and the end-to-end test: an
 * HTTP server upgraded 20 times in place under continuous load from a second
 * process (this one), with 0 failed requests and every key kept.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { type DemoReport, runDemo } from '../../examples/kv-cache/driver.js';
import { runCli } from '../_helpers/cli.js';
import { CLI } from '../_helpers/paths.js';

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

function assertGood(r: DemoReport, upgrades: number, keys: number): void {
  const why = JSON.stringify({ problems: r.problems, upgrades: r.upgrades });
  assert.equal(r.ok, true, why);
  assert.deepEqual(r.problems, []);
  assert.equal(r.upgrades.length, upgrades, why);
  assert.deepEqual(
    r.upgrades.map((u) => u.to),
    Array.from({ length: upgrades }, (_, i) => i + 2),
  );
  assert.deepEqual(
    r.upgrades.map((u) => u.generation),
    Array.from({ length: upgrades }, (_, i) => i + 2),
  );
  for (const u of r.upgrades) {
    assert.equal(u.pid, r.pid, 'same PID after every upgrade');
    assert.equal(u.pidUnchanged, true);
    assert.equal(u.failed, 0);
    assert.equal(u.wrongValues, 0);
    assert.equal(u.entries, keys);
    assert.equal(u.entriesKept, keys, 'every key read back with its checksum');
    assert.ok(Number.isFinite(u.downtimeMs) && u.downtimeMs >= 0);
  }
  assert.equal(r.requests.failed, 0);
  assert.equal(r.requests.wrongValues, 0);
  // Fill and checks go in batches of 1000 keys; the rest is the load loops' single requests.
  const batches = Math.ceil(keys / 1000) * (upgrades + 1);
  assert.ok(r.requests.total > batches + 4 * 16 + upgrades * 4, 'the load ran');
  assert.equal(existsSync(r.device), false, 'the device was removed');
  assert.equal(alive(r.pid), false, 'the service was stopped');
}

test('livekexec demo --json: three in-place upgrades to versions 2..4, PID unchanged, 0 failed, every entry kept', {
  timeout: 90_000,
}, () => {
  const r = runCli(['demo', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as DemoReport;
  assertGood(report, 3, 5000);
  assert.ok(report.valueBytes > 5000 * 64);
});

test('livekexec demo: a table and a PASS verdict; bad options exit 2', { timeout: 90_000 }, () => {
  const r = runCli(['demo', '--keys', '300', '--upgrades', '1']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stdout,
    /^upgrade\s+version\s+generation\s+downtime\s+entries kept\s+PID\s+failed requests$/m,
  );
  assert.match(r.stdout, /^1\s+1 -> 2\s+2\s+\d+\.\d ms\s+300\/300\s+\d+ unchanged\s+0$/m);
  assert.match(r.stdout, /^PASS: 1 in-place upgrades/m);
  const bad = runCli(['demo', '--upgrades', 'x']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--upgrades must be an integer/);
});

test('an HTTP server upgraded 20 times in place under continuous load: 0 failed requests, all keys kept', {
  timeout: 180_000,
}, async () => {
  const report = await runDemo({ upgrades: 20, keys: 1000, workers: 4, seed: 20 });
  assertGood(report, 20, 1000);
});

test('Ctrl-C during the demo stops the service and removes the device', {
  timeout: 60_000,
}, async () => {
  const child = spawn(process.execPath, [CLI, 'demo', '--upgrades', '50'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  const started = new Promise<{ pid: number; device: string }>((resolve, reject) => {
    child.stderr.on('data', (d: string) => {
      stderr += d;
      const m = /PID (\d+), device (\S+)/.exec(stderr);
      if (m && /upgrade 1 -> 2/.test(stderr)) resolve({ pid: Number(m[1]), device: m[2] });
    });
    child.on('exit', () => reject(new Error(`demo exited early: ${stderr}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const { pid, device } = await started;
  assert.equal(alive(pid), true);
  child.kill('SIGINT');
  assert.equal(await exited, 130, stderr);
  assert.match(stderr, /interrupted/);
  assert.equal(alive(pid), false, 'the service is gone');
  assert.equal(existsSync(device), false, 'the device is gone');
});
