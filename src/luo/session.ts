/**
 * A LUO session: a named set of preserved descriptors, each under a u64
 * token. Outgoing sessions are filled by the running generation; incoming
 * ones come from the predecessor's handover and are emptied by retrieve and
 * finish, in any order.
 */
import { closeSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Server } from 'node:net';
import { show } from '../base/errors.js';
import { F_DUPFD_CLOEXEC, getLibc } from '../sys/libc.js';
import { checkFdNumber, fdFlags, fdStat, setFdFlags, withCloexec } from './_fd.js';
import {
  LUO_SESSION_NAME_MAX,
  LUO_TCP_LISTENER_COMPATIBLE,
  LUO_U64_MAX,
  LUO_UNIX_LISTENER_COMPATIBLE,
} from './abi.js';
import { LuoError } from './errors.js';
import type { FlbRegistry } from './flb.js';
import type { FileHandler, FileIdentity } from './handlers.js';
import type { HandoverFile } from './handover.js';
import { createMemfd } from './memfd.js';

/** A preserved (outgoing) or inherited (incoming) descriptor. */
export interface LuoFile {
  readonly token: bigint;
  readonly fd: number;
  readonly compatible: string;
  /** What the handler recorded (address, size, position...), as of the last freeze. */
  readonly data: FileIdentity;
  /** One line: "tcp 127.0.0.1:8080", "memfd:state (4096 bytes at 0)". */
  readonly description: string;
  /** Incoming only: handed to the program by retrieve. */
  readonly retrieved: boolean;
}

interface Entry {
  token: bigint;
  fd: number;
  handler: FileHandler;
  data: FileIdentity;
  /** Outgoing: F_GETFD flags saved by freeze (-1 when not frozen). Incoming: to restore at retrieve. */
  fdFlags: number;
  /** The session made this descriptor (preserveServer's dup) and closes it when done. */
  owned: boolean;
  retrieved: boolean;
}

/** What a session needs from its LiveUpdate. @internal */
export interface SessionOwner {
  readonly frozen: boolean;
  readonly handlers: readonly FileHandler[];
  /** The session and token holding `fd`, if any. */
  fdHolder(fd: number): string | undefined;
  claimFd(fd: number, holder: string): void;
  releaseFd(fd: number): void;
  dropSession(session: LuoSession): void;
  /** The file-lifecycle-bound state of the handlers (flb.ts). */
  readonly flbs: FlbRegistry;
}

export type SessionDirection = 'outgoing' | 'incoming';

/** A token as a u64. @throws LuoError EINVAL not an integer in 0..2^64-1 */
export function checkToken(token: unknown): bigint {
  let t: bigint | undefined;
  if (typeof token === 'bigint') t = token;
  else if (typeof token === 'number' && Number.isSafeInteger(token)) t = BigInt(token);
  if (t === undefined || t < 0n || t > LUO_U64_MAX) {
    throw new LuoError('EINVAL', `bad token ${show(token)}: not an integer in 0..2^64-1`);
  }
  return t;
}

/** @throws LuoError EINVAL not a string of 1..64 bytes of UTF-8 */
export function checkSessionName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new LuoError('EINVAL', 'a session name must be a non-empty string');
  }
  const n = Buffer.byteLength(name);
  if (n > LUO_SESSION_NAME_MAX || name.includes('\0')) {
    throw new LuoError(
      'EINVAL',
      `session name of ${n} bytes: at most ${LUO_SESSION_NAME_MAX} bytes, no NUL`,
    );
  }
}

/** A new net.Server; node:net is loaded on first use (a dozen internal modules a successor without sockets never needs). */
function createServer(): Server {
  const net = createRequire(import.meta.url)('node:net') as typeof import('node:net');
  return net.createServer();
}

