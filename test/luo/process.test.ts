/**
 * Real processes: a parent preserves a TCP listener, a Unix listener and a
 * memfd, freezes, serializes into the environment and spawns a successor
 * with each descriptor at the same number; the successor retrieves them by
 * token and answers on the original port and path.
 */
import assert from 'node:assert/strict';
import { type StdioOptions, spawn } from 'node:child_process';
import { closeSync } from 'node:fs';
import type net from 'node:net';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createMemfd, LiveUpdate, memfdWrite } from '../../src/luo/index.js';
import { lines } from './_lines.js';
import { closeServer, readLine, tcpServer, tempDir, unixServer } from './_support.js';

const HERE = dirname(fileURLToPath(import.meta.url));

test('a spawned successor takes over a TCP listener, a Unix listener and a memfd by token', async () => {
  const { dir, remove } = tempDir();
  const tcp = await tcpServer();
  // Abstract: closing a Node server bound to a path unlinks the path (libuv does).
  const abstract = `\0livekexec-luo-test-${process.pid}`;
  const unix = await unixServer(dir, abstract);
  const memfd = createMemfd('state', 4096);
  // Written through the file position (now 11), and once more at 100 without moving it.
  memfdWrite(memfd, new TextEncoder().encode('hello world'));
  memfdWrite(memfd, new Uint8Array(7), 100);
  const { port } = tcp.address() as net.AddressInfo;

  const lu = new LiveUpdate();
  const s = lu.createSession('svc');
  const fds = [s.preserveServer(tcp, 1), s.preserveServer(unix, 2)];
  s.preserveFd(memfd, 3);
  fds.push(memfd);
  lu.freeze();
  const blob = lu.serialize();

  // stdio index = descriptor number in the child.
  const stdio: StdioOptions = ['ignore', 'pipe', 'inherit'];
  for (let i = 3; i <= Math.max(...fds); i++) stdio.push(fds.includes(i) ? i : 'ignore');
  const child = spawn(process.execPath, [join(HERE, '_child.js')], {
    stdio,
    env: { ...process.env, LIVEKEXEC_LUO: Buffer.from(blob).toString('base64') },
  });
  try {
    const out = lines(child.stdout!);
    const report = JSON.parse(await out.next());
    // The parent lets go: its servers close, its duplicates close with the session.
    lu.close();
    await closeServer(tcp);
    await closeServer(unix);

    assert.equal(report.pid, child.pid);
    assert.equal(report.memfd, memfd);
    assert.deepEqual([report.size, report.position, report.text], [4096, 11, 'hello world']);
    assert.equal((report.tcp as net.AddressInfo).port, port);
    assert.equal(await readLine({ port, host: '127.0.0.1' }), `new ${child.pid}`);
    assert.equal(await readLine({ path: abstract }), `new ${child.pid}`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    lu.close();
    closeSync(memfd);
    remove();
  }
});
