// Its own file, so its own process: no boot() before this test changed V8's flags.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { openSync } from 'node:fs';
import { after, test } from 'node:test';
import { runInNewContext, Script } from 'node:vm';
import { ControlChannel } from '../../src/kexec/control-channel.js';
import { ENV_DEVICE_FD, ENV_PRELOAD } from '../../src/kexec/process-platform.js';
import { formatDevice } from '../../src/memory/header.js';
import { MappedDevice } from '../../src/memory/mapped.js';
import { boot } from '../../src/process.js';
import { AF_UNIX, SOCK_STREAM } from '../../src/sys/libc.js';
import { getProcLibc, SOCK_CLOEXEC } from '../../src/sys/socket.js';
import { removeDevice, tempDevice } from './_fixture.js';

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups.reverse()) c();
});

test("a preloaded successor's forced collection leaves V8's flags as they were, so code caches made before are still taken", async () => {
  // V8 refuses a code cache made under other flags: node's own, for each
  // built-in module loaded later (node:http when the program starts serving), and the program's.
  // Made in another process: one compiled here already would come from V8's compilation cache.
  const sources = [
    'function f(a) { return a + 1; } f(1);',
    'function g(a) { return a + 2; } g(1);',
  ];
  const [before, afterReady] = sources.map((source) => ({
    source,
    cachedData: execFileSync(process.execPath, [
      '-e',
      `process.stdout.write(new (require('node:vm').Script)(${JSON.stringify(source)}).createCachedData())`,
    ]),
  }));
  const taken = (c: { source: string; cachedData: Buffer }) =>
    !new Script(c.source, { cachedData: c.cachedData }).cachedDataRejected;
  assert.ok(taken(before!), 'a cache made by another node with the same flags is taken');

  const path = tempDevice('preload-flags');
  cleanups.push(() => removeDevice(path));
  const device = MappedDevice.open(path, { create: true, size: 1 << 20 });
  formatDevice(device);
  device.close();
  const pair = getProcLibc().socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC);
  assert.ok(pair);
  const predecessor = new ControlChannel(pair[0]);
  cleanups.push(() => predecessor.close());
  process.env[ENV_PRELOAD] = String(pair[1]);
  process.env[ENV_DEVICE_FD] = String(openSync(path, 'r+'));
  const booting = boot();
  // "ready" comes after the takeover was readied (mapping, rehearsal, collection).
  assert.equal((await predecessor.receive()).msg.t, 'ready');
  assert.ok(taken(afterReady!), 'and still after the successor readied its takeover');
  assert.equal(runInNewContext('typeof gc'), 'undefined', 'gc is not left exposed');
  predecessor.close();
  await assert.rejects(booting, (e: unknown) => (e as { code?: string }).code === 'EIO');
});
