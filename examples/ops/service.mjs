// The service of README "Operations": an HTTP counter whose state (hits) is
// in preserved memory and whose socket is handed over. SIGHUP upgrades it in
// place to whatever `current` points to now (systemctl reload, pm2
// sendSignal SIGHUP); SIGTERM or SIGINT hands over across a restart
// (systemctl restart, pm2 reload, a container restart).
// argv: <device> <port>
import http from 'node:http';
import net from 'node:net';
import { boot } from 'livekexec';
import { VERSION } from './version.mjs';

const [device, port] = process.argv.slice(2);
const kernel = await boot({
  device,
  size: '16M',
  cmdline: 'reserve_mem=4K:4K:state',
  release: `ops-example@${VERSION}`,
  notifyReady: 'good',
});
// One page of preserved memory, the same in every generation (reserve_mem=).
const { bytes } = kernel.reserveMem('state');
const hits = new DataView(bytes.buffer, bytes.byteOffset, 8);
const handler = (_req, res) => {
  hits.setFloat64(0, hits.getFloat64(0, true) + 1, true);
  res.setHeader('connection', 'close');
  res.end(
    `version ${VERSION}, generation ${kernel.generation}, hits ${hits.getFloat64(0, true)}\n`,
  );
};
const server = kernel.takeServer('http', http.createServer(handler)) ?? http.createServer(handler);
if (!server.listening) server.listen(Number(port), '127.0.0.1');
server.on('listening', () => {
  kernel.markGood(); // serving: a successor on trial is good; systemd hears READY=1
  console.log(
    `ops-example ${VERSION} serving, generation ${kernel.generation}, pid ${process.pid}`,
  );
});
const upgrade = (successor, servers) =>
  kernel.upgrade({ successor, servers }).catch((err) => {
    console.error(`upgrade failed, still serving: ${err.message}`);
  });
process.on('SIGHUP', () => upgrade('in-place', { http: server }));
// A restart: SIGTERM (systemd, docker, the kubelet) or SIGINT (pm2's stop
// signal). The socket can wait only in a service manager's fd store
// (systemd); without one the server finishes what it accepted, the next
// start listens anew, and the memory still goes across. Only the listener is
// closed (net.Server's close): http.Server's also closes idle connections, and
// Node.js 26 counts one whose request was not read yet as idle (reset).
const restart = () => {
  if (process.env.NOTIFY_SOCKET) return upgrade('restart', { http: server });
  net.Server.prototype.close.call(server, () => upgrade('restart', {}));
};
process.on('SIGTERM', restart);
process.on('SIGINT', restart);
