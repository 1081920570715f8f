import { SETUP } from '../boot/abi.js';
import type { HandoverPart, HandoverSubsystem } from '../boot/handover.js';
import { loadIdentity } from './_identity.js';
import { checkOps } from './_ops.js';
import { LUO_HANDLER_COMPATIBLE_MAX } from './abi.js';
import { LuoError } from './errors.js';
import { defaultHandlers, type FileHandler } from './handlers.js';
import { bindHandlers, readHandover, type UnboundFile, type UnboundHandover } from './handover.js';
import { LiveUpdate } from './liveupdate.js';
import { markCloseOnExec } from './session.js';

export interface KernelLiveUpdateOptions {
  /** Why live update is off (a crash kernel), if it is. */
  disabled?: string;
  /**
   * Where a preserved descriptor is in this process, when not at the number
   * it had in the predecessor: a preloaded successor got it by SCM_RIGHTS
   * where that number was taken, or a service manager's fd store passed it
   * back (LISTEN_FDS). undefined: at the same number.
   */
  inheritedFd?: (session: string, token: bigint, fd: number) => number | undefined;
}

/** One session as status shows it. */
export interface LuoSessionSummary {
  name: string;
  direction: string;
  files: { token: bigint; kind: string; description: string }[];
}

/**
 * The Live Update Orchestrator of one generation (`kernel.liveupdate`),
 * opened on first use like /dev/liveupdate. Its sessions travel in the boot
 * block (setup_data SETUP.LUO): descriptors need no preserved memory, only
 * their description, and survive the in-place execve because freeze makes
 * them inheritable. So, unlike Linux's, it stays on with `kho=off` and when
 * KHO revival is refused (abi.ts says why).
 *
 * File handlers of the program's own (liveupdate_register_file_handler())
 * are registered before the first use; the handover is read at boot but its
 * files are given to their handlers only then, so a successor's handlers
 * serve both the files it inherits and those it preserves.
 */
export class KernelLiveUpdate implements HandoverSubsystem {
  readonly name = 'luo';
  #lu: LiveUpdate | null = null;
  /** The predecessor's sessions, read at boot, or why they could not be. */
  #incoming: UnboundHandover | { error: unknown } | null = null;
  /** Handlers registered by the program, asked before the default ones. */
  readonly #handlers: FileHandler[] = [];
  readonly #disabled: string | undefined;
  #froze = false;

  /**
   * Reads the incoming sessions at once and makes their descriptors
   * close-on-exec (they crossed the exec without the flag), not at the
   * orchestrator's first use: a child the successor spawns before that must
   * not inherit them. A corrupt handover is reported by get().
   */
  constructor(incoming: Uint8Array | undefined, options: KernelLiveUpdateOptions = {}) {
    this.#disabled = options.disabled;
    if (incoming === undefined || options.disabled) return;
    try {
      this.#incoming = readHandover(incoming);
    } catch (error) {
      this.#incoming = { error };
      return;
    }
    for (const s of this.#incoming.sessions) {
      for (const f of s.files) {
        f.fd = options.inheritedFd?.(s.name, f.token, f.fd) ?? f.fd;
        markInherited(f);
      }
    }
  }

