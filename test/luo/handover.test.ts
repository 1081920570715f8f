/**
 * freeze/unfreeze flip FD_CLOEXEC on exactly the preserved descriptors, and
 * serialize -> fromHandover -> retrieve round-trips every handler within one
 * process (the descriptors stay open, as they would across execve).
 */
import assert from 'node:assert/strict';
import { closeSync } from 'node:fs';
import type net from 'node:net';
import { describe, test } from 'node:test';
import { Fdt } from '../../src/fdt/index.js';
import {
  buildHandover,
  createMemfd,
  defaultHandlers,
  LiveUpdate,
  LUO_COMPATIBLE,
  LUO_SESSION_NAME_MAX,
  memfdRead,
  memfdSize,
  memfdWrite,
  parseHandover,
} from '../../src/luo/index.js';
import { F_SETFD, getLibc, SEEK_CUR } from '../../src/sys/libc.js';
import {
  closeServer,
  fdFlagsOf,
  isCloexec,
  luoError,
  openFile,
  readLine,
  serverFd,
  tcpServer,
  tempDir,
  unixServer,
  withLiveUpdate,
} from './_support.js';

describe('freeze and unfreeze', () => {
  test('FD_CLOEXEC is cleared on exactly the preserved fds, and restored by unfreeze', async () => {
    const { dir, remove } = tempDir();
    const preserved = [openFile(dir, 'a'), createMemfd('b'), openFile(dir, 'c')];
    const bystanders = [openFile(dir, 'd'), createMemfd('e')];
    // One preserved fd starts without FD_CLOEXEC: it must come back without it.
    assert.equal(getLibc().fcntl(preserved[2]!, F_SETFD, 0), 0);
    const before = [...preserved, ...bystanders].map(fdFlagsOf);
    assert.deepEqual(before, [1, 1, 0, 1, 1]);
    await withLiveUpdate((lu) => {
      lu.createSession('one').preserveFd(preserved[0]!, 1);
      const two = lu.createSession('two');
      two.preserveFd(preserved[1]!, 1);
      two.preserveFd(preserved[2]!, 2);
      for (let round = 0; round < 2; round++) {
        lu.freeze();
        assert.deepEqual(preserved.map(isCloexec), [false, false, false]);
        assert.deepEqual(bystanders.map(isCloexec), [true, true]);
        lu.unfreeze();
        assert.deepEqual([...preserved, ...bystanders].map(fdFlagsOf), before);
      }
      // unpreserve while frozen restores that fd's flags; close restores the rest.
      lu.freeze();
      two.unpreserveFd(1);
      assert.equal(isCloexec(preserved[1]!), true);
      assert.equal(isCloexec(preserved[0]!), false);
    });
    assert.deepEqual([...preserved, ...bystanders].map(fdFlagsOf), before);
    for (const fd of [...preserved, ...bystanders]) closeSync(fd);
    remove();
  });

  test('preserveServer preserves a duplicate, which close() closes; the server keeps its own', async () => {
    const server = await tcpServer();
    const own = serverFd(server);
    let dup = -1;
    await withLiveUpdate((lu) => {
      dup = lu.createSession('s').preserveServer(server, 1);
      assert.notEqual(dup, own);
      assert.equal(isCloexec(dup), true);
      lu.freeze();
      assert.equal(isCloexec(dup), false);
      assert.equal(isCloexec(own), true);
    });
    assert.equal(fdFlagsOf(dup), -1);
    const { port } = server.address() as net.AddressInfo;
    assert.equal(await readLine({ port, host: '127.0.0.1' }), 'old');
    await closeServer(server);
  });
});

