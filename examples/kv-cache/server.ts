/**
 * kv-cache: an HTTP key-value cache that upgrades itself in place.
 *
 *   PUT  /kv/<key>                 store the body (at most 64 KiB)
 *   GET  /kv/<key>                 the value, or 404
 *   DELETE /kv/<key>               forget it
 *   POST /kv-batch                 many puts: {u16 key length, u32 value length, key, value}...
 *   POST /kv-mget                  many gets: {u16 key length, key}... -> {u32 length, value}...
 *                                  (length 0xffffffff: no such key)
 *   GET  /stats                    entries, bytes, pages, version, pid, generation, boot
 *   GET  /metrics                  livekexec's Prometheus metrics (kernel.metrics())
 *   POST /admin/upgrade?version=N  202, then becomes version N in place
 *
 * Keys and values live in a preserved store (store.ts, livekexec/store) in
 * kernel pages. An upgrade (kernel.upgrade) preserves the listening socket with
 * the Live Update Orchestrator, stops accepting, lets in-flight requests finish and
 * execs the same program as version N: same PID, same pages, same socket;
 * the successor attaches to the store in O(1) of its entries, and new
 * connections wait in the socket's backlog meanwhile, so none is refused.
 *
 * argv: --version N --device PATH --port P (0: any) [--host H] [--size 64M]
 *       [--exit-with-stdin] [--upgrade-program FILE]
 * stdout: one JSON line {"ready":true,"port","pid","version","generation","boot","entries"}
 * per generation, once it serves.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { boot, type Kernel } from 'livekexec';
import { CacheStore, MAX_VALUE_BYTES, StoreError } from './store.js';

/** The name the listening server is handed over under. */
const SERVER = 'http';
/** The largest /kv-batch or /kv-mget body. */
const BATCH_MAX_BYTES = 64 * 1024 * 1024;
/** In-flight requests get this long to finish before an upgrade cuts them. */
const DRAIN_TIMEOUT_MS = 5000;

interface Options {
  version: number;
  device: string | undefined;
  port: number;
  host: string;
  size: string;
  exitWithStdin: boolean;
  /** What an upgrade execs (default: this program); a test points it at nothing to make the exec fail. */
  upgradeProgram: string | undefined;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      version: { type: 'string', default: '1' },
      device: { type: 'string' },
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      size: { type: 'string', default: '64M' },
      'exit-with-stdin': { type: 'boolean', default: false },
      'upgrade-program': { type: 'string' },
    },
    strict: true,
  });
  return {
    version: intOption('version', values.version, 1, 1e9),
    device: values.device,
    port: intOption('port', values.port, 0, 65535),
    host: values.host,
    size: values.size,
    exitWithStdin: values['exit-with-stdin'],
    upgradeProgram: values['upgrade-program'],
  };
}

function intOption(name: string, text: string, min: number, max: number): number {
  const n = /^\d{1,10}$/.test(text) ? Number(text) : Number.NaN;
  if (!(n >= min && n <= max)) {
    process.stderr.write(
      `kv-cache: --${name} must be an integer in ${min}..${max}, got '${text}'\n`,
    );
    process.exit(2);
  }
  return n;
}

