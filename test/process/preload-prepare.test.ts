import assert from 'node:assert/strict';
import { openSync } from 'node:fs';
import { after, test } from 'node:test';
import { ControlChannel } from '../../src/kexec/control-channel.js';
import { ENV_DEVICE_FD, ENV_PRELOAD } from '../../src/kexec/process-platform.js';
import { formatDevice } from '../../src/memory/header.js';
import { MappedDevice } from '../../src/memory/mapped.js';
import { boot } from '../../src/process.js';
import { AF_UNIX, SOCK_STREAM } from '../../src/sys/libc.js';
import { getProcLibc, SOCK_CLOEXEC } from '../../src/sys/socket.js';
import { Fixture, removeDevice, tempDevice } from './_fixture.js';

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups.reverse()) c();
});

/** A formatted device and a descriptor of it, as a preloaded successor inherits. */
function device(tag: string): number {
  const path = tempDevice(tag);
  cleanups.push(() => removeDevice(path));
  const made = MappedDevice.open(path, { create: true, size: 1 << 20 });
  formatDevice(made);
  made.close();
  return openSync(path, 'r+');
}

/** Resolves once an interval timer of `ms` has fired `n` times: the event loop kept turning. */
function intervalTicks(n: number, ms: number): Promise<void> {
  let ticks = 0;
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (++ticks === n) {
        clearInterval(timer);
        resolve();
      }
    }, ms);
  });
}

/** This process as a preloaded successor: boot() waits on the returned predecessor end. */
function successorHere(tag: string): ControlChannel {
  const pair = getProcLibc().socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC);
  assert.ok(pair);
  const predecessor = new ControlChannel(pair[0]);
  cleanups.push(() => predecessor.close());
  process.env[ENV_PRELOAD] = String(pair[1]);
  process.env[ENV_DEVICE_FD] = String(device(tag));
  return predecessor;
}

test('a successor told "prepare" and then nothing gives up after the takeover timeout and says why', async () => {
  const predecessor = successorHere('prepare-timeout');
  const booting = boot({ platform: { takeoverTimeoutMs: 200 } });
  // The successor readies its takeover (asynchronously) before it says ready.
  assert.equal((await predecessor.receive()).msg.t, 'ready');
  predecessor.send({ t: 'prepare' });
  await assert.rejects(
    booting,
    (e: unknown) =>
      (e as { code?: string }).code === 'EIO' && /no go within 200 ms/.test((e as Error).message),
  );
  assert.equal(predecessor.receiveSync(5000)?.msg.t, 'prepared', 'it waited blocking, and said so');
  const failed = predecessor.receiveSync(5000)?.msg;
  assert.equal(failed?.t, 'failed');
  assert.match((failed as { message: string }).message, /no go within 200 ms of prepare/);
});

test('"go" sent right behind "prepare", before the successor waits blocking, is the one it takes', async () => {
  const predecessor = successorHere('prepare-go');
  // A successor that missed the queued "go" would end with its timeout's message instead.
  const booting = boot({ platform: { takeoverTimeoutMs: 10_000 } });
  assert.equal((await predecessor.receive()).msg.t, 'ready');
  // As a predecessor's exec sends them: "go" does not wait for "prepared".
  predecessor.send({ t: 'prepare' });
  predecessor.send({ t: 'go', boot: 'not-a-boot-spec' });
  await assert.rejects(
    booting,
    (e: unknown) =>
      (e as { code?: string }).code === 'EINVAL' &&
      /expected <device>@0x<address>, got 'not-a-boot-spec'/.test((e as Error).message),
  );
  assert.equal(predecessor.receiveSync(5000)?.msg.t, 'prepared');
});

test('"cancel" after "prepare" puts the successor back to waiting in slices, its event loop turning', async () => {
  const predecessor = successorHere('prepare-cancel');
  // Long enough that a successor still blocking would fail this test with its timeout message.
  const booting = boot({ platform: { takeoverTimeoutMs: 10_000 } });
  // The successor readies its takeover (asynchronously) before it says ready.
  assert.equal((await predecessor.receive()).msg.t, 'ready');
  predecessor.send({ t: 'prepare' });
  predecessor.send({ t: 'cancel' });
  await intervalTicks(5, 10);
  predecessor.close();
  await assert.rejects(booting, (e: unknown) =>
    /the peer (hung up|closed it)/.test((e as Error).message),
  );
});

test('a predecessor that dies while its successor waits blocking for go: the successor exits with a clear error', {
  timeout: 30_000,
}, async () => {
  const { channel, peerFd } = ControlChannel.pair();
  cleanups.push(() => channel.close());
  const devFd = device('prepare-died');
  cleanups.push(() => getProcLibc().close(devFd));
  const stdio: ('pipe' | 'ignore' | number)[] = ['pipe', 'pipe', 'pipe'];
  for (let i = 3; i <= Math.max(devFd, peerFd); i++) stdio.push('ignore');
  stdio[devFd] = devFd;
  stdio[peerFd] = peerFd;
  // A takeover timeout far beyond the test's: only the hang-up can end its wait in time.
  const fx = new Fixture('preload-wait.mjs', ['600000'], {
    env: { [ENV_PRELOAD]: String(peerFd), [ENV_DEVICE_FD]: String(devFd) },
    stdio,
  });
  cleanups.push(() => fx.cleanup());
  getProcLibc().close(peerFd);
  assert.equal(channel.receiveSync(20_000)?.msg.t, 'ready');
  channel.send({ t: 'prepare' });
  // Give it time to pass from its event loop to the blocking wait (either way it must end).
  await new Promise((r) => setTimeout(r, 300));
  channel.close();
  const failed = await fx.waitFor('boot-failed');
  assert.equal(failed.code, 'EIO');
  assert.match(failed.message as string, /control channel: the peer (hung up|closed it)/);
  assert.equal((await fx.exited).code, 1);
});

test('a successor waiting for go (before "prepare") still runs its timers, and takes "go" from its blocking wait', async () => {
  const predecessor = successorHere('wait-slices');
  const booting = boot({ platform: { takeoverTimeoutMs: 10_000 } });
  assert.equal((await predecessor.receive()).msg.t, 'ready');
  // The wait blocks this thread in slices: the timer fires between them (a wait that
  // never let the event loop turn would never get there).
  await intervalTicks(4, 5);
  // No "prepare": the slice it is blocking in takes "go" as it comes.
  predecessor.send({ t: 'go', boot: 'not-a-boot-spec' });
  await assert.rejects(booting, (e: unknown) =>
    /expected <device>@0x<address>, got 'not-a-boot-spec'/.test((e as Error).message),
  );
});
