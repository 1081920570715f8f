/**
 * Generation 2 of the in-place test: takes the listening socket and the
 * memfd counter from the handover in its environment and serves on.
 */
import { writeSync } from 'node:fs';
import http from 'node:http';
import { LiveUpdate, memfdRead } from '../../src/luo/index.js';

const lu = LiveUpdate.fromHandover(
  new Uint8Array(Buffer.from(process.env.LIVEKEXEC_LUO ?? '', 'base64')),
);
delete process.env.LIVEKEXEC_LUO;
const s = lu.retrieveSession('http');
const counter = s.retrieveFd(2);
const inherited = Buffer.from(memfdRead(counter, 8, 0)).readBigUInt64LE(0);
const server = http.createServer((_req, res) => {
  res.setHeader('connection', 'close');
  res.end(`gen2 ${process.pid}`);
});
s.retrieveServer(1, server);
s.finish();
server.on('listening', () => {
  writeSync(1, `${JSON.stringify({ gen: 2, pid: process.pid, served: Number(inherited) })}\n`);
});
