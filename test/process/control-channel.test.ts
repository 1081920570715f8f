import assert from 'node:assert/strict';
import { fstatSync, openSync, readSync, unlinkSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { ControlChannel } from '../../src/kexec/control-channel.js';
import { KexecError } from '../../src/kexec/errors.js';
import { startedScript } from '../../src/kexec/main-script.js';
import { parseBootSpec, placeReceivedFds, successorEnv } from '../../src/kexec/process-platform.js';
import { getLibc } from '../../src/sys/libc.js';
import { getProcLibc } from '../../src/sys/socket.js';
import { tempDevice } from './_fixture.js';

test('descriptors pass with SCM_RIGHTS and are placed at their old numbers', () => {
  const { channel, peerFd } = ControlChannel.pair();
  const peer = new ControlChannel(peerFd);
  const path = tempDevice('scm');
  writeFileSync(path, 'preserved file');
  const fd = openSync(path, 'r');
  try {
    channel.send({ t: 'fds', numbers: [fd] }, [fd]);
    channel.send({ t: 'go', boot: '/dev/shm/x@0x1000' });
    const r = peer.receiveSync(5000);
    assert.ok(r && r.msg.t === 'fds');
    assert.equal(r.fds.length, 1);
    const got = r.fds[0];
    assert.notEqual(got, fd, 'a new descriptor in the receiver');
    assert.equal(fstatSync(got).ino, fstatSync(fd).ino, 'the same file');
    const go = peer.receiveSync(5000);
    assert.deepEqual(go, { msg: { t: 'go', boot: '/dev/shm/x@0x1000' }, fds: [] });
    // The old number is taken here (we still hold it), so the received one stays where it came.
    assert.deepEqual([...placeReceivedFds([fd], [got])], [[fd, got]]);
    // Once free, the number is reused.
    getProcLibc().close(fd);
    assert.deepEqual([...placeReceivedFds([fd], [got])], [[fd, fd]]);
    const buf = Buffer.alloc(9);
    readSync(fd, buf, 0, 9, 0);
    assert.equal(buf.toString(), 'preserved');
  } finally {
    getProcLibc().close(fd);
    channel.close();
    peer.close();
    unlinkSync(path);
  }
});

test('prepare and cancel frames pass as they are', () => {
  const { channel, peerFd } = ControlChannel.pair();
  const peer = new ControlChannel(peerFd);
  channel.send({ t: 'prepare' });
  channel.send({ t: 'cancel' });
  assert.deepEqual(peer.receiveSync(1000), { msg: { t: 'prepare' }, fds: [] });
  assert.deepEqual(peer.receiveSync(1000), { msg: { t: 'cancel' }, fds: [] });
  channel.close();
  peer.close();
});

test('a receive times out with null, and the peer closing is EIO', () => {
  const { channel, peerFd } = ControlChannel.pair();
  const peer = new ControlChannel(peerFd);
  assert.equal(peer.receiveSync(20), null);
  channel.close();
  assert.throws(
    () => peer.receiveSync(1000),
    (e: unknown) => e instanceof KexecError && e.code === 'EIO' && /peer/.test(e.message),
  );
  peer.close();
});

test('bad frames from the peer are EIO, never a crash', () => {
  const libc = getProcLibc();
  for (const body of ['not json', '{"t":"go"}', '{"t":"fds","numbers":[1]}', '{"t":"nope"}']) {
    const { channel, peerFd } = ControlChannel.pair();
    const bytes = Buffer.from(body);
    const frame = Buffer.alloc(4 + bytes.length);
    frame.writeUInt32LE(bytes.length, 0);
    bytes.copy(frame, 4);
    assert.equal(libc.sendmsg(channel.fd, frame, [], 0), frame.length);
    const peer = new ControlChannel(peerFd);
    assert.throws(
      () => peer.receiveSync(1000),
      (e: unknown) => e instanceof KexecError && e.code === 'EIO',
      body,
    );
    channel.close();
    peer.close();
  }
  const { channel, peerFd } = ControlChannel.pair();
  const huge = Buffer.alloc(4);
  huge.writeUInt32LE(1 << 30, 0);
  libc.sendmsg(channel.fd, huge, [], 0);
  const peer = new ControlChannel(peerFd);
  assert.throws(() => peer.receiveSync(1000), /refused/);
  channel.close();
  peer.close();
});

test('boot specs: the last @ splits path and hex address; anything else is EINVAL', () => {
  assert.deepEqual(parseBootSpec('/dev/shm/a@b@0x1f000'), {
    path: '/dev/shm/a@b',
    bootBlock: 0x1f000,
  });
  for (const bad of [
    '',
    '/dev/shm/a',
    '/dev/shm/a@',
    '/dev/shm/a@1000',
    '@0x10',
    '/x@0xzz',
    '/x@0x1ffffffffffffff',
  ]) {
    assert.throws(
      () => parseBootSpec(bad),
      (e: unknown) => e instanceof KexecError && e.code === 'EINVAL',
      bad,
    );
  }
});

test('the successor environment drops stale handover variables and names the script a fallback starts', () => {
  const env = successorEnv(
    {
      env: {
        A: '1',
        LIVEKEXEC_BOOT: 'old',
        LIVEKEXEC_PRELOAD: '9',
        LIVEKEXEC_DEVICE_FD: '3',
        LIVEKEXEC_MAIN: '/old/release.mjs',
      },
    },
    { LIVEKEXEC_BOOT: '/d@0x1000' },
  );
  assert.deepEqual(env.sort(), [
    'A=1',
    'LIVEKEXEC_BOOT=/d@0x1000',
    `LIVEKEXEC_FALLBACK_MAIN=${startedScript()}`,
  ]);
});

test('frames of every size in turn, with and without descriptors, arrive whole (sendmsg and recvmsg reuse one block of C memory)', () => {
  const { channel, peerFd } = ControlChannel.pair();
  const peer = new ControlChannel(peerFd);
  const path = tempDevice('scm-sizes');
  writeFileSync(path, 'x');
  const a = openSync(path, 'r');
  const b = openSync(path, 'r');
  const libc = getLibc();
  const alloc = libc.alloc;
  try {
    const long = 'y'.repeat(60_000);
    const sent: [Parameters<ControlChannel['send']>[0], number[]][] = [
      [{ t: 'failed', message: long }, []],
      [{ t: 'prepare' }, []],
      [{ t: 'fds', numbers: [a, b] }, [a, b]],
      [{ t: 'fds', numbers: [a] }, [a]],
      [{ t: 'failed', message: 'short' }, []],
      [{ t: 'go', boot: '/dev/shm/x@0x1000' }, []],
    ];
    // After the first frame each way, no frame allocates C memory (or the external
    // ArrayBuffer a view of it is: V8 may collect before making one, inside a takeover).
    let allocs = 0;
    for (const [msg, fds] of sent) {
      if (msg.t === 'prepare') {
        libc.alloc = (size) => {
          allocs++;
          return alloc(size);
        };
      }
      channel.send(msg, fds);
      const got = peer.receiveSync(5000);
      assert.ok(got !== null);
      // A receiver keeps the first 4 KiB of a failure's message.
      const want = msg.t === 'failed' ? { ...msg, message: msg.message.slice(0, 4096) } : msg;
      assert.deepEqual(got.msg, want);
      assert.equal(got.fds.length, fds.length, JSON.stringify(msg).slice(0, 40));
      for (const fd of got.fds) getProcLibc().close(fd);
    }
    assert.equal(allocs, 0, 'frames after the first allocated C memory');
  } finally {
    libc.alloc = alloc;
    getProcLibc().close(a);
    getProcLibc().close(b);
    channel.close();
    peer.close();
    unlinkSync(path);
  }
});
