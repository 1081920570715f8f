import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readDeviceHeader } from '../../src/memory/header.js';
import type { MappedDevice } from '../../src/memory/mapped.js';
import { boot } from '../../src/process.js';
import { fixture as fixturePath } from '../_helpers/paths.js';
import { FakeServiceManager } from './_fake-manager.js';
import { Fixture, removeDevice, tempDevice } from './_fixture.js';
import { freePort, requestLoop } from './_load.js';

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups) c();
});

function fixture(args: string[], options: ConstructorParameters<typeof Fixture>[2] = {}): Fixture {
  const fx = new Fixture('restart.mjs', args, options);
  cleanups.push(() => fx.cleanup());
  return fx;
}

function device(tag: string): string {
  const path = tempDevice(tag);
  cleanups.push(() => removeDevice(path));
  return path;
}

test('restart handover: the process exits after committing it, and a separate node booting the device is the successor with every preserved item', {
  timeout: 30_000,
}, async () => {
  const dev = device('restart-mem');
  const first = fixture([dev, 'memory-only']);
  const cold = await first.waitFor('serving');
  assert.equal(cold.kind, 'cold');
  process.kill(first.child.pid!, 'SIGUSR2');
  await first.waitFor('restart');
  assert.equal((await first.exited).code, 0, `a clean exit; ${first.report()}`);
  assert.equal(first.all('exit')[0]?.code, 0, "'exit' handlers ran");
  const next = fixture([dev, 'memory-only']);
  const booted = await next.waitFor('serving');
  assert.equal(booted.kind, 'kexec', next.report());
  assert.equal(booted.generation, 2);
  assert.equal(booted.kept, true, 'the preserved folio came back');
  assert.equal(booted.previousRelease, `restart-fixture@${first.child.pid}`);
  next.child.kill();
});