/** The running generation of the service. */
class Service {
  server: http.Server = http.createServer((req, res) => this.#handle(req, res));
  #draining = false;
  #upgrading = false;

  constructor(
    readonly kernel: Kernel,
    public store: CacheStore,
    readonly options: Options,
  ) {}

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.setHeader('x-version', this.options.version);
    res.setHeader('x-pid', process.pid);
    res.setHeader('x-generation', this.kernel.generation);
    // While draining for an upgrade no connection may outlive its request.
    if (this.#draining) res.shouldKeepAlive = false;
    const url = new URL(req.url ?? '/', 'http://kv-cache');
    const method = req.method ?? 'GET';
    if (url.pathname.startsWith('/kv/')) {
      let key: string;
      try {
        key = decodeURIComponent(url.pathname.slice(4));
      } catch {
        reply(res, 400, { error: 'bad key encoding' });
        return;
      }
      if (method === 'GET') {
        this.#get(key, res);
        return;
      }
      if (method === 'PUT') {
        this.#put(key, req, res);
        return;
      }
      if (method === 'DELETE') {
        reply(res, this.store.delete(key) ? 204 : 404);
        return;
      }
      reply(res, 405, { error: `${method} on a key` });
      return;
    }
    if (url.pathname === '/kv-batch' && method === 'POST') {
      this.#batch(req, res, false);
      return;
    }
    if (url.pathname === '/kv-mget' && method === 'POST') {
      this.#batch(req, res, true);
      return;
    }
    if (url.pathname === '/stats' && method === 'GET') {
      reply(res, 200, this.stats());
      return;
    }
    if (url.pathname === '/metrics' && method === 'GET') {
      const text = this.kernel.metrics();
      res.writeHead(200, {
        'content-type': 'text/plain; version=0.0.4; charset=utf-8',
        'content-length': Buffer.byteLength(text),
      });
      res.end(text);
      return;
    }
    if (url.pathname === '/admin/upgrade' && method === 'POST') {
      this.#upgradeRequest(url, res);
      return;
    }
    reply(res, 404, { error: 'no such route' });
  }

  #get(key: string, res: http.ServerResponse): void {
    const value = this.store.get(key);
    if (value === null) {
      reply(res, 404, { error: 'no such key' });
      return;
    }
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': value.length,
    });
    res.end(value);
  }

  #put(key: string, req: http.IncomingMessage, res: http.ServerResponse): void {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (d: Buffer) => {
      size += d.length;
      if (size <= MAX_VALUE_BYTES) parts.push(d);
    });
    req.on('end', () => {
      if (size > MAX_VALUE_BYTES) {
        reply(res, 413, { error: `values are at most ${MAX_VALUE_BYTES} bytes` });
        return;
      }
      try {
        this.store.put(key, Buffer.concat(parts, size));
      } catch (err) {
        if (!(err instanceof StoreError)) throw err;
        reply(res, err.code === 'ENOMEM' ? 507 : 400, { error: err.message });
        return;
      }
      reply(res, 204);
    });
  }

  /** Many puts (or, with `mget`, many gets) in one request: the demo fills and checks a million keys this way. */
  #batch(req: http.IncomingMessage, res: http.ServerResponse, mget: boolean): void {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (d: Buffer) => {
      size += d.length;
      if (size <= BATCH_MAX_BYTES) parts.push(d);
    });
    req.on('end', () => {
      if (size > BATCH_MAX_BYTES) {
        reply(res, 413, { error: `a batch is at most ${BATCH_MAX_BYTES} bytes` });
        return;
      }
      const body = Buffer.concat(parts, size);
      const out: Buffer[] = [];
      let p = 0;
      try {
        while (p < body.length) {
          if (p + (mget ? 2 : 6) > body.length)
            throw new StoreError('EINVAL', 'a batch entry is cut off');
          const klen = body.readUInt16LE(p);
          const vlen = mget ? 0 : body.readUInt32LE(p + 2);
          p += mget ? 2 : 6;
          if (p + klen + vlen > body.length)
            throw new StoreError('EINVAL', 'a batch entry is cut off');
          const key = body.toString('utf8', p, p + klen);
          p += klen;
          if (mget) {
            const v = this.store.get(key);
            const len = Buffer.alloc(4);
            len.writeUInt32LE(v === null ? 0xffffffff : v.length, 0);
            out.push(len);
            if (v !== null) out.push(Buffer.from(v));
          } else {
            this.store.put(key, body.subarray(p, p + vlen));
            p += vlen;
          }
        }
      } catch (err) {
        if (!(err instanceof StoreError)) throw err;
        reply(res, err.code === 'ENOMEM' ? 507 : 400, { error: err.message });
        return;
      }
      if (!mget) {
        reply(res, 204);
        return;
      }
      const data = Buffer.concat(out);
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': data.length,
      });
      res.end(data);
    });
  }

  stats(): Record<string, unknown> {
    return {
      entries: this.store.entries,
      bytes: this.store.bytes,
      pages: this.store.pages,
      version: this.options.version,
      pid: process.pid,
      generation: this.kernel.generation,
      boot: this.kernel.boot.kind,
    };
  }

  #upgradeRequest(url: URL, res: http.ServerResponse): void {
    const text = url.searchParams.get('version') ?? '';
    const to = /^\d{1,9}$/.test(text) ? Number(text) : 0;
    if (to < 1) {
      reply(res, 400, { error: `version must be a positive integer, got '${text}'` });
      return;
    }
    if (this.#upgrading) {
      reply(res, 409, { error: 'an upgrade is under way' });
      return;
    }
    this.#upgrading = true;
    res.on('finish', () => {
      this.upgrade(to).catch((err) => {
        process.stderr.write(`kv-cache: upgrade to version ${to} failed: ${String(err)}\n`);
        this.#upgrading = false;
      });
    });
    reply(res, 202, { upgrading: true, from: this.options.version, to });
  }

  /**
   * Becomes version `to` in place. Returns only when the exec failed; the
   * service then serves on as before.
   */
  async upgrade(to: number): Promise<void> {
    const argv = successorArgv(this.options, to, (this.server.address() as AddressInfo).port);
    this.#draining = true;
    try {
      // Keeps the socket, drains it, saves the values last, execs.
      await this.kernel.upgrade({
        argv,
        program: this.options.upgradeProgram,
        servers: { [SERVER]: this.server },
        drainTimeoutMs: DRAIN_TIMEOUT_MS,
        beforeExec: [() => this.store.save({ listenerToken: 0 })],
      });
    } catch (err) {
      // Not replaced (the store, frozen for the exec, is unfrozen): the server listens again on its own socket.
      this.#draining = false;
      throw err;
    }
  }
}

function successorArgv(o: Options, version: number, port: number): string[] {
  const argv = ['--version', String(version), '--port', String(port), '--host', o.host];
  argv.push('--size', o.size);
  if (o.device !== undefined) argv.push('--device', o.device);
  if (o.exitWithStdin) argv.push('--exit-with-stdin');
  return argv;
}

function reply(res: http.ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) {
    res.writeHead(status).end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** The predecessor's socket, when this generation is its successor. */
function takeOver(kernel: Kernel, service: Service): boolean {
  if (kernel.boot.kind !== 'kexec') return false;
  try {
    return kernel.takeServer(SERVER, service.server) !== null;
  } catch (err) {
    process.stderr.write(`kv-cache: no preserved socket, listening anew: ${String(err)}\n`);
    return false;
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const kernel = await boot({ device: options.device, size: options.size });
  const { store } = CacheStore.open(kernel);
  const service = new Service(kernel, store, options);
  if (!takeOver(kernel, service)) service.server.listen(options.port, options.host);
  if (!service.server.listening) await once(service.server, 'listening');
  // Serving: a successor on trial is good now (its predecessor's fallback is no longer needed).
  kernel.markGood();
  const { port } = service.server.address() as AddressInfo;
  const ready = {
    ready: true,
    port,
    pid: process.pid,
    version: options.version,
    generation: kernel.generation,
    boot: kernel.boot.kind,
    entries: service.store.entries,
  };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
  if (options.exitWithStdin) {
    process.stdin.on('end', () => process.exit(0));
    process.stdin.on('close', () => process.exit(0));
    process.stdin.resume();
  }
}

await main();
