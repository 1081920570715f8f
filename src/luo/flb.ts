/**
 * File-lifecycle-bound state (FLB), after Linux's luo_flb.c: state shared by
 * several preserved files (all the descriptors of one kind, say), linked to
 * their handlers. It is created when the first of those files is preserved
 * and released when the last is unpreserved; in the successor it is rebuilt
 * on first use (or when the last file finishes) and finished with the last
 * file. Counts are across every session.
 *
 *   running:   preserve (first file) -> [save at the exec] | unpreserve (last file)
 *   successor: retrieve (first get, or last finish) -> finish (last file)
 *
 * One difference from the kernel, on purpose: the kernel's .preserve()
 * returns a u64 handle at once (an address in preserved memory, updated in
 * place); here the state travels in the handover FDT, so `save` is asked for
 * its bytes when the handover is written, after every file is frozen.
 */
import { checkOps } from './_ops.js';
import { LUO_FLB_COMPATIBLE_MAX, LUO_FLB_MAX } from './abi.js';
import { LuoError } from './errors.js';
import type { FileHandler } from './handlers.js';

/** What LUO's `struct liveupdate_flb` (and its ops) is to the kernel. */
export interface FileLifecycleBound<O = unknown> {
  /** Unique among the FLBs of a LiveUpdate, e.g. "app,tls-keys-v1" (1..64 printable ASCII). */
  readonly compatible: string;
  /** The first file linked to it is being preserved: make the live object. Throwing refuses that file. */
  preserve(): O;
  /** The last such file was unpreserved before any exec. */
  unpreserve(obj: O): void;
  /** The exec is about to happen: the state to hand over. */
  save(obj: O): Uint8Array;
  /** In the successor: rebuild the live object from what `save` returned. */
  retrieve(data: Uint8Array): O;
  /** In the successor: the last such file has finished. */
  finish(obj: O): void;
}

/** One FLB as it crosses the exec. */
export interface HandoverFlb {
  compatible: string;
  data: Uint8Array;
  /** Files linked to it at the exec: how many finishes end it in the successor. */
  count: number;
}

interface Outgoing {
  count: number;
  obj: unknown;
}

interface Incoming {
  data: Uint8Array;
  count: number;
  retrieved: boolean;
  finished: boolean;
  obj: unknown;
}

/** @throws LuoError EINVAL when `flb` lacks an op or has a bad compatible */
function checkFlb(flb: FileLifecycleBound): void {
  checkOps(flb, 'FLB', LUO_FLB_COMPATIBLE_MAX, [
    'preserve',
    'unpreserve',
    'save',
    'retrieve',
    'finish',
  ]);
}

/**
 * The FLBs of one LiveUpdate: which handlers each is linked to, its outgoing
 * count and object, and what the predecessor handed over.
 */
export class FlbRegistry {
  /** Handler -> its FLBs, in registration order. */
  readonly #links = new Map<FileHandler, FileLifecycleBound[]>();
  /** Compatible -> the FLB registered under it and how many handlers link it. */
  readonly #registered = new Map<string, { flb: FileLifecycleBound; users: number }>();
  readonly #outgoing = new Map<FileLifecycleBound, Outgoing>();
  readonly #incoming = new Map<string, Incoming>();

