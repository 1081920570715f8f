/** Sessions and their error codes, as LUO's: EINVAL, EEXIST, ENOENT, EBUSY, EAGAIN, ESRCH, EFAULT. */
import assert from 'node:assert/strict';
import { closeSync, openSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { describe, test } from 'node:test';
import { createMemfd, LiveUpdate, memfdWrite } from '../../src/luo/index.js';
import {
  closeServer,
  luoError,
  openFile,
  serverFd,
  tcpServer,
  tempDir,
  withLiveUpdate,
} from './_support.js';

describe('session names', () => {
  test('1..64 bytes are accepted; empty, 65 bytes, 66 bytes of UTF-8 and NUL are EINVAL', async () => {
    await withLiveUpdate((lu) => {
      assert.equal(lu.createSession('a').name, 'a');
      assert.equal(lu.createSession('x'.repeat(64)).name, 'x'.repeat(64));
      assert.throws(() => lu.createSession(''), luoError('EINVAL'));
      assert.throws(() => lu.createSession('x'.repeat(65)), luoError('EINVAL'));
      assert.throws(() => lu.createSession('é'.repeat(33)), luoError('EINVAL'));
      assert.throws(() => lu.createSession('a\0b'), luoError('EINVAL'));
      assert.throws(() => lu.createSession(42 as unknown as string), luoError('EINVAL'));
      assert.deepEqual(
        lu.sessions().map((s) => s.name),
        ['a', 'x'.repeat(64)],
      );
    });
  });

  test('a second session of the same name is EEXIST; after close the name is free again', async () => {
    await withLiveUpdate((lu) => {
      const s = lu.createSession('svc');
      assert.throws(() => lu.createSession('svc'), luoError('EEXIST'));
      s.close();
      assert.equal(lu.createSession('svc').direction, 'outgoing');
    });
  });

  test('retrieveSession of an unknown name is ENOENT; outgoing sessions are not incoming', async () => {
    await withLiveUpdate((lu) => {
      lu.createSession('svc');
      assert.throws(() => lu.retrieveSession('svc'), luoError('ENOENT'));
      assert.throws(() => lu.retrieveSession('nope'), luoError('ENOENT'));
    });
  });
});

describe('exclusive open', () => {
  test('a second LiveUpdate is EBUSY until the first is closed', () => {
    const a = new LiveUpdate();
    assert.throws(() => new LiveUpdate(), luoError('EBUSY'));
    a.close();
    a.close();
    const b = new LiveUpdate();
    b.close();
    assert.throws(() => b.createSession('x'), luoError('EINVAL'));
  });
});

describe('preserveFd', () => {
  test('bad descriptors and tokens are EINVAL', async () => {
    const { dir, remove } = tempDir();
    const fd = openFile(dir);
    await withLiveUpdate((lu) => {
      const s = lu.createSession('s');
      for (const bad of [-1, 1.5, 2 ** 31, Number.NaN]) {
        assert.throws(() => s.preserveFd(bad, 1), luoError('EINVAL'));
      }
      for (const bad of [-1, 1.5, -1n, 2n ** 64n, Number.MAX_SAFE_INTEGER + 1]) {
        assert.throws(() => s.preserveFd(fd, bad), luoError('EINVAL'));
      }
      const closed = openSync(dir, 'r');
      closeSync(closed);
      assert.throws(() => s.preserveFd(closed, 1), luoError('EINVAL'));
      // The largest token is fine.
      s.preserveFd(fd, 2n ** 64n - 1n);
      assert.equal(s.files()[0]!.token, 2n ** 64n - 1n);
    });
    closeSync(fd);
    remove();
  });

  test('a token used twice in a session is EEXIST; other sessions may reuse it', async () => {
    const { dir, remove } = tempDir();
    const a = openFile(dir, 'a');
    const b = openFile(dir, 'b');
    await withLiveUpdate((lu) => {
      const s = lu.createSession('s');
      s.preserveFd(a, 7);
      assert.throws(() => s.preserveFd(b, 7), luoError('EEXIST'));
      assert.throws(() => s.preserveFd(b, 7n), luoError('EEXIST'));
      lu.createSession('t').preserveFd(b, 7);
    });
    closeSync(a);
    closeSync(b);
    remove();
  });

  test('the same fd preserved twice, in this or another session, is EBUSY', async () => {
    const { dir, remove } = tempDir();
    const fd = openFile(dir);
    await withLiveUpdate((lu) => {
      const s = lu.createSession('s');
      s.preserveFd(fd, 1);
      assert.throws(() => s.preserveFd(fd, 2), luoError('EBUSY'));
      assert.throws(() => lu.createSession('t').preserveFd(fd, 1), luoError('EBUSY'));
      // Once unpreserved it may be preserved again.
      s.unpreserveFd(1);
      lu.sessions()[1]!.preserveFd(fd, 1);
    });
    closeSync(fd);
    remove();
  });

  test('descriptors no handler knows are ENOENT: a directory, a connected TCP socket', async () => {
    const dirFd = openSync(tmpdir(), 'r');
    const server = await tcpServer();
    const { port } = server.address() as net.AddressInfo;
    const client = net.connect(port, '127.0.0.1');
    client.on('error', () => {});
    await new Promise((r) => client.once('connect', r));
    const clientFd = (client as unknown as { _handle: { fd: number } })._handle.fd;
    await withLiveUpdate((lu) => {
      const s = lu.createSession('s');
      assert.throws(() => s.preserveFd(dirFd, 1), luoError('ENOENT'));
      assert.throws(() => s.preserveFd(clientFd, 2), luoError('ENOENT'));
      assert.equal(s.files().length, 0);
    });
    client.destroy();
    await closeServer(server);
    closeSync(dirFd);
  });

  test('unpreserveFd and retrieveFd of an unknown token are ENOENT; the wrong direction is EINVAL', async () => {
    await withLiveUpdate((lu) => {
      const s = lu.createSession('s');
      assert.throws(() => s.unpreserveFd(9), luoError('ENOENT'));
      assert.throws(() => s.retrieveFd(9), luoError('EINVAL'));
    });
  });

  test('the handler is chosen by kind: TCP listener, memfd, regular file', async () => {
    const { dir, remove } = tempDir();
    const server = await tcpServer();
    const memfd = createMemfd('state', 100);
    const file = openFile(dir);
    await withLiveUpdate((lu) => {
      const s = lu.createSession('s');
      s.preserveFd(serverFd(server), 1);
      s.preserveFd(memfd, 2);
      s.preserveFd(file, 3);
      assert.deepEqual(
        s.files().map((f) => f.compatible),
        ['livekexec,luo-tcp-listener-v1', 'livekexec,luo-memfd-v1', 'livekexec,luo-file-v1'],
      );
      const { port } = server.address() as net.AddressInfo;
      assert.equal(s.files()[0]!.description, `tcp 127.0.0.1:${port}`);
      assert.equal(s.files()[1]!.description, 'memfd:state (100 bytes at 0)');
    });
    await closeServer(server);
    closeSync(memfd);
    closeSync(file);
    remove();
  });
});

describe('freeze failures', () => {
  test('a preserved fd closed underneath makes freeze EAGAIN and leaves the others unfrozen', async () => {
    const { dir, remove } = tempDir();
    const a = openFile(dir, 'a');
    const m = createMemfd('m');
    const b = openFile(dir, 'b');
    await withLiveUpdate((lu) => {
      lu.createSession('first').preserveFd(a, 1);
      const s = lu.createSession('second');
      s.preserveFd(m, 1);
      s.preserveFd(b, 2);
      closeSync(b);
      assert.throws(() => lu.freeze(), luoError('EAGAIN'));
      assert.equal(lu.frozen, false);
      // unfreeze after a failed freeze has nothing to do.
      assert.throws(() => lu.unfreeze(), luoError('EINVAL'));
      assert.throws(() => lu.serialize(), luoError('EINVAL'));
      s.unpreserveFd(2);
      lu.freeze();
      assert.throws(() => lu.freeze(), luoError('EINVAL'));
      assert.throws(() => s.preserveFd(m, 3), luoError('EBUSY'));
      assert.throws(() => lu.createSession('third'), luoError('EBUSY'));
    });
    closeSync(a);
    closeSync(m);
    remove();
  });

  test('a server closed between preserve and freeze is EAGAIN, naming the fd', async () => {
    const server = await tcpServer();
    await withLiveUpdate(async (lu) => {
      const s = lu.createSession('s');
      s.preserveFd(serverFd(server), 1);
      await closeServer(server);
      const err = (() => {
        try {
          lu.freeze();
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      assert.ok(luoError('EAGAIN')(err));
      assert.match((err as Error).message, /fd \d+ \(token 1\) is closed/);
    });
  });

  test('writing to a memfd after preserve is fine: freeze records the size then', async () => {
    const m = createMemfd('grow');
    await withLiveUpdate((lu) => {
      const s = lu.createSession('s');
      s.preserveFd(m, 1);
      memfdWrite(m, new Uint8Array(5000));
      lu.freeze();
      const data = s.files()[0]!.data as unknown as { size: bigint; position: bigint };
      assert.equal(data.size, 5000n);
      assert.equal(data.position, 5000n);
    });
    closeSync(m);
  });
});
