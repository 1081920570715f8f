import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { readDeviceHeader } from '../../src/memory/header.js';
import type { MappedDevice } from '../../src/memory/mapped.js';
import { boot } from '../../src/process.js';
import { Fixture, removeDevice, running, tempDevice } from './_fixture.js';

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups) c();
});

function start(
  tag: string,
  plan: string,
  env: NodeJS.ProcessEnv = {},
): { fx: Fixture; device: string } {
  const device = tempDevice(tag);
  const fx = new Fixture('preload.mjs', [device, plan], { env });
  cleanups.push(() => {
    fx.cleanup();
    removeDevice(device);
  });
  return { fx, device };
}

test('a preloaded successor starts at load, takes over at exec, and the old process exits', {
  timeout: 30_000,
}, async () => {
  const { fx } = start('preload', 'ok');
  const loaded = await fx.waitFor('loaded');
  const successor = loaded.successor as number;
  const old = fx.child.pid!;
  assert.notEqual(successor, old);
  const starting = await fx.waitFor((e) => e.event === 'starting' && e.pid === successor);
  const exec = await fx.waitFor('exec');
  assert.ok(starting.t <= exec.t, 'the successor started before exec');
  const { code } = await fx.exited;
  assert.equal(code, 0, 'the old process exits cleanly after the takeover');
  const booted = await fx.waitFor((e) => e.event === 'boot' && e.pid === successor);
  assert.equal(booted.kind, 'kexec');
  assert.equal(booted.generation, 2);
  const first = fx.all('boot').find((e) => e.pid === old)!;
  assert.equal(booted.predecessorBootId, first.bootId);
  assert.equal(booted.deviceFd, first.deviceFd);
  await fx.waitFor((e) => e.event === 'done' && e.pid === successor);
  // Downtime: from the old generation's last word to the successor booted.
  console.log(`preloaded takeover downtime: ${(booted.t - exec.t).toFixed(2)} ms`);
  assert.equal(fx.all('exec-failed').length, 0, fx.report());
  process.kill(successor, 'SIGTERM');
  await fx.ended();
});

test('a preloaded successor that crashes or hangs before takeover: exec fails, the old generation serves on, a later preload takes over', {
  timeout: 40_000,
}, async () => {
  const { fx } = start('precrash', 'crash,hang,ok');
  const old = fx.child.pid!;
  await fx.waitFor(() => fx.all('exec-failed').length >= 2, 20_000);
  const [crash, hang] = fx.all('exec-failed');
  for (const f of [crash, hang]) {
    assert.equal(f.code, 'EIO');
    assert.equal(f.pendingBootBlock, 0, 'nothing left pending');
    assert.equal(f.headerGeneration, 1, 'the header still names the running generation');
    assert.equal(f.alive, true);
    assert.equal(f.allocated, true);
    assert.equal(f.pid, old);
  }
  assert.match(hang.message as string, /timed out/);
  const hung = fx.all('loaded').find((e) => e.step === 'hang')!.successor as number;
  assert.equal(running(hung), false, 'the hung successor was killed');
  const { code } = await fx.exited;
  assert.equal(code, 0);
  const booted = await fx.waitFor((e) => e.event === 'boot' && e.role === 'ok');
  assert.equal(booted.generation, 2);
  assert.equal(booted.kind, 'kexec');
  assert.equal(fx.all('plan-done').length, 0, 'the old process exited at the takeover');
  process.kill(booted.pid, 'SIGTERM');
  await fx.ended();
});

test('a successor that crashes right after taking over: the next cold boot succeeds', {
  timeout: 30_000,
}, async () => {
  const { fx, device } = start('postcrash', 'crash-after');
  await fx.waitFor('crash');
  await fx.ended();
  const kernel = await boot({ device });
  try {
    assert.equal(kernel.boot.kind, 'cold');
    assert.equal(kernel.generation, 3);
    assert.equal(readDeviceHeader(kernel.device).bootBlock, 0);
    assert.notEqual(kernel.allocPages(0), null);
  } finally {
    (kernel.device as MappedDevice).close();
  }
});

test('a handover rehearsal with no device to rehearse on neither refuses the load nor stops the takeover: one warning in each process', {
  timeout: 30_000,
}, async () => {
  const { fx } = start('norehearsal', 'ok', { FAIL_REHEARSAL: '1' });
  const old = fx.child.pid!;
  const booted = await fx.waitFor((e) => e.event === 'boot' && e.role === 'ok');
  assert.equal(booted.kind, 'kexec');
  assert.equal(booted.generation, 2);
  assert.equal(fx.all('exec-failed').length, 0, fx.report());
  assert.equal(fx.all('not-ready').length, 0, fx.report());
  const { code } = await fx.exited;
  assert.equal(code, 0);
  const warnings = fx.all('warning');
  for (const pid of [old, booted.pid]) {
    const mine = warnings.filter((w) => w.pid === pid);
    assert.equal(mine.length, 1, `one warning from ${pid}: ${fx.report()}`);
    assert.equal(mine[0]!.code, 'LIVEKEXEC_REHEARSAL');
    assert.match(
      mine[0]!.message as string,
      /handover rehearsal: no device to rehearse on \(EIO: memfd_create: EMFILE\)/,
    );
  }
  process.kill(booted.pid as number, 'SIGTERM');
  await fx.ended();
});

test('upgrade({ successor: "preload" }) waits, serving, until its successor is ready: one that dies or never gets ready fails the upgrade, and the old generation serves on', {
  timeout: 40_000,
}, async () => {
  const device = tempDevice('preload-upgrade');
  const fx = new Fixture('preload-upgrade.mjs', [device, 'crash,hang,slow']);
  cleanups.push(() => {
    fx.cleanup();
    removeDevice(device);
  });
  const old = fx.child.pid!;
  const [crash, hang] = [
    await fx.waitFor((e) => e.event === 'upgrade-failed' && e.step === 'crash'),
    await fx.waitFor((e) => e.event === 'upgrade-failed' && e.step === 'hang', 20_000),
  ];
  assert.equal(crash.code, 'EIO', fx.report());
  assert.match(crash.message as string, /exited with status 3 before it was ready/);
  assert.equal(hang.code, 'ETIMEDOUT', fx.report());
  assert.match(hang.message as string, /not ready within 500 ms/);
  for (const f of [crash, hang]) {
    assert.equal(f.listening, true, 'the server listens on');
    assert.equal(f.loaded, false, 'nothing stays loaded');
  }
  assert.ok((hang.ticks as number) > 10, `the event loop turned while it waited (${hang.ticks})`);
  const hung = fx.all('starting').find((e) => e.role === 'hang')!;
  assert.ok(!running(hung.pid as number), 'the successor that never got ready was stopped');
  // The slow one: ready before the exec began, so its start-up was not downtime.
  const before = await fx.waitFor((e) => e.event === 'before-exec' && e.step === 'slow');
  assert.equal(before.ready, true, fx.report());
  const slow = fx.all('starting').find((e) => e.role === 'slow')!;
  const booted = await fx.waitFor((e) => e.event === 'boot' && e.pid === slow.pid);
  assert.equal(booted.kind, 'kexec');
  const took = await fx.waitFor((e) => e.event === 'took-server' && e.pid === slow.pid);
  assert.equal(took.listening, true, 'the server was handed over');
  assert.equal((await fx.exited).code, 0, 'the old process exits after the takeover');
  assert.notEqual(slow.pid, old);
  process.kill(slow.pid as number, 'SIGTERM');
  await fx.ended();
});
