/**
 * The successor of the spawn test (process.test.ts): inherits the preserved
 * descriptors at the same numbers, retrieves them by token, serves on them
 * and reports what it found on stdout as one JSON line.
 */
import { writeSync } from 'node:fs';
import net from 'node:net';
import { LiveUpdate, memfdRead, memfdSize } from '../../src/luo/index.js';
import { getLibc, SEEK_CUR } from '../../src/sys/libc.js';

const blob = Buffer.from(process.env.LIVEKEXEC_LUO ?? '', 'base64');
delete process.env.LIVEKEXEC_LUO;
const lu = LiveUpdate.fromHandover(new Uint8Array(blob));
const s = lu.retrieveSession('svc');
const answer = (c: net.Socket): void => {
  c.on('error', () => {});
  c.end(`new ${process.pid}\n`);
};
// Retrieval in another order than preservation.
const memfd = s.retrieveFd(3);
const unix = s.retrieveServer(2, net.createServer(answer));
const tcp = s.retrieveServer(1, net.createServer(answer));
s.finish();
let waiting = 2;
const ready = (): void => {
  if (--waiting > 0) return;
  const report = {
    pid: process.pid,
    memfd,
    size: memfdSize(memfd),
    position: Number(getLibc().lseek(memfd, 0n, SEEK_CUR)),
    text: Buffer.from(memfdRead(memfd, 11, 0)).toString(),
    tcp: tcp.address(),
  };
  writeSync(1, `${JSON.stringify(report)}\n`);
};
tcp.on('listening', ready);
unix.on('listening', ready);
process.on('SIGTERM', () => process.exit(0));
