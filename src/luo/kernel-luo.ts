import { SETUP } from '../boot/abi.js';
import type { HandoverPart, HandoverSubsystem } from '../boot/handover.js';
import { LuoError } from './errors.js';
import { LiveUpdate } from './liveupdate.js';

/**
 * The Live Update Orchestrator of one generation (`kernel.liveupdate`),
 * opened on first use like /dev/liveupdate. Its sessions travel in the boot
 * block (setup_data SETUP.LUO): descriptors need no preserved memory, only
 * their description, and survive the in-place execve because freeze makes
 * them inheritable.
 */
export class KernelLiveUpdate implements HandoverSubsystem {
  readonly name = 'luo';
  #lu: LiveUpdate | null = null;
  #incoming: Uint8Array | null;
  readonly #disabled: string | undefined;
  #froze = false;

  constructor(incoming: Uint8Array | undefined, options: { disabled?: string } = {}) {
    this.#incoming = incoming ?? null;
    this.#disabled = options.disabled;
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
      this.#lu = this.#incoming ? LiveUpdate.fromHandover(this.#incoming) : new LiveUpdate();
      this.#incoming = null;
    }
    return this.#lu;
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
