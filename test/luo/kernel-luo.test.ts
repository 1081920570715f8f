import assert from 'node:assert/strict';
import { closeSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { fdFlags } from '../../src/luo/_fd.js';
import { LuoError } from '../../src/luo/errors.js';
import { KernelLiveUpdate } from '../../src/luo/kernel-luo.js';
import { createMemfd, memfdRead, memfdWrite } from '../../src/luo/memfd.js';
import { Machine } from '../../src/machine.js';
import { FD_CLOEXEC } from '../../src/sys/libc.js';

const MiB = 1024 * 1024;

function get(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

test('kernel.liveupdate carries a listening socket and a memfd through an emulated kexec', async () => {
  const m = Machine.create({ size: 16 * MiB });
  const k1 = m.boot();
  const v1 = http.createServer((_req, res) => res.end('v1'));
  await new Promise<void>((r) => v1.listen(0, '127.0.0.1', r));
  const { port } = v1.address() as AddressInfo;
  assert.equal(await get(port), 'v1');
  const session = k1.liveupdate.createSession('web');
  session.preserveServer(v1, 1);
  const memfd = session.preserveMemfd('state', 2, 0);
  memfdWrite(memfd, Buffer.from('hello from generation 1'), 0);
  await new Promise<void>((r) => v1.close(() => r()));
  k1.kexec.load();
  const k2 = k1.kexec.exec();
  const incoming = k2.liveupdate.retrieveSession('web');
  const v2 = incoming.retrieveServer(
    1,
    http.createServer((_req, res) => res.end('v2')),
  );
  await new Promise<void>((r) => (v2.listening ? r() : v2.once('listening', () => r())));
  assert.equal(await get(port), 'v2', 'the same port, now served by the successor');
  const fd = incoming.retrieveFd(2);
  assert.equal(Buffer.from(memfdRead(fd, 23, 0)).toString(), 'hello from generation 1');
  incoming.finish();
  await new Promise<void>((r) => v2.close(() => r()));
  k2.liveupdate.close();
});

test('the crash kernel has no live update', () => {
  const k = Machine.create({ size: 32 * MiB }).boot('crashkernel=4M');
  const crash = k.panic();
  assert.throws(
    () => crash.liveupdate,
    (e: unknown) => e instanceof LuoError && e.code === 'ENODEV',
  );
});

test('the descriptors a successor inherits are close-on-exec from its boot on, before kernel.liveupdate is first used', () => {
  const m = Machine.create({ size: 16 * MiB });
  const k1 = m.boot();
  const fd = createMemfd('inherited');
  try {
    k1.liveupdate.createSession('s').preserveFd(fd, 1);
    k1.kexec.load();
    const k2 = k1.kexec.exec();
    // The exec cleared the flag so the descriptor crossed it; a child spawned now must not get it.
    assert.equal(fdFlags(fd), FD_CLOEXEC);
    k2.liveupdate.retrieveSession('s').retrieveFd(1);
    k2.liveupdate.close();
  } finally {
    closeSync(fd);
  }
});

test('a corrupt live update handover does not fail the boot: kernel.liveupdate says EFAULT, each time', () => {
  const luo = new KernelLiveUpdate(new Uint8Array([1, 2, 3, 4]));
  for (let i = 0; i < 2; i++) {
    assert.throws(
      () => luo.get(),
      (e: unknown) => e instanceof LuoError && e.code === 'EFAULT',
    );
  }
});

test('live update stays on without KHO: with kho=off, and when the successor refuses KHO revival', () => {
  const m = Machine.create({ size: 16 * MiB });
  const k1 = m.boot('kho=off');
  assert.equal(k1.kho.enabled, false);
  const s1 = k1.liveupdate.createSession('state');
  const fd = s1.preserveMemfd('kept', 1, 0);
  memfdWrite(fd, Buffer.from('across kho=off'), 0);
  k1.kexec.load();
  const k2 = k1.kexec.exec();
  const got = k2.liveupdate.retrieveSession('state').retrieveFd(1);
  assert.equal(Buffer.from(memfdRead(got, 14, 0)).toString(), 'across kho=off');
  // KHO on here, off in the successor: its KHO handover is not revived, the sessions are.
  k2.liveupdate.createSession('again').preserveFd(got, 2);
  k2.kexec.load({ cmdline: 'kho=on' });
  const k3 = k2.kexec.exec();
  k3.liveupdate
    .createSession('last')
    .preserveFd(k3.liveupdate.retrieveSession('again').retrieveFd(2), 3);
  k3.kexec.load({ cmdline: 'kho=off' });
  const k4 = k3.kexec.exec();
  assert.equal(k4.kho.enabled, false);
  assert.ok(
    k4.log.some((l) => l.includes('not reviving')),
    k4.log.join('\n'),
  );
  const last = k4.liveupdate.retrieveSession('last').retrieveFd(3);
  assert.equal(Buffer.from(memfdRead(last, 14, 0)).toString(), 'across kho=off');
  k4.liveupdate.close();
  closeSync(last);
});
