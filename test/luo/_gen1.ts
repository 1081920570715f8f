/**
 * Generation 1 of the in-place test (execve.test.ts): an HTTP server that,
 * on SIGUSR2, preserves its listening socket and a memfd counter, drains,
 * freezes and execve's _gen2.js in place (same PID), as nginx does on USR2.
 */
import { writeSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LiveUpdate, memfdWrite } from '../../src/luo/index.js';
import { F_SETFD, getLibc } from '../../src/sys/libc.js';

let served = 0;
const server = http.createServer((_req, res) => {
  served++;
  res.setHeader('connection', 'close');
  res.end(`gen1 ${process.pid}`);
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as net.AddressInfo;
  writeSync(1, `${JSON.stringify({ port, pid: process.pid })}\n`);
});

process.on('SIGUSR2', () => {
  const lu = new LiveUpdate();
  const s = lu.createSession('http');
  s.preserveServer(server, 1);
  const counter = s.preserveMemfd('counter', 2, 8);
  // Stop accepting; the preserved duplicate keeps the socket listening, so
  // new connections wait in the backlog for generation 2.
  server.close(() => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(served));
    memfdWrite(counter, b, 0);
    lu.freeze();
    const env = Object.entries(process.env).map(([k, v]) => `${k}=${v}`);
    env.push(`LIVEKEXEC_LUO=${Buffer.from(lu.serialize()).toString('base64')}`);
    // Node opens even stdio close-on-exec: the successor must keep 0..2.
    for (const fd of [0, 1, 2]) getLibc().fcntl(fd, F_SETFD, 0);
    const next = join(dirname(fileURLToPath(import.meta.url)), '_gen2.js');
    getLibc().execve(process.execPath, [process.execPath, next], env);
    // Only on failure: keep serving as generation 1.
    writeSync(2, `execve failed: errno ${getLibc().errno()}\n`);
    lu.close();
    process.exit(1);
  });
  server.closeIdleConnections();
});