test('a restart handover whose next process is a broken release: each try counted, then the release that handed over boots the same handover with every preserved item', {
  timeout: 40_000,
}, async () => {
  const dev = device('restart-fail');
  // Releases side by side, `current` naming the one a supervisor starts.
  const dir = mkdtempSync(join(tmpdir(), 'livekexec-restart-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const real = fixturePath('process', 'restart.mjs');
  for (const [v, fail] of [
    ['v1', false],
    ['v2', true],
  ] as const) {
    mkdirSync(join(dir, v));
    const body = `${fail ? 'globalThis.RESTART_FIXTURE_FAIL = true;\n' : ''}await import(${JSON.stringify(real)});\n`;
    writeFileSync(join(dir, v, 'app.mjs'), body);
  }
  symlinkSync('v1', join(dir, 'current'));
  const viaCurrent = (argv: string[]) =>
    spawn(process.execPath, [join(dir, 'current', 'app.mjs'), ...argv.slice(1)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  const first = fixture([dev, 'memory-only'], { start: viaCurrent });
  await first.waitFor('serving');
  process.kill(first.child.pid!, 'SIGUSR2');
  assert.equal((await first.exited).code, 0, first.report());
  // Deploy v2 and let the supervisor start it: it boots on trial and exits 1, twice.
  rmSync(join(dir, 'current'));
  symlinkSync('v2', join(dir, 'current'));
  const next = fixture([dev, 'memory-only'], { start: viaCurrent });
  const back = await next.waitFor('serving');
  assert.deepEqual(
    next.all('failing').map((e) => [e.pid, e.tries]),
    [
      [next.child.pid, 1],
      [next.child.pid, 2],
    ],
    'v2 tried twice, in the process the supervisor started',
  );
  assert.equal(back.pid, next.child.pid);
  assert.equal(back.kind, 'kexec', next.report());
  assert.equal(back.kept, true, 'the preserved folio came back');
  assert.equal(back.previousRelease, `restart-fixture@${first.child.pid}`);
  assert.match(
    next.stderr,
    /try 2 of 2 failed \(exited with status 1\); falling back to .*\/v1\/app\.mjs /,
  );
  next.child.kill();
});

test('restart handover through an fd store (a fake service manager speaking sd_notify): the socket is stored, given back as LISTEN_FDS, and no request fails across the restart', {
  timeout: 40_000,
}, async () => {
  const dev = device('restart-store');
  const manager = new FakeServiceManager();
  cleanups.push(() => manager.close());
  const first = fixture([dev, 'socket'], {
    start: (argv) => manager.start(argv),
  });
  const cold = await first.waitFor('serving');
  const traffic = requestLoop(cold.port as number, 2);
  await new Promise((r) => setTimeout(r, 200));
  process.kill(first.child.pid!, 'SIGUSR2');
  assert.equal((await first.exited).code, 0, first.report());
  const stored = await manager.waitFor((t) => t.startsWith('FDSTORE=1'));
  assert.equal(stored, 'FDSTORE=1\nFDNAME=lkx.web.1');
  assert.equal(manager.store.size, 1);
  // The manager restarts the service with what it stored; connections wait in the backlog meanwhile.
  const next = fixture([dev, 'socket'], { start: (argv) => manager.start(argv) });
  const booted = await next.waitFor('serving');
  assert.equal(booted.kind, 'kexec', next.report());
  assert.equal(booted.port, cold.port, 'the same socket');
  assert.equal(booted.kept, true);
  assert.deepEqual(
    booted.passed,
    [],
    'the stored socket went to its LUO session, not to listenFds()',
  );
  await manager.waitFor((t) => t.startsWith('FDSTOREREMOVE=1'));
  await new Promise((r) => setTimeout(r, 200));
  const counted = await traffic.stop();
  assert.deepEqual(counted.failed, [], 'no request failed across the restart');
  assert.ok(counted.ok > 0);
  next.child.kill();
});

test('a restart handover with a preserved socket and no fd store is refused with a typed error, and the old generation serves on', {
  timeout: 30_000,
}, async () => {
  const dev = device('restart-nostore');
  const first = fixture([dev, 'socket']);
  const cold = await first.waitFor('serving');
  process.kill(first.child.pid!, 'SIGUSR2');
  const failed = await first.waitFor('exec-failed');
  assert.equal(failed.code, 'EINVAL');
  assert.match(failed.message as string, /fd store .*NOTIFY_SOCKET is unset/);
  assert.equal(failed.alive, true);
  const counted = requestLoop(cold.port as number);
  await new Promise((r) => setTimeout(r, 300));
  const { ok, failed: errors } = await counted.stop();
  assert.deepEqual(errors, []);
  assert.ok(ok > 0, 'still serving');
  first.child.kill();
});

test('socket activation as input (systemd-socket-activate): the activated socket serves, then goes across a restart handover through the fd store', {
  timeout: 40_000,
}, async () => {
  assert.ok(
    existsSync('/usr/bin/systemd-socket-activate'),
    "systemd-socket-activate is missing: install Debian's systemd package (scripts/install-test-deps.sh)",
  );
  const dev = device('restart-activate');
  const manager = new FakeServiceManager();
  cleanups.push(() => manager.close());
  const port = await freePort();
  const first = fixture([dev, 'socket'], {
    start: (argv) =>
      spawn(
        '/usr/bin/systemd-socket-activate',
        [
          '-l',
          `127.0.0.1:${port}`,
          '--fdname=web',
          '-E',
          `NOTIFY_SOCKET=${manager.path}`,
          process.execPath,
          ...argv,
        ],
        { stdio: ['pipe', 'pipe', 'pipe'] },
      ),
  });
  // systemd-socket-activate starts the program at the first connection, which then waits in the backlog.
  await new Promise((r) => setTimeout(r, 300));
  const traffic = requestLoop(port, 2);
  const cold = await first.waitFor('serving');
  assert.equal(cold.kind, 'cold');
  assert.equal(cold.activated, 'web', 'listenFds() named the activated socket');
  assert.equal(cold.port, port);
  process.kill(first.child.pid!, 'SIGUSR2');
  assert.equal((await first.exited).code, 0, first.report());
  const next = fixture([dev, 'socket'], { start: (argv) => manager.start(argv) });
  const booted = await next.waitFor('serving');
  assert.equal(booted.kind, 'kexec', next.report());
  assert.equal(booted.port, port);
  await new Promise((r) => setTimeout(r, 200));
  const counted = await traffic.stop();
  assert.deepEqual(counted.failed, []);
  next.child.kill();
});

test('a cold start of a device with a pending handover is never silent: it boots as the successor, or refuses with BootError ESTALE naming discardPending when the handover cannot be booted', {
  timeout: 30_000,
}, async () => {
  const dev = device('restart-corrupt');
  const first = fixture([dev, 'memory-only']);
  await first.waitFor('serving');
  process.kill(first.child.pid!, 'SIGUSR2');
  assert.equal((await first.exited).code, 0);
  // Damage the pending boot block (a byte of its command line area).
  const fd = openSync(dev, 'r+');
  const page0 = new Uint8Array(4096);
  readSync(fd, page0, 0, 4096, 0);
  const pending = Number(new DataView(page0.buffer).getBigUint64(0x40, true));
  assert.notEqual(pending, 0);
  const b = new Uint8Array(1);
  readSync(fd, b, 0, 1, pending + 0x20);
  b[0] ^= 0xff;
  writeSync(fd, b, 0, 1, pending + 0x20);
  closeSync(fd);
  await assert.rejects(boot({ device: dev }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ESTALE');
    assert.match(
      err.message,
      /a handover is pending at 0x[0-9a-f]+ but cannot be booted .*discardPending: true.*livekexec device discard-pending/,
    );
    return true;
  });
  const kernel = await boot({ device: dev, discardPending: true });
  try {
    assert.equal(kernel.boot.kind, 'cold');
    assert.equal(readDeviceHeader(kernel.device).bootBlock, 0);
  } finally {
    (kernel.device as MappedDevice).close();
  }
});
