import { SETUP } from '../boot/abi.js';
import type { HandoverPart, HandoverSubsystem } from '../boot/handover.js';
import { LuoError } from './errors.js';
import type { HandoverFlb } from './flb.js';
import { defaultHandlers, type FileHandler } from './handlers.js';
import { type HandoverSession, parseLiveUpdateHandover } from './handover.js';
import { LiveUpdate } from './liveupdate.js';
import { markCloseOnExec } from './session.js';

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
 */
export class KernelLiveUpdate implements HandoverSubsystem {
  readonly name = 'luo';
  #lu: LiveUpdate | null = null;
  /** The predecessor's sessions, read at boot, or why they could not be. */
  #incoming:
    | { sessions: HandoverSession[]; flbs: HandoverFlb[]; handlers: FileHandler[] }
    | { error: unknown }
    | null = null;
  readonly #disabled: string | undefined;
  #froze = false;

  /**
   * Reads the incoming sessions at once and makes their descriptors
   * close-on-exec (they crossed the exec without the flag), not at the
   * orchestrator's first use: a child the successor spawns before that must
   * not inherit them. A corrupt handover is reported by get().
   */
  constructor(incoming: Uint8Array | undefined, options: { disabled?: string } = {}) {
    this.#disabled = options.disabled;
    if (incoming === undefined || options.disabled) return;
    const handlers = defaultHandlers();
    try {
      const { sessions, flbs } = parseLiveUpdateHandover(incoming, handlers);
      for (const s of sessions) for (const f of s.files) markCloseOnExec(f);
      this.#incoming = { sessions, flbs, handlers };
    } catch (error) {
      this.#incoming = { error };
    }
  }

  /**
   * The orchestrator; the predecessor's sessions are its incoming sessions.
   * @throws LuoError ENODEV in a crash kernel; EBUSY when another is open in this process;
   *   EFAULT when the handover is corrupt.
   */
  get(): LiveUpdate {
    if (this.#disabled)
      throw new LuoError('ENODEV', `live update is not available: ${this.#disabled}`);
    if (!this.#lu) {
      const incoming = this.#incoming;
      if (incoming !== null && 'error' in incoming) throw incoming.error;
      this.#lu = incoming
        ? LiveUpdate.fromSessions(incoming.sessions, incoming.handlers, incoming.flbs)
        : new LiveUpdate();
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
    return incoming.sessions.map((s) => ({
      name: s.name,
      direction: 'incoming',
      files: s.files.map((f) => ({
        token: f.token,
        kind: f.handler.compatible,
        description: f.handler.describe(f.data),
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
