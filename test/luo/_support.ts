/** Shared set-up of the LUO tests: listening servers, descriptor flags, a scoped LiveUpdate. */
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LiveUpdate, LuoError, type LuoErrorCode } from '../../src/luo/index.js';
import { F_GETFD, FD_CLOEXEC, getLibc } from '../../src/sys/libc.js';

/** F_GETFD of `fd` (-1 when closed). */
export function fdFlagsOf(fd: number): number {
  return getLibc().fcntl(fd, F_GETFD, 0);
}

export function isCloexec(fd: number): boolean {
  const f = fdFlagsOf(fd);
  if (f < 0) throw new Error(`fd ${fd} is not open`);
  return (f & FD_CLOEXEC) !== 0;
}

/** The descriptor of a listening net.Server. */
export function serverFd(server: net.Server): number {
  return (server as unknown as { _handle: { fd: number } })._handle.fd;
}

/** A server listening on loopback TCP (IPv4 unless `host` says otherwise). */
export async function tcpServer(host = '127.0.0.1'): Promise<net.Server> {
  const s = net.createServer((c) => {
    c.on('error', () => {});
    c.end('old\n');
  });
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, host, () => resolve());
  });
  return s;
}

/** A temporary folder removed by the returned function. */
export function tempDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'luo-test-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A server listening on a Unix socket in `dir` (abstract when `name` starts with NUL). */
export async function unixServer(dir: string, name = 'sock'): Promise<net.Server> {
  const s = net.createServer((c) => {
    c.on('error', () => {});
    c.end('old\n');
  });
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(name.startsWith('\0') ? name : join(dir, name), () => resolve());
  });
  return s;
}

export async function closeServer(s: net.Server): Promise<void> {
  if (!s.listening) return;
  await new Promise<void>((resolve) => s.close(() => resolve()));
}

/** A regular file opened read-write (cloexec, as Node opens everything). */
export function openFile(dir: string, name = 'file'): number {
  return openSync(join(dir, name), 'w+');
}

/** Run `body` with a fresh LiveUpdate, closed afterwards whatever happens. */
export async function withLiveUpdate(body: (lu: LiveUpdate) => unknown): Promise<void> {
  const lu = new LiveUpdate();
  try {
    await body(lu);
  } finally {
    lu.close();
  }
}

/** An assert.throws matcher for a LuoError with `code`. */
export function luoError(code: LuoErrorCode): (e: unknown) => boolean {
  return (e) => {
    if (!(e instanceof LuoError)) throw new Error(`expected LuoError ${code}, got ${String(e)}`);
    if (e.code !== code) throw new Error(`expected ${code}, got ${e.message}`);
    return true;
  };
}

/** One line from a TCP or Unix server (each test server writes one line and ends). */
export function readLine(
  target: { port: number; host?: string } | { path: string },
): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(target as net.NetConnectOpts);
    let text = '';
    c.setEncoding('utf8');
    c.on('data', (d) => {
      text += d;
    });
    c.on('end', () => resolve(text.trim()));
    c.on('error', reject);
  });
}

export { closeSync };
