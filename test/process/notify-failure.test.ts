import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { LoadedImage } from '../../src/kexec/kexec.js';
import { ProcessPlatform } from '../../src/kexec/process-platform.js';
import { MappedDevice } from '../../src/memory/mapped.js';
import { AF_UNIX } from '../../src/sys/libc.js';
import { getProcLibc, MSG_DONTWAIT, SOCK_CLOEXEC, SOCK_DGRAM } from '../../src/sys/socket.js';
import { removeDevice, tempDevice } from './_fixture.js';

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups.reverse()) c();
});

/** Every datagram waiting on `fd`. */
function drain(fd: number): string[] {
  const libc = getProcLibc();
  const out: string[] = [];
  for (;;) {
    const buf = new Uint8Array(4096);
    const { n } = libc.recvmsg(fd, buf, MSG_DONTWAIT);
    if (n < 0) return out;
    out.push(Buffer.from(buf.subarray(0, n)).toString('utf8'));
  }
}

test('an in-place exec that fails before execve never leaves systemd told RELOADING=1 without READY=1', () => {
  const libc = getProcLibc();
  const sock = tempDevice('notify-fail');
  const fd = libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert.ok(fd >= 0);
  cleanups.push(() => {
    libc.close(fd);
    removeDevice(sock);
  });
  assert.equal(libc.bind(fd, sock), 0);
  const path = tempDevice('notify-fail-dev');
  const device = MappedDevice.open(path, { create: true, size: 1 << 20 });
  cleanups.push(() => {
    device.close();
    removeDevice(path);
  });
  const saved = process.env.NOTIFY_SOCKET;
  process.env.NOTIFY_SOCKET = sock;
  cleanups.push(() => {
    if (saved === undefined) delete process.env.NOTIFY_SOCKET;
    else process.env.NOTIFY_SOCKET = saved;
  });
  const platform = new ProcessPlatform({
    device,
    keepFds: () => {
      throw new Error('the keep hook failed');
    },
  });
  const image: LoadedImage = {
    cmdline: '',
    segment: { base: 0x1000, size: 0x1000 },
    inArena: false,
    bootId: new Uint8Array(16),
    generation: 2,
    preload: false,
    successor: 'in-place',
    counting: null,
  };
  assert.throws(() => platform.execute(image), /the keep hook failed/);
  const said = drain(fd);
  const reloading = said.findIndex((s) => s.startsWith('RELOADING=1'));
  if (reloading >= 0) {
    assert.ok(
      said.slice(reloading + 1).includes('READY=1'),
      `RELOADING=1 not followed by READY=1: ${JSON.stringify(said)}`,
    );
  }
});
