import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { AF_UNIX, SOL_SOCKET } from '../../src/sys/libc.js';
import {
  type Cmsg,
  getProcLibc,
  MSG_DONTWAIT,
  POLLIN,
  SCM_CREDENTIALS,
  SO_PASSCRED,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
} from '../../src/sys/socket.js';
import { Fixture, removeDevice, tempDevice } from './_fixture.js';

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups) c();
});

interface Notification {
  text: string;
  pid: number;
}

function credentialsPid(cmsgs: readonly Cmsg[]): number {
  const c = cmsgs.find((m) => m.level === SOL_SOCKET && m.type === SCM_CREDENTIALS);
  assert.ok(c, 'every datagram carries the sender credentials');
  return new DataView(c.data.buffer, c.data.byteOffset, c.data.byteLength).getInt32(0, true);
}

test('under systemd: READY=1, then RELOADING=1 with MONOTONIC_USEC, then READY=1, all from the same PID', {
  timeout: 30_000,
}, async () => {
  const libc = getProcLibc();
  const path = tempDevice('notify');
  const fd = libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert.ok(fd >= 0);
  cleanups.push(() => {
    libc.close(fd);
    removeDevice(path);
  });
  assert.equal(libc.setsockoptInt(fd, SOL_SOCKET, SO_PASSCRED, 1), 0);
  assert.equal(libc.bind(fd, path), 0);
  const device = tempDevice('notifydev');
  const fx = new Fixture('chain.mjs', [device, '2'], { env: { NOTIFY_SOCKET: path } });
  cleanups.push(() => {
    fx.cleanup();
    removeDevice(device);
  });
  const got: Notification[] = [];
  const deadline = Date.now() + 20_000;
  while (got.length < 3 && Date.now() < deadline) {
    const rev = await libc.pollAsync(fd, POLLIN, 1000);
    if (rev <= 0) continue;
    const buf = new Uint8Array(4096);
    const { n, cmsgs } = libc.recvmsg(fd, buf, MSG_DONTWAIT);
    if (n < 0) continue;
    got.push({
      text: Buffer.from(buf.subarray(0, n)).toString('utf8'),
      pid: credentialsPid(cmsgs),
    });
  }
  await fx.waitFor('done');
  assert.equal(got.length, 3, `notifications: ${JSON.stringify(got)}; ${fx.report()}`);
  assert.equal(got[0].text, 'READY=1');
  assert.match(got[1].text, /^RELOADING=1\nMONOTONIC_USEC=\d+$/);
  assert.equal(got[2].text, 'READY=1');
  const pid = fx.child.pid;
  assert.deepEqual(
    got.map((g) => g.pid),
    [pid, pid, pid],
  );
  const usec = BigInt(/MONOTONIC_USEC=(\d+)/.exec(got[1].text)![1]);
  assert.ok(usec > 0n);
  fx.finish();
  assert.equal((await fx.exited).code, 0);
});
