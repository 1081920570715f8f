import assert from 'node:assert/strict';
import { openSync } from 'node:fs';
import { after, test } from 'node:test';
import { ControlChannel } from '../../src/kexec/control-channel.js';
import { ENV_DEVICE_FD, ENV_PRELOAD } from '../../src/kexec/process-platform.js';
import { formatDevice } from '../../src/memory/header.js';
import { MappedDevice } from '../../src/memory/mapped.js';
import { boot } from '../../src/process.js';
import { AF_UNIX, F_GETFD, SOCK_STREAM } from '../../src/sys/libc.js';
import { getProcLibc, SOCK_CLOEXEC } from '../../src/sys/socket.js';
import { removeDevice, tempDevice } from './_fixture.js';

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups.reverse()) c();
});

function isOpen(fd: number): boolean {
  return getProcLibc().fcntl(fd, F_GETFD, 0) >= 0;
}

test('a preloaded successor that never gets go unmaps and closes the inherited device and the channel', async () => {
  const libc = getProcLibc();
  const path = tempDevice('preload-fail');
  cleanups.push(() => removeDevice(path));
  const made = MappedDevice.open(path, { create: true, size: 1 << 20 });
  formatDevice(made);
  made.close();
  const devFd = openSync(path, 'r+');
  const pair = libc.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC);
  assert.ok(pair);
  const predecessor = new ControlChannel(pair[0]);
  cleanups.push(() => predecessor.close());
  process.env[ENV_PRELOAD] = String(pair[1]);
  process.env[ENV_DEVICE_FD] = String(devFd);
  const booting = boot();
  // The successor readies its takeover (asynchronously) before it says ready.
  assert.equal((await predecessor.receive()).msg.t, 'ready');
  predecessor.send({ t: 'took-over', pid: 1, generation: 1 });
  await assert.rejects(booting, (e: unknown) => (e as { code?: string }).code === 'EIO');
  assert.equal(isOpen(pair[1]), false, 'the channel is closed');
  assert.equal(isOpen(devFd), false, 'the device descriptor is closed (and its mapping gone)');
});

test('a preloaded successor whose device descriptor is not open fails with a typed error', async () => {
  const libc = getProcLibc();
  const pair = libc.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC);
  assert.ok(pair);
  const predecessor = new ControlChannel(pair[0]);
  cleanups.push(() => predecessor.close());
  process.env[ENV_PRELOAD] = String(pair[1]);
  process.env[ENV_DEVICE_FD] = '999999';
  await assert.rejects(boot(), (e: unknown) => (e as { code?: string }).code === 'EINVAL');
  assert.equal(isOpen(pair[1]), false, 'the channel is closed');
});
