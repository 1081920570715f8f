import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DeviceError } from '../../src/memory/errors.js';
import { readDeviceHeader } from '../../src/memory/header.js';
import { MappedDevice } from '../../src/memory/mapped.js';
import { boot } from '../../src/process.js';
import { Fixture, removeDevice, tempDevice } from './_fixture.js';

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups) c();
});

test('five in-place generations of one process: same PID, chained boot ids, stdio, only kept descriptors, lock held', {
  timeout: 60_000,
}, async () => {
  const device = tempDevice('chain');
  const marker = `${device}.marker`;
  writeFileSync(marker, 'marker');
  // An inherited descriptor without close-on-exec: generation 1 must not pass it on.
  const leakPath = `${device}.leak`;
  writeFileSync(leakPath, 'leak');
  const leak = openSync(leakPath, 'r');
  const fx = new Fixture('chain.mjs', [device, '5'], {
    env: { MARKER: marker },
    stdio: ['pipe', 'pipe', 'pipe', leak],
  });
  closeSync(leak);
  cleanups.push(() => {
    fx.cleanup();
    removeDevice(device);
    removeDevice(marker);
    removeDevice(leakPath);
  });
  await fx.waitFor('done', 50_000);
  const boots = fx.all('boot');
  assert.equal(boots.length, 5, fx.report());
  assert.deepEqual(
    boots.map((b) => b.generation),
    [1, 2, 3, 4, 5],
  );
  assert.deepEqual(
    boots.map((b) => b.kind),
    ['cold', 'kexec', 'kexec', 'kexec', 'kexec'],
  );
  assert.ok(boots.every((b) => b.coldReason === null));
  const pid = fx.child.pid;
  assert.ok(
    boots.every((b) => b.pid === pid),
    'every generation runs in the same PID',
  );
  for (let i = 1; i < boots.length; i++) {
    assert.equal(boots[i].predecessorBootId, boots[i - 1].bootId);
    assert.notEqual(boots[i].bootId, boots[i - 1].bootId);
  }
  assert.equal(boots[0].predecessorBootId, null);
  assert.deepEqual(
    boots.map((b) => b.value),
    [1, 2, 3, 4, 5],
  );
  assert.equal(fx.all('exec').length, 4);
  // Each generation execs in the turn it booted in, before boot()'s deferred first status
  // publish: the history still goes on (published at kexec load), none of it dropped.
  assert.deepEqual(
    boots.map((b) => b.handovers),
    [0, 1, 2, 3, 4],
  );
  // The tracing hook ran right before each execve, in the generation that exec'd.
  assert.deepEqual(
    fx.all('execve').map((e) => e.generation),
    [1, 2, 3, 4],
  );
  assert.equal(fx.all('unreachable').length, 0);
  const deviceFd = boots[0].deviceFd as number;
  for (const b of boots.slice(1)) {
    const fds = b.fds as Record<string, string>;
    assert.equal(b.deviceFd, deviceFd, 'the device descriptor keeps its number');
    assert.equal(fds[String(deviceFd)], device);
    const targets = Object.values(fds);
    assert.ok(!targets.includes(marker), `a close-on-exec file leaked: ${JSON.stringify(fds)}`);
    assert.ok(!targets.includes(leakPath), `an inherited file leaked: ${JSON.stringify(fds)}`);
    assert.notEqual(fds['1'], '/dev/null', 'stdout is still the pipe');
  }
  assert.equal((boots[0].fds as Record<string, string>)['3'], leakPath, 'the leak was there');

  // The last generation still owns the device.
  assert.throws(
    () => MappedDevice.open(device),
    (err: unknown) =>
      err instanceof DeviceError && err.code === 'EBUSY' && err.message.includes(`PID ${pid}`),
  );
  fx.finish();
  const { code } = await fx.exited;
  assert.equal(code, 0, fx.report());
  const dev = MappedDevice.open(device);
  try {
    const h = readDeviceHeader(dev);
    assert.equal(h.generation, 5);
    assert.equal(h.bootBlock, 0);
    assert.equal(h.bootId, boots[4].bootId);
  } finally {
    dev.close();
  }
  unlinkSync(device);
});

test('without boot counting, an in-place successor that crashes right after booting took the handover: the next cold boot succeeds', {
  timeout: 30_000,
}, async () => {
  const device = tempDevice('chaincrash');
  const fx = new Fixture('chain.mjs', [device, '5', '2'], { env: { NO_TRIAL: '1' } });
  cleanups.push(() => {
    fx.cleanup();
    removeDevice(device);
  });
  await fx.waitFor('crash');
  assert.equal((await fx.exited).code, 9);
  const boots = fx.all('boot');
  assert.deepEqual(
    boots.map((b) => [b.generation, b.kind]),
    [
      [1, 'cold'],
      [2, 'kexec'],
    ],
  );
  const kernel = await boot({ device });
  try {
    assert.equal(kernel.boot.kind, 'cold');
    assert.equal(kernel.generation, 3);
    assert.equal(kernel.boot.coldReason, undefined);
    assert.notEqual(kernel.allocPages(0), null);
  } finally {
    (kernel.device as MappedDevice).close();
  }
});

test('under a sampling profiler (node --cpu-prof), every in-place exec reaches its successor', {
  timeout: 60_000,
}, async () => {
  // The profiler's SIGPROF, if pending at execve, would kill the successor before node
  // installs a handler: with samples every 50 us, most execs would die without the guard.
  const device = tempDevice('chainprof');
  const profiles = mkdtempSync(join(tmpdir(), 'livekexec-prof-'));
  const fx = new Fixture('chain.mjs', [device, '6'], {
    nodeArgs: ['--cpu-prof', '--cpu-prof-interval', '50', `--cpu-prof-dir=${profiles}`],
  });
  cleanups.push(() => {
    fx.cleanup();
    removeDevice(device);
    rmSync(profiles, { recursive: true, force: true });
  });
  await fx.waitFor('done', 50_000);
  fx.finish();
  const { code, signal } = await fx.exited;
  assert.equal(signal, null, fx.report());
  assert.equal(code, 0, fx.report());
  assert.deepEqual(
    fx.all('boot').map((b) => b.generation),
    [1, 2, 3, 4, 5, 6],
  );
});
