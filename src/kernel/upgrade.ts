/**
 * An upgrade as one asynchronous call (kernel.upgrade): load the successor,
 * drop the device's mappings ahead of the exec while still serving, keep the
 * listening servers (each in its own LUO session), drain them, run the
 * program's before-exec hooks (flush logs, close databases), exec. On any
 * failure before the point of no return the servers listen again on their
 * own sockets, which never closed, and the error is thrown: this generation
 * goes on serving. The successor takes each server back by name.
 */
import { createRequire } from 'node:module';
import type { Server } from 'node:net';
import { show } from '../base/errors.js';
import { KexecError } from '../kexec/errors.js';
import type { KexecLoadOptions } from '../kexec/kexec.js';
import type { LiveUpdate } from '../luo/liveupdate.js';
import type { LuoSession } from '../luo/session.js';

export interface UpgradeOptions extends KexecLoadOptions {
  /** Listening servers (net.Server, http.Server) to hand over, by a name the successor takes them back with. */
  servers?: Readonly<Record<string, Server>>;
  /** Run in order after the servers are drained, right before the exec; one that throws cancels the upgrade. */
  beforeExec?: readonly (() => unknown)[];
  /** How long open connections may take to finish before they are closed (ms, default 5000). */
  drainTimeoutMs?: number;
}

/** What upgrade needs of a generation. */
export interface UpgradeHost<K> {
  readonly liveupdate: LiveUpdate;
  load(options: KexecLoadOptions): void;
  /** Drops the process's mappings of the device ahead of the exec, while it still serves (MemoryDevice.zap). */
  zapMappings?(): Promise<void>;
  unload(): void;
  exec(): K;
}

/** The LUO session that carries one server. */
export function serverSession(name: string): string {
  return `server:${name}`;
}

const TOKEN = 1;

export async function upgrade<K>(host: UpgradeHost<K>, options: UpgradeOptions): Promise<K> {
  checkUpgradeOptions(options);
  const { servers = {}, beforeExec = [], drainTimeoutMs = 5000, ...load } = options;
  host.load(load);
  const kept: { name: string; server: Server; session: LuoSession }[] = [];
  try {
    // Still serving: the exec's own teardown of these mappings would be downtime.
    await host.zapMappings?.();
    for (const [name, server] of Object.entries(servers)) {
      const lu = host.liveupdate;
      const session =
        lu.sessions().find((s) => s.name === serverSession(name) && s.direction === 'outgoing') ??
        lu.createSession(serverSession(name));
      session.preserveServer(server, TOKEN);
      kept.push({ name, server, session });
    }
    await Promise.all(kept.map((k) => drain(k.server, drainTimeoutMs)));
    for (const hook of beforeExec) await hook();
    return host.exec();
  } catch (err) {
    // Not replaced: serve again on the very sockets, and drop what was loaded.
    for (const k of kept) {
      try {
        k.session.unpreserveServer(TOKEN, k.server);
        k.session.close();
      } catch {
        // The error thrown below says what went wrong first.
      }
    }
    try {
      host.unload();
    } catch {
      // nothing loaded any more
    }
    throw err;
  }
}

/** How often a drain closes the connections that went idle (ms). */
const REAP_INTERVAL_MS = 20;

/**
 * Stops accepting (the preserved duplicate keeps the socket and its
 * backlog for the successor) and waits for the open connections to end,
 * closing them all after `timeoutMs`.
 *
 * Not http.Server.close(): it closes the idle connections at once, and
 * Node.js 26 counts as idle a connection accepted whose request has not
 * been read yet (nodejs/node#63470), whose client then sees ECONNRESET
 * although it sent its request in time. So the listening handle is closed
 * alone, and idle connections (keep-alive ones between requests) are
 * closed only from the next turn of the event loop on, once the requests
 * already sent on new connections were read, and then every
 * REAP_INTERVAL_MS, as responses end.
 */
function drain(server: Server, timeoutMs: number): Promise<void> {
  if (!server.listening) return Promise.resolve();
  const http = server as Server & {
    closeIdleConnections?: () => void;
    closeAllConnections?: () => void;
  };
  return new Promise((resolve) => {
    let closed = false;
    let reaper: ReturnType<typeof setInterval> | null = null;
    const timer = setTimeout(() => http.closeAllConnections?.(), timeoutMs);
    netServerClose().call(server, () => {
      closed = true;
      clearTimeout(timer);
      if (reaper !== null) clearInterval(reaper);
      resolve();
    });
    if (http.closeIdleConnections === undefined) return;
    // Two turns: the first check phase may come before this turn's reads.
    setImmediate(() =>
      setImmediate(() => {
        if (closed) return;
        http.closeIdleConnections?.();
        if (!closed) reaper = setInterval(() => http.closeIdleConnections?.(), REAP_INTERVAL_MS);
      }),
    );
  });
}

/**
 * net.Server's own close: stops listening, without http.Server's closing of
 * idle connections (node:net on demand: a successor's boot needs none of it).
 */
function netServerClose(): Server['close'] {
  return (createRequire(import.meta.url)('node:net') as typeof import('node:net')).Server.prototype
    .close;
}

/**
 * The server a predecessor handed over under `name`, listening again with
 * `server` (a new net.Server by default), or null when none was.
 * @throws LuoError as retrieveServer when the handed-over socket is not what was preserved.
 */
export function takeServer(lu: LiveUpdate, name: string, server?: Server): Server | null {
  let session: LuoSession;
  try {
    session = lu.retrieveSession(serverSession(name));
  } catch {
    return null;
  }
  const out = session.retrieveServer(TOKEN, server);
  session.finish();
  return out;
}

/** @throws KexecError EINVAL for options upgrade cannot use (checked before anything is loaded). */
function checkUpgradeOptions(o: UpgradeOptions): void {
  const bad = (what: string, v: unknown): never => {
    throw new KexecError('EINVAL', `upgrade: ${what}, got ${show(v)}`);
  };
  if (typeof o !== 'object' || o === null) bad('options must be an object', o);
  const { servers, beforeExec, drainTimeoutMs } = o;
  if (servers !== undefined) {
    if (typeof servers !== 'object' || servers === null) bad('servers must be an object', servers);
    for (const [name, s] of Object.entries(servers)) {
      if (typeof s !== 'object' || s === null || typeof (s as Server).address !== 'function')
        bad(`servers.${name} must be a net.Server`, s);
    }
  }
  if (beforeExec !== undefined) {
    if (!Array.isArray(beforeExec) || !beforeExec.every((h) => typeof h === 'function'))
      bad('beforeExec must be an array of functions', beforeExec);
  }
  if (
    drainTimeoutMs !== undefined &&
    (typeof drainTimeoutMs !== 'number' || !(drainTimeoutMs >= 0))
  )
    bad('drainTimeoutMs must be a number of ms >= 0', drainTimeoutMs);
}