describe('serialize and fromHandover', () => {
  test('every handler round-trips: listeners answer, memfd and file keep contents, size and position', async () => {
    const { dir, remove } = tempDir();
    const tcp4 = await tcpServer('127.0.0.1');
    const tcp6 = await tcpServer('::1');
    const unix = await unixServer(dir);
    const memfd = createMemfd('state', 8192);
    memfdWrite(memfd, new TextEncoder().encode('hello, successor'), 100);
    memfdWrite(memfd, new Uint8Array([1, 2, 3]));
    const file = openFile(dir, 'log');
    memfdWrite(file, new TextEncoder().encode('line 1\nline 2\n'));
    const extra = openFile(dir, 'extra');
    const fds = [serverFd(tcp4), serverFd(tcp6), serverFd(unix), memfd, file, extra];
    const flags = fds.map(fdFlagsOf);

    const lu = new LiveUpdate();
    const net = lu.createSession('net');
    net.preserveFd(fds[0]!, 4);
    net.preserveFd(fds[1]!, 6);
    net.preserveFd(fds[2]!, 1n << 63n);
    net.preserveFd(extra, 5);
    const state = lu.createSession('state/é');
    state.preserveFd(memfd, 0);
    state.preserveFd(file, 1);
    lu.freeze();
    const blob = lu.serialize();
    // What the successor would see: descriptors open, FD_CLOEXEC clear.
    const descriptions = lu.sessions().flatMap((s) => s.files().map((f) => f.description));
    lu.close();
    for (const fd of fds) getLibc().fcntl(fd, F_SETFD, 0);

    const fdt = Fdt.from(blob);
    assert.equal(fdt.getString(0, 'compatible'), LUO_COMPATIBLE);
    assert.equal(fdt.getString(fdt.pathOffset('/session@1'), 'name'), 'state/é');
    assert.equal(fdt.getU32(fdt.pathOffset('/session@1/file@0'), 'fd'), memfd);
    assert.deepEqual(buildHandover(parseHandover(blob, defaultHandlers())), blob);

    const next = LiveUpdate.fromHandover(blob);
    try {
      // Inherited, not yet retrieved: close-on-exec, so a child spawned now gets none of them.
      assert.deepEqual(fds.map(isCloexec), [true, true, true, true, true, true]);
      assert.deepEqual(
        next.sessions().map((s) => [s.name, s.direction]),
        [
          ['net', 'incoming'],
          ['state/é', 'incoming'],
        ],
      );
      const st = next.retrieveSession('state/é');
      // Any order: the file first.
      assert.equal(st.retrieveFd(1), file);
      const m = st.retrieveFile(0);
      assert.equal(m.fd, memfd);
      assert.equal(m.description, 'memfd:state (8192 bytes at 3)');
      assert.equal(memfdSize(memfd), 8192);
      assert.equal(getLibc().lseek(memfd, 0n, SEEK_CUR), 3n);
      assert.equal(new TextDecoder().decode(memfdRead(memfd, 16, 100)), 'hello, successor');
      assert.throws(() => st.retrieveFd(0), luoError('EBUSY'));
      st.finish();
      assert.throws(() => next.retrieveSession('state/é'), luoError('ENOENT'));

      const ns = next.retrieveSession('net');
      assert.equal(ns.retrieveFd(1n << 63n), fds[2]);
      assert.equal(ns.retrieveFd(6), fds[1]);
      assert.equal(ns.retrieveFd(4), fds[0]);
      assert.throws(() => ns.retrieveFd(3), luoError('ENOENT'));
      // The retrieved fds have their pre-freeze flags back.
      assert.deepEqual(fds.slice(0, 5).map(fdFlagsOf), flags.slice(0, 5));
      // Token 5 is not retrieved: close-on-exec meanwhile (no child inherits it),
      // and finish closes it, since it is still the preserved file.
      assert.equal(fdFlagsOf(extra), 1);
      ns.finish();
      assert.equal(fdFlagsOf(extra), -1);
      assert.equal(descriptions.length, 6);
    } finally {
      next.close();
    }
    // The servers never stopped: they still answer on their own handles.
    const port4 = (tcp4.address() as net.AddressInfo).port;
    assert.equal(await readLine({ port: port4, host: '127.0.0.1' }), 'old');
    const unixPath = (unix.address() as string).toString();
    assert.equal(await readLine({ path: unixPath }), 'old');
    const { port } = tcp6.address() as net.AddressInfo;
    assert.equal(await readLine({ port, host: '::1' }), 'old');
    await closeServer(tcp6);
    await closeServer(unix);
    await closeServer(tcp4);
    closeSync(memfd);
    closeSync(file);
    remove();
  });

  test('retrieve of a descriptor that changed since freeze is ESRCH', async () => {
    const { dir, remove } = tempDir();
    const memfd = createMemfd('m', 10);
    const file = openFile(dir);
    const server = await tcpServer();
    const lu = new LiveUpdate();
    const s = lu.createSession('s');
    s.preserveFd(memfd, 1);
    s.preserveFd(file, 2);
    s.preserveFd(serverFd(server), 3);
    lu.freeze();
    const blob = lu.serialize();
    lu.close();
    memfdWrite(memfd, new Uint8Array(20));
    memfdWrite(file, new Uint8Array(1));
    await closeServer(server);
    const next = LiveUpdate.fromHandover(blob);
    try {
      const r = next.retrieveSession('s');
      assert.throws(() => r.retrieveFd(1), luoError('ESRCH'));
      assert.throws(() => r.retrieveFd(2), luoError('ESRCH'));
      assert.throws(() => r.retrieveFd(3), luoError('ESRCH'));
      assert.throws(() => r.retrieveServer(1), luoError('EINVAL'));
      // finish leaves descriptors that are no longer the preserved files open.
      r.finish();
      assert.notEqual(fdFlagsOf(memfd), -1);
      assert.notEqual(fdFlagsOf(file), -1);
    } finally {
      next.close();
    }
    closeSync(memfd);
    closeSync(file);
    remove();
  });

  test('session names of 64 bytes cross the handover (no NUL counted; the kernel takes 63); 65 are EFAULT', () => {
    const names = ['x'.repeat(64), 'é'.repeat(32)];
    assert.ok(names.every((n) => Buffer.byteLength(n) === LUO_SESSION_NAME_MAX));
    const blob = buildHandover(names.map((name) => ({ name, files: [] })));
    const next = LiveUpdate.fromHandover(blob);
    try {
      assert.deepEqual(
        next.sessions().map((s) => s.name),
        names,
      );
      // The successor can re-create the very sessions it took, for its own successor.
      for (const n of names) next.retrieveSession(n).finish();
      for (const n of names) next.createSession(n);
    } finally {
      next.close();
    }
    const long = buildHandover([{ name: 'y'.repeat(65), files: [] }]);
    assert.throws(() => LiveUpdate.fromHandover(long), luoError('EFAULT'));
  });

  test('fromHandover of bytes that are not a handover is EFAULT', () => {
    for (const bad of [new Uint8Array(0), new Uint8Array(64), 'text' as unknown as Uint8Array]) {
      assert.throws(() => LiveUpdate.fromHandover(bad), luoError('EFAULT'));
    }
    // Nothing stayed open.
    new LiveUpdate().close();
  });
});