  /**
   * liveupdate_register_file_handler(): files `handler` can preserve are
   * preserved through it (it is asked before the default handlers), and the
   * predecessor's files of its compatible are given to it. Register before
   * the first use of the orchestrator, in every generation.
   * @throws LuoError ENODEV live update unavailable; EBUSY the orchestrator is
   *   open already; EEXIST a handler has that compatible; EINVAL not a handler
   */
  registerHandler(handler: FileHandler): void {
    if (this.#disabled)
      throw new LuoError('ENODEV', `live update is not available: ${this.#disabled}`);
    if (this.#lu) {
      throw new LuoError(
        'EBUSY',
        `register the file handler "${handler?.compatible}" before the first use of kernel.liveupdate`,
      );
    }
    checkHandler(handler);
    if (this.#allHandlers().some((h) => h.compatible === handler.compatible)) {
      throw new LuoError('EEXIST', `a file handler "${handler.compatible}" is registered`);
    }
    this.#handlers.push(handler);
  }

  #allHandlers(): FileHandler[] {
    return [...this.#handlers, ...defaultHandlers()];
  }

  /**
   * The orchestrator; the predecessor's sessions are its incoming sessions.
   * @throws LuoError ENODEV in a crash kernel; EBUSY when another is open in this process;
   *   EFAULT when the handover is corrupt, or a file in it has no registered handler
   *   (register it and ask again).
   */
  get(): LiveUpdate {
    if (this.#disabled)
      throw new LuoError('ENODEV', `live update is not available: ${this.#disabled}`);
    if (!this.#lu) {
      const incoming = this.#incoming;
      if (incoming !== null && 'error' in incoming) throw incoming.error;
      const handlers = this.#allHandlers();
      this.#lu = incoming
        ? LiveUpdate.fromSessions(
            bindHandlers(incoming.sessions, handlers),
            handlers,
            incoming.flbs,
          )
        : new LiveUpdate({ handlers });
      this.#incoming = null;
    }
    return this.#lu;
  }

  /**
   * The sessions and their descriptors, for status, without opening the
   * orchestrator: the open one's, else the predecessor's not yet taken, else
   * null (nothing to show, or live update unavailable).
   */
  summary(): LuoSessionSummary[] | null {
    if (this.#lu) {
      return this.#lu.sessions().map((s) => ({
        name: s.name,
        direction: s.direction,
        files: s.files().map((f) => ({
          token: f.token,
          kind: f.compatible,
          description: f.description,
        })),
      }));
    }
    const incoming = this.#incoming;
    if (incoming === null || 'error' in incoming) return null;
    const handlers = this.#allHandlers();
    return incoming.sessions.map((s) => ({
      name: s.name,
      direction: 'incoming',
      files: s.files.map((f) => ({
        token: f.token,
        kind: f.compatible,
        description: describeUnbound(f, handlers),
      })),
    }));
  }

  /** Descriptor numbers the next exec must keep open. */
  preservedFds(): number[] {
    if (!this.#lu) return [];
    return this.#lu
      .sessions()
      .flatMap((s) => (s.direction === 'outgoing' ? s.files().map((f) => f.fd) : []));
  }

  /** The same, with the session and token each is preserved under. */
  preservedFiles(): { session: string; token: bigint; fd: number }[] {
    if (!this.#lu) return [];
    return this.#lu
      .sessions()
      .flatMap((s) =>
        s.direction === 'outgoing'
          ? s.files().map((f) => ({ session: s.name, token: f.token, fd: f.fd }))
          : [],
      );
  }

  freeze(): HandoverPart {
    const lu = this.#lu;
    if (!lu || lu.sessions().every((s) => s.direction !== 'outgoing')) return {};
    lu.freeze();
    this.#froze = true;
    return { setupData: [{ type: SETUP.LUO, data: lu.serialize() }] };
  }

  unfreeze(): void {
    if (this.#froze && this.#lu?.frozen) this.#lu.unfreeze();
    this.#froze = false;
  }

  /** The successor took over: let go without touching descriptors. */
  handOver(): void {
    this.#lu?.handOver();
    this.#lu = null;
  }
}

/** Sets FD_CLOEXEC on an inherited descriptor that is still its file node's open file. */
function markInherited(f: UnboundFile): void {
  let id: ReturnType<typeof loadIdentity>;
  try {
    id = loadIdentity(f.props);
  } catch {
    return; // A node without an identity: its handler's retrieve checks it.
  }
  markCloseOnExec(f.fd, id);
}

/** What the file's handler says of it, or its descriptor number when none is registered yet. */
function describeUnbound(f: UnboundFile, handlers: readonly FileHandler[]): string {
  const h = handlers.find((x) => x.compatible === f.compatible);
  if (h) {
    try {
      return h.describe(h.load(f.props));
    } catch {
      // A malformed node: get() will say so.
    }
  }
  return `fd ${f.fd}`;
}

/** @throws LuoError EINVAL when `h` lacks an op or has a bad compatible */
function checkHandler(h: FileHandler): void {
  checkOps(h, 'file handler', LUO_HANDLER_COMPATIBLE_MAX, [
    'canPreserve',
    'preserve',
    'unpreserve',
    'freeze',
    'unfreeze',
    'retrieve',
    'finish',
    'save',
    'load',
    'describe',
  ]);
}