/** The descriptor under a listening net.Server. @throws LuoError EINVAL not listening */
function serverFd(server: Server): number {
  if (typeof server !== 'object' || server === null)
    throw new LuoError('EINVAL', `a server is a net.Server, got ${show(server)}`);
  const handle = (server as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  if (!server.listening || typeof fd !== 'number' || fd < 0) {
    throw new LuoError('EINVAL', 'the server is not listening on a descriptor of its own');
  }
  return fd;
}

export class LuoSession {
  readonly #owner: SessionOwner;
  readonly #files = new Map<bigint, Entry>();
  #done = false;

  /** @internal Created by LiveUpdate.createSession and LiveUpdate.fromHandover. */
  constructor(
    owner: SessionOwner,
    readonly name: string,
    readonly direction: SessionDirection,
    incoming: readonly HandoverFile[] = [],
  ) {
    this.#owner = owner;
    for (const f of incoming) {
      this.#files.set(f.token, { ...f, owned: false, retrieved: false });
      owner.claimFd(f.fd, this.#holder(f.token));
      markCloseOnExec(f.fd, f.data);
    }
  }

  /** Closed (outgoing) or finished (incoming). */
  get done(): boolean {
    return this.#done;
  }

  #holder(token: bigint): string {
    return `session "${this.name}" token ${token}`;
  }

  #check(direction: SessionDirection): void {
    if (this.#done) throw new LuoError('EINVAL', `session "${this.name}" is closed`);
    if (this.direction !== direction) {
      throw new LuoError('EINVAL', `session "${this.name}" is ${this.direction}`);
    }
  }

  #entry(token: unknown): Entry {
    const t = checkToken(token);
    const e = this.#files.get(t);
    if (e === undefined) throw new LuoError('ENOENT', `no token ${t} in session "${this.name}"`);
    return e;
  }

  /** The files, in preservation (or handover) order. */
  files(): LuoFile[] {
    return [...this.#files.values()].map((e) => ({
      token: e.token,
      fd: e.fd,
      compatible: e.handler.compatible,
      data: e.data,
      description: e.handler.describe(e.data),
      retrieved: e.retrieved,
    }));
  }

  /**
   * Preserve `fd` under `token` until the exec. The descriptor stays the
   * caller's to use (and must stay open); freeze makes it inheritable.
   * @throws LuoError EINVAL bad fd (not a number, not open) or token; incoming or closed session
   * @throws LuoError EEXIST the token is taken in this session
   * @throws LuoError EBUSY the fd is preserved already (any session), or the LiveUpdate is frozen
   * @throws LuoError ENOENT no handler for this kind of descriptor
   */
  preserveFd(fd: number, token: bigint | number): void {
    this.#preserve(fd, token, false);
  }

  #preserve(fd: number, token: bigint | number, owned: boolean): void {
    this.#check('outgoing');
    checkFdNumber(fd);
    const t = checkToken(token);
    if (this.#owner.frozen) throw new LuoError('EBUSY', 'frozen: unfreeze before preserving');
    if (this.#files.has(t)) {
      throw new LuoError('EEXIST', `token ${t} is already used in session "${this.name}"`);
    }
    if (fdFlags(fd) === null) throw new LuoError('EINVAL', `fd ${fd} is not open`);
    const holder = this.#owner.fdHolder(fd);
    if (holder !== undefined) throw new LuoError('EBUSY', `fd ${fd} is already in ${holder}`);
    const handler = this.#owner.handlers.find((h) => h.canPreserve(fd));
    if (handler === undefined) {
      throw new LuoError(
        'ENOENT',
        `no handler can preserve fd ${fd} (not a listening socket, memfd or regular file)`,
      );
    }
    // The shared state first, so the handler's preserve can use it (getOutgoing).
    this.#owner.flbs.filePreserved(handler);
    let data: FileIdentity;
    try {
      data = handler.preserve(fd);
    } catch (e) {
      this.#owner.flbs.fileUnpreserved(handler);
      throw e;
    }
    this.#files.set(t, { token: t, fd, handler, data, fdFlags: -1, owned, retrieved: false });
    this.#owner.claimFd(fd, this.#holder(t));
  }

  /**
   * Preserve the listening socket of `server` (TCP or Unix) under `token`.
   * The session preserves its own duplicate, so the program may close the
   * server before the exec (to drain connections): the socket stays open,
   * listening, and queues new connections for the successor. Except a Unix
   * server bound to a path: closing it unlinks the path (libuv does), so
   * leave it open and let the exec drop it (abstract names are unaffected).
   * @returns the duplicate's descriptor number (the one the successor gets)
   * @throws LuoError EINVAL the server is not listening; and as preserveFd
   */
  preserveServer(server: Server, token: bigint | number): number {
    this.#check('outgoing');
    const t = checkToken(token);
    if (this.#files.has(t)) {
      throw new LuoError('EEXIST', `token ${t} is already used in session "${this.name}"`);
    }
    const fd = getLibc().fcntl(serverFd(server), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) throw new LuoError('EINVAL', `cannot duplicate the server's descriptor`);
    try {
      this.#preserve(fd, t, true);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    return fd;
  }

  /**
   * Stop preserving a socket preserveServer kept (an exec that did not
   * happen) and listen on it again with `server`: the socket never closed,
   * so connections that came meanwhile are served. The session's duplicate
   * becomes the server's.
   * @returns `server`, listening again ('listening' follows)
   * @throws LuoError ENOENT unknown token; EINVAL not a socket preserveServer
   *   kept, an incoming or closed session
   */
  unpreserveServer(token: bigint | number, server: Server = createServer()): Server {
    this.#check('outgoing');
    const e = this.#entry(token);
    const c = e.handler.compatible;
    if (!e.owned || (c !== LUO_TCP_LISTENER_COMPATIBLE && c !== LUO_UNIX_LISTENER_COMPATIBLE)) {
      throw new LuoError('EINVAL', `${this.#holder(e.token)} is not a socket preserveServer kept`);
    }
    const fd = e.fd;
    this.#unpreserve({ ...e, owned: false });
    this.#files.delete(e.token);
    server.listen({ fd });
    return server;
  }

  /**
   * Create a memfd of `size` bytes and preserve it under `token`.
   * @returns its descriptor (the caller's to read and write)
   * @throws LuoError EINVAL, EEXIST, EBUSY as preserveFd
   */
  preserveMemfd(name: string, token: bigint | number, size = 0): number {
    this.#check('outgoing');
    checkToken(token);
    const fd = createMemfd(name, size);
    try {
      this.preserveFd(fd, token);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    return fd;
  }

  /**
   * Stop preserving `token`: its fd gets its flags back (if frozen) and is
   * the caller's again, or is closed if the session made it (preserveServer).
   * @throws LuoError ENOENT unknown token; EINVAL bad token, incoming or closed session
   */
  unpreserveFd(token: bigint | number): void {
    this.#check('outgoing');
    this.#unpreserve(this.#entry(token));
  }

  #unpreserve(e: Entry): void {
    if (e.fdFlags >= 0) setFdFlags(e.fd, e.fdFlags);
    e.handler.unpreserve(e.fd, e.data);
    this.#owner.flbs.fileUnpreserved(e.handler);
    this.#files.delete(e.token);
    this.#owner.releaseFd(e.fd);
    if (e.owned) closeSync(e.fd);
  }

  /** @internal Freeze every file; on a failure unfreeze those done and return it. */
  freezeFiles(): LuoError | null {
    const done: Entry[] = [];
    for (const e of this.#files.values()) {
      const err = freezeOne(e);
      if (err !== null) {
        for (const d of done) unfreezeOne(d);
        return err;
      }
      done.push(e);
    }
    return null;
  }

  /** @internal */
  unfreezeFiles(): void {
    for (const e of this.#files.values()) unfreezeOne(e);
  }

  /** @internal The files for the handover (after freeze). */
  handoverFiles(): HandoverFile[] {
    return [...this.#files.values()].map((e) => ({
      token: e.token,
      fd: e.fd,
      fdFlags: e.fdFlags,
      handler: e.handler,
      data: e.data,
    }));
  }

  /**
   * Take the inherited descriptor under `token`, after checking it is still
   * what was preserved; it gets back the flags it had before the freeze.
   * @throws LuoError ENOENT unknown token; EBUSY retrieved already
   * @throws LuoError ESRCH the descriptor is closed or another file
   * @throws LuoError EINVAL bad token, outgoing or finished session
   */
  retrieveFile(token: bigint | number): LuoFile {
    this.#check('incoming');
    const e = this.#entry(token);
    if (e.retrieved) throw new LuoError('EBUSY', `${this.#holder(e.token)} is already retrieved`);
    e.data = e.handler.retrieve(e.fd, e.data);
    setFdFlags(e.fd, e.fdFlags);
    e.retrieved = true;
    this.#owner.releaseFd(e.fd);
    return this.files().find((f) => f.token === e.token)!;
  }

  /** retrieveFile(token).fd. @throws LuoError as retrieveFile */
  retrieveFd(token: bigint | number): number {
    return this.retrieveFile(token).fd;
  }

  /**
   * Retrieve a listening socket and listen on it again with `server`
   * (default a new net.Server; an http.Server works too). The socket never
   * closed, so no connection was refused in between; 'listening' follows.
   * @throws LuoError EINVAL the token is not a listening socket; and as retrieveFile
   */
  retrieveServer(token: bigint | number, server: Server = createServer()): Server {
    this.#check('incoming');
    const e = this.#entry(token);
    const c = e.handler.compatible;
    if (c !== LUO_TCP_LISTENER_COMPATIBLE && c !== LUO_UNIX_LISTENER_COMPATIBLE) {
      throw new LuoError('EINVAL', `${this.#holder(e.token)} is ${c}, not a listening socket`);
    }
    const fd = this.retrieveFd(token);
    server.listen({ fd });
    return server;
  }

  /**
   * Incoming: the program has taken what it wants; every descriptor not
   * retrieved is closed (if it is still the preserved file; otherwise it is
   * left alone) and the session is gone. First every handler may refuse
   * (canFinish) and every FLB whose last file this is gets retrieved: a
   * refusal or a failing retrieve changes nothing, so finish can be called
   * again later. Outgoing: nothing to do.
   * @throws LuoError EINVAL finished already; EBUSY a handler cannot finish yet;
   *   whatever an FLB's retrieve throws
   */
  finish(): void {
    if (this.#done) throw new LuoError('EINVAL', `session "${this.name}" is finished`);
    if (this.direction === 'outgoing') return;
    for (const e of this.#files.values()) {
      if (e.handler.canFinish && !e.handler.canFinish(e.fd, e.data, e.retrieved)) {
        throw new LuoError(
          'EBUSY',
          `${this.#holder(e.token)} (${e.handler.describe(e.data)}) cannot finish yet`,
        );
      }
    }
    this.#owner.flbs.prepareFinish([...this.#files.values()].map((e) => e.handler));
    for (const e of this.#files.values()) {
      if (!e.retrieved) {
        let same = true;
        try {
          e.handler.retrieve(e.fd, e.data);
        } catch {
          same = false;
        }
        this.#owner.releaseFd(e.fd);
        if (same) closeSync(e.fd);
      }
      e.handler.finish(e.fd, e.data, e.retrieved);
      this.#owner.flbs.fileFinished(e.handler);
    }
    this.#done = true;
    this.#owner.dropSession(this);
  }

  /**
   * Outgoing: unpreserve every file and drop the session. Incoming: finish().
   * Closing twice does nothing.
   */
  close(): void {
    if (this.#done) return;
    if (this.direction === 'incoming') {
      this.finish();
      return;
    }
    for (const e of [...this.#files.values()]) this.#unpreserve(e);
    this.#done = true;
    this.#owner.dropSession(this);
  }
}

/**
 * An inherited descriptor came without FD_CLOEXEC (that is how it crossed the
 * exec); until the program retrieves it, it is set again, so a child spawned
 * meanwhile does not inherit it. Only when it is still the preserved open
 * file (same st_dev and st_ino, which every file node carries): a descriptor
 * that is something else now is not the session's to touch. Needs no
 * handler, so a successor does it at boot, before its handlers are registered.
 */
export function markCloseOnExec(fd: number, id: FileIdentity): void {
  const st = fdStat(fd);
  if (st === null || st.dev !== id.dev || st.ino !== id.ino) return;
  const flags = fdFlags(fd);
  if (flags !== null) setFdFlags(fd, withCloexec(flags, true));
}

/** Check the file, record its state, clear FD_CLOEXEC. Returns the failure, if any. */
function freezeOne(e: Entry): LuoError | null {
  const flags = fdFlags(e.fd);
  if (flags === null) return new LuoError('EAGAIN', `fd ${e.fd} (token ${e.token}) is closed`);
  try {
    e.data = e.handler.freeze(e.fd, e.data);
  } catch (err) {
    if (err instanceof LuoError) return new LuoError('EAGAIN', err.message);
    throw err;
  }
  if (!setFdFlags(e.fd, withCloexec(flags, false))) {
    return new LuoError('EAGAIN', `fd ${e.fd} (token ${e.token}): F_SETFD failed`);
  }
  e.fdFlags = flags;
  return null;
}

function unfreezeOne(e: Entry): void {
  if (e.fdFlags < 0) return;
  setFdFlags(e.fd, e.fdFlags);
  e.handler.unfreeze(e.fd, e.data);
  e.fdFlags = -1;
}
