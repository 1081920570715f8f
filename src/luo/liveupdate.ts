/**
 * The Live Update Orchestrator of one generation: the process-level
 * /dev/liveupdate. A descriptor survives execve exactly when it lacks
 * FD_CLOEXEC, so preserving one means: record it at request time, clear
 * FD_CLOEXEC at freeze (just before the exec), set it back at unfreeze (the
 * exec did not happen) or unpreserve; the successor gets the serialized
 * sessions, checks each inherited descriptor and takes it by token.
 *
 *   running:   new LiveUpdate() -> createSession -> preserveFd ... -> freeze
 *              -> serialize -> (execve | unfreeze)
 *   successor: LiveUpdate.fromHandover(bytes) -> retrieveSession
 *              -> retrieveFd / retrieveServer ... -> finish
 *
 * State shared by several files (an FLB, flb.ts) is linked to their handler
 * with registerFlb, in both generations, before their files are preserved
 * or finished.
 *
 * Exclusive like /dev/liveupdate: one open LiveUpdate per process; close()
 * releases it.
 */
import { LuoError } from './errors.js';
import { type FileLifecycleBound, FlbRegistry, type HandoverFlb } from './flb.js';
import { defaultHandlers, type FileHandler } from './handlers.js';
import { buildHandover, type HandoverSession, parseLiveUpdateHandover } from './handover.js';
import { checkSessionName, LuoSession, type SessionOwner } from './session.js';

export interface LiveUpdateOptions {
  /** File handlers, asked in order (default: TCP, Unix listeners, memfd, regular file). */
  handlers?: readonly FileHandler[];
}

let openInstance: LiveUpdate | null = null;

export class LiveUpdate {
  readonly handlers: readonly FileHandler[];
  #outgoing = new Map<string, LuoSession>();
  #incoming = new Map<string, LuoSession>();
  /** Descriptors held by a session (outgoing preserved, incoming not yet retrieved). */
  #fds = new Map<number, string>();
  #frozen = false;
  #closed = false;
  readonly #owner: SessionOwner;
  #flbs = new FlbRegistry();