  constructor(incoming: readonly HandoverFlb[] = []) {
    for (const f of incoming) {
      this.#incoming.set(f.compatible, {
        data: f.data,
        count: f.count,
        retrieved: false,
        finished: false,
        obj: undefined,
      });
    }
  }

  /**
   * liveupdate_register_flb(): files of `handler` now depend on `flb`.
   * @throws LuoError EINVAL bad FLB; EEXIST linked already, or another FLB has its
   *   compatible; ENOSPC more than LUO_FLB_MAX FLBs
   */
  register(handler: FileHandler, flb: FileLifecycleBound): void {
    checkFlb(flb);
    const links = this.#links.get(handler) ?? [];
    if (links.includes(flb)) {
      throw new LuoError(
        'EEXIST',
        `FLB "${flb.compatible}" is already linked to ${handler.compatible}`,
      );
    }
    const known = this.#registered.get(flb.compatible);
    if (known && known.flb !== flb) {
      throw new LuoError('EEXIST', `another FLB is registered as "${flb.compatible}"`);
    }
    if (!known && this.#registered.size >= LUO_FLB_MAX) {
      throw new LuoError('ENOSPC', `at most ${LUO_FLB_MAX} FLBs`);
    }
    this.#registered.set(flb.compatible, { flb, users: (known?.users ?? 0) + 1 });
    this.#links.set(handler, [...links, flb]);
  }

  /** liveupdate_unregister_flb(). @throws LuoError ENOENT not linked */
  unregister(handler: FileHandler, flb: FileLifecycleBound): void {
    const links = this.#links.get(handler) ?? [];
    if (!links.includes(flb)) {
      throw new LuoError(
        'ENOENT',
        `FLB "${flb?.compatible}" is not linked to ${handler.compatible}`,
      );
    }
    this.#links.set(
      handler,
      links.filter((f) => f !== flb),
    );
    const r = this.#registered.get(flb.compatible);
    if (r && --r.users === 0) this.#registered.delete(flb.compatible);
  }

  /** Whether any FLB is linked to `handler`. */
  linked(handler: FileHandler): boolean {
    return (this.#links.get(handler)?.length ?? 0) > 0;
  }

  /**
   * A file of `handler` is being preserved: each linked FLB counts it, the
   * first file preserving the FLB. All or nothing.
   */
  filePreserved(handler: FileHandler): void {
    const done: FileLifecycleBound[] = [];
    try {
      for (const flb of this.#links.get(handler) ?? []) {
        const o = this.#outgoing.get(flb);
        if (o) o.count++;
        else this.#outgoing.set(flb, { count: 1, obj: flb.preserve() });
        done.push(flb);
      }
    } catch (err) {
      for (const flb of done.reverse()) this.#drop(flb);
      throw err;
    }
  }

  /** A file of `handler` was unpreserved: the last one unpreserves each linked FLB. */
  fileUnpreserved(handler: FileHandler): void {
    for (const flb of [...(this.#links.get(handler) ?? [])].reverse()) this.#drop(flb);
  }

  #drop(flb: FileLifecycleBound): void {
    const o = this.#outgoing.get(flb);
    if (!o) return;
    if (--o.count > 0) return;
    this.#outgoing.delete(flb);
    flb.unpreserve(o.obj);
  }

  /** liveupdate_flb_get_outgoing(): the live object, or undefined while no linked file is preserved. */
  getOutgoing<O>(flb: FileLifecycleBound<O>): O | undefined {
    return this.#outgoing.get(flb as FileLifecycleBound)?.obj as O | undefined;
  }

  /**
   * liveupdate_flb_get_incoming(): the object rebuilt from the predecessor's
   * state, retrieved on first use and the same object after.
   * @throws LuoError ENODATA finished (or nothing handed over); ENOENT the
   *   handover has no FLB of that compatible; whatever `retrieve` throws
   */
  getIncoming<O>(flb: FileLifecycleBound<O>): O {
    checkFlb(flb as FileLifecycleBound);
    const i = this.#incoming.get(flb.compatible);
    if (this.#incoming.size === 0) throw new LuoError('ENODATA', 'no FLB was handed over');
    if (!i) throw new LuoError('ENOENT', `no FLB "${flb.compatible}" was handed over`);
    if (i.finished) throw new LuoError('ENODATA', `FLB "${flb.compatible}" is finished`);
    if (!i.retrieved) {
      i.obj = flb.retrieve(i.data);
      i.retrieved = true;
    }
    return i.obj as O;
  }

  /**
   * Before a session finishes files of these handlers: retrieves now every
   * FLB whose last file is among them, so that a failing retrieve refuses
   * the finish before anything is done.
   */
  prepareFinish(handlers: readonly FileHandler[]): void {
    const dec = new Map<FileLifecycleBound, number>();
    for (const h of handlers) {
      for (const flb of this.#links.get(h) ?? []) dec.set(flb, (dec.get(flb) ?? 0) + 1);
    }
    for (const [flb, n] of dec) {
      const i = this.#incoming.get(flb.compatible);
      if (i && !i.finished && !i.retrieved && i.count <= n) this.getIncoming(flb);
    }
  }

  /** A file of `handler` has finished: the last one finishes each linked FLB. */
  fileFinished(handler: FileHandler): void {
    for (const flb of [...(this.#links.get(handler) ?? [])].reverse()) {
      const i = this.#incoming.get(flb.compatible);
      if (!i || i.finished || --i.count > 0) continue;
      i.finished = true;
      const obj = i.obj;
      i.obj = undefined;
      // prepareFinish retrieved it; the check keeps a handler linked since from finishing garbage.
      if (i.retrieved) flb.finish(obj);
    }
  }

  /** The FLBs to hand over: those some preserved file still needs, with their saved state. */
  serialize(): HandoverFlb[] {
    return [...this.#outgoing].map(([flb, o]) => ({
      compatible: flb.compatible,
      data: flb.save(o.obj),
      count: o.count,
    }));
  }
}
