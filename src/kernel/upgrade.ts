/**
 * An upgrade as one asynchronous call (kernel.upgrade): load the successor,
 * drop the device's mappings ahead of the exec while still serving, keep the
 * listening servers (each in its own LUO session), drain them, run the
 * program's before-exec hooks (flush logs, close databases), exec. On any
 * failure before the point of no return the servers listen again on their
 * own sockets, which never closed, and the error is thrown: this generation
 * goes on serving. The successor takes each server back by name.
 */
import type { Server } from 'node:net';
import { show } from '../base/errors.js';
import { KexecError } from '../kexec/errors.js';
import type { KexecLoadOptions } from '../kexec/kexec.js';
import type { LiveUpdate } from '../luo/liveupdate.js';
import type { LuoSession } from '../luo/session.js';
import { drain } from './drain.js';

export interface UpgradeOptions extends KexecLoadOptions {
  /** Listening servers (net.Server, http.Server) to hand over, by a name the successor takes them back with. */
  servers?: Readonly<Record<string, Server>>;
  /** Run in order after the servers are drained, right before the exec; one that throws cancels the upgrade. */
  beforeExec?: readonly (() => unknown)[];
  /** How long open connections may take to finish before they are closed (ms, default 5000). */
  drainTimeoutMs?: number;
  /**
   * How long a preloaded successor (`successor: 'preload'`) may take to
   * start up, while this generation serves on, before the upgrade gives up
   * (ms, default 30000; KexecError ETIMEDOUT, the successor is stopped).
   */
  readyTimeoutMs?: number;
}

/** What upgrade needs of a generation. */
export interface UpgradeHost<K> {
  readonly liveupdate: LiveUpdate;
  load(options: KexecLoadOptions): void;
  /** Resolves when the loaded successor is ready to take over (Kexec.ready). */
  ready?(timeoutMs?: number): Promise<void>;
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
  const { servers = {}, beforeExec = [], drainTimeoutMs = 5000, readyTimeoutMs, ...load } = options;
  host.load(load);
  const kept: { name: string; server: Server; session: LuoSession }[] = [];
  try {
    // A preloaded successor starts up while this generation serves: not in the downtime.
    await host.ready?.(readyTimeoutMs);
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
  const { readyTimeoutMs } = o;
  if (
    readyTimeoutMs !== undefined &&
    (typeof readyTimeoutMs !== 'number' || !(readyTimeoutMs >= 0))
  )
    bad('readyTimeoutMs must be a number of ms >= 0', readyTimeoutMs);
}