  /**
   * Open the orchestrator of this generation, with no incoming sessions.
   * @throws LuoError EBUSY another LiveUpdate of this process is open
   */
  constructor(options: LiveUpdateOptions = {}) {
    if (openInstance !== null) {
      throw new LuoError('EBUSY', 'a LiveUpdate is already open in this process (close it first)');
    }
    this.handlers = [...(options.handlers ?? defaultHandlers())];
    const fds = this.#fds;
    const self = this;
    this.#owner = {
      get flbs() {
        return self.#flbs;
      },
      get frozen() {
        return self.#frozen;
      },
      handlers: this.handlers,
      fdHolder: (fd) => fds.get(fd),
      claimFd: (fd, holder) => {
        fds.set(fd, holder);
      },
      releaseFd: (fd) => {
        fds.delete(fd);
      },
      dropSession: (s) => {
        const map = s.direction === 'outgoing' ? this.#outgoing : this.#incoming;
        if (map.get(s.name) === s) map.delete(s.name);
      },
    };
    openInstance = this;
  }

  /**
   * Open the orchestrator of a successor: the predecessor's serialized
   * sessions become incoming sessions. Each inherited descriptor that is still
   * the preserved file is made close-on-exec until it is retrieved; nothing
   * else is touched.
   * @throws LuoError EFAULT the bytes are not a valid handover (never another error on bad input)
   * @throws LuoError EBUSY another LiveUpdate is open
   */
  static fromHandover(bytes: Uint8Array, options: LiveUpdateOptions = {}): LiveUpdate {
    const handlers = [...(options.handlers ?? defaultHandlers())];
    const { sessions, flbs } = parseLiveUpdateHandover(bytes, handlers);
    return LiveUpdate.fromSessions(sessions, handlers, flbs);
  }

  /**
   * @internal fromHandover of sessions parseHandover read already (with
   * `handlers`): the kernel parses its handover at boot.
   * @throws LuoError EBUSY another LiveUpdate is open
   */
  static fromSessions(
    sessions: readonly HandoverSession[],
    handlers: readonly FileHandler[],
    flbs: readonly HandoverFlb[] = [],
  ): LiveUpdate {
    const lu = new LiveUpdate({ handlers });
    lu.#flbs = new FlbRegistry(flbs);
    for (const s of sessions) {
      lu.#incoming.set(s.name, new LuoSession(lu.#owner, s.name, 'incoming', s.files));
    }
    return lu;
  }

  get frozen(): boolean {
    return this.#frozen;
  }

  #checkOpen(): void {
    if (this.#closed) throw new LuoError('EINVAL', 'this LiveUpdate is closed');
  }

  /**
   * A new outgoing session.
   * @throws LuoError EINVAL bad name (empty, over 64 bytes); EEXIST the name is taken;
   *   EBUSY frozen
   */
  createSession(name: string): LuoSession {
    this.#checkOpen();
    checkSessionName(name);
    if (this.#frozen) throw new LuoError('EBUSY', 'frozen: unfreeze before creating a session');
    if (this.#outgoing.has(name)) throw new LuoError('EEXIST', `session "${name}" exists`);
    const s = new LuoSession(this.#owner, name, 'outgoing');
    this.#outgoing.set(name, s);
    return s;
  }

  /**
   * The incoming session of that name (the same object each time, until it is finished).
   * @throws LuoError ENOENT no such session, or finished; EINVAL bad name
   */
  retrieveSession(name: string): LuoSession {
    this.#checkOpen();
    checkSessionName(name);
    const s = this.#incoming.get(name);
    if (s === undefined) throw new LuoError('ENOENT', `no incoming session "${name}"`);
    return s;
  }

  /**
   * liveupdate_register_flb(): files of `handler` (one of this LiveUpdate's
   * handlers) now depend on `flb`. In the successor, register the same FLB
   * (same compatible) before its files' sessions finish.
   * @throws LuoError EINVAL unknown handler, bad FLB; EEXIST linked already or the
   *   compatible is taken; ENOSPC too many FLBs; EBUSY files of that handler are preserved
   */
  registerFlb<O>(handler: FileHandler, flb: FileLifecycleBound<O>): void {
    this.#checkFlbChange(handler);
    this.#flbs.register(handler, flb as FileLifecycleBound);
  }

  /**
   * liveupdate_unregister_flb().
   * @throws LuoError ENOENT not linked; EINVAL unknown handler; EBUSY files of that handler are preserved
   */
  unregisterFlb<O>(handler: FileHandler, flb: FileLifecycleBound<O>): void {
    this.#checkFlbChange(handler);
    this.#flbs.unregister(handler, flb as FileLifecycleBound);
  }

  /** A link changed while files count on it would unbalance the counts. */
  #checkFlbChange(handler: FileHandler): void {
    this.#checkOpen();
    if (!this.handlers.includes(handler)) {
      throw new LuoError('EINVAL', `${handler?.compatible} is not a handler of this LiveUpdate`);
    }
    // Incoming files are counted by the handover itself: linking in the successor is the normal order.
    const held = [...this.#outgoing.values()].some((s) =>
      s.files().some((f) => f.compatible === handler.compatible),
    );
    if (held || this.#frozen) {
      throw new LuoError(
        'EBUSY',
        `files of ${handler.compatible} are preserved: link FLBs before preserving them`,
      );
    }
  }

  /**
   * liveupdate_flb_get_outgoing(): the live object the first preserved file
   * made, or undefined while none of its files is preserved.
   */
  flbGetOutgoing<O>(flb: FileLifecycleBound<O>): O | undefined {
    this.#checkOpen();
    return this.#flbs.getOutgoing(flb);
  }

  /**
   * liveupdate_flb_get_incoming(): the object rebuilt from what the
   * predecessor saved (retrieve runs once, on first use).
   * @throws LuoError ENODATA nothing handed over, or finished; ENOENT no FLB of
   *   that compatible was handed over; whatever its retrieve throws
   */
  flbGetIncoming<O>(flb: FileLifecycleBound<O>): O {
    this.#checkOpen();
    return this.#flbs.getIncoming(flb);
  }

  /** Open sessions: outgoing ones, then incoming ones not finished. */
  sessions(): LuoSession[] {
    return [...this.#outgoing.values(), ...this.#incoming.values()];
  }

  /**
   * Just before the exec: check every preserved file and make its
   * descriptor inheritable. All or nothing.
   * @throws LuoError EAGAIN a file could not be frozen (closed, changed); every
   *   file frozen before it is unfrozen again. EINVAL frozen already.
   */
  freeze(): void {
    this.#checkOpen();
    if (this.#frozen) throw new LuoError('EINVAL', 'already frozen');
    const done: LuoSession[] = [];
    for (const s of this.#outgoing.values()) {
      const err = s.freezeFiles();
      if (err !== null) {
        for (const d of done) d.unfreezeFiles();
        throw new LuoError('EAGAIN', `freeze of session "${s.name}" failed: ${err.message}`);
      }
      done.push(s);
    }
    this.#frozen = true;
  }

  /** The exec did not happen: every descriptor gets its flags back. @throws LuoError EINVAL not frozen */
  unfreeze(): void {
    this.#checkOpen();
    if (!this.#frozen) throw new LuoError('EINVAL', 'not frozen');
    for (const s of this.#outgoing.values()) s.unfreezeFiles();
    this.#frozen = false;
  }

  /**
   * The outgoing sessions as the handover FDT (abi.ts), for the successor's fromHandover.
   * @throws LuoError EINVAL not frozen
   */
  serialize(): Uint8Array {
    this.#checkOpen();
    if (!this.#frozen) throw new LuoError('EINVAL', 'serialize needs a frozen LiveUpdate');
    return buildHandover(
      [...this.#outgoing.values()].map((s) => ({ name: s.name, files: s.handoverFiles() })),
      this.#flbs.serialize(),
    );
  }

  /**
   * The successor took over (on the emulated machine, where the predecessor's
   * objects live on in the same process): let go of the device without
   * touching a descriptor, which now belong to the successor.
   */
  handOver(): void {
    this.#closed = true;
    if (openInstance === this) openInstance = null;
  }

  /**
   * Release the device: unfreeze if frozen, close every outgoing session
   * (unpreserving its files); incoming sessions not finished are left as they
   * are (their descriptors stay open). Closing twice does nothing.
   */
  close(): void {
    if (this.#closed) return;
    if (this.#frozen) this.unfreeze();
    for (const s of [...this.#outgoing.values()]) s.close();
    this.#closed = true;
    if (openInstance === this) openInstance = null;
  }
}
