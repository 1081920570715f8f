import { messageOf, show } from '../base/errors.js';
import type { PhysRange } from '../base/range.js';
import { SETUP } from '../boot/abi.js';
import { encodeBootBlock, type SetupData } from '../boot/bootblock.js';
import type { HandoverPart, HandoverSubsystem, SegmentArena } from '../boot/handover.js';
import { type BootCounting, encodeKexecMetadata } from '../boot/kexec-metadata.js';
import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import type { MemoryMap } from '../memory/memmap.js';
import type { MemoryRange } from '../memory/memmap-types.js';
import { randomBytes } from '../memory/random.js';
import type { BuddyAllocator } from '../mm/buddy.js';
import { KexecError } from './errors.js';
import { locateMemHole, pagesFor } from './placement.js';

/** What `kexec load` is given. */
export interface KexecLoadOptions {
  /** The successor's command line; the running one's when absent. */
  cmdline?: string;
  /** Extra room kept in the boot block segment for handover data added at exec. */
  reserveBytes?: number;
  /** The successor program, for a real process (the running one's when absent). */
  program?: string;
  /** Its arguments, argv[1..]. */
  argv?: readonly string[];
  /** Its environment (the running one's when absent). */
  env?: Readonly<Record<string, string>>;
  /**
   * How the successor starts (real processes): `in-place` (default) execs it
   * in this process at exec; `preload` starts it now, ready to take over at
   * exec; `restart` makes exec commit the handover and exit this process
   * cleanly, and the next process to boot the device (started by a
   * supervisor: systemd, pm2, a container runtime) boots as the successor.
   */
  successor?: SuccessorStart;
  /** Same as `successor: 'preload'`. */
  preload?: boolean;
  /**
   * A/B boot counting: the successor boots on trial and, if it fails every
   * try, the last known-good program (this one) boots the same handover in
   * its place. Real processes count by default ({ tries: 2, deadlineMs:
   * 5000 }); the emulated machine only when asked. `false`: no counting.
   */
  trial?: TrialOptions | false;
}

export type SuccessorStart = 'in-place' | 'preload' | 'restart';

/** Boot counting of a successor. */
export interface TrialOptions {
  /** Tries of the successor before the fallback boots (default 2: one retry). */
  tries?: number;
  /** How long each try has to be marked good, in ms (default 5000). */
  deadlineMs?: number;
  /**
   * true: a try not marked good (kernel.markGood()) by the deadline fails;
   * false (default): a try that lives that long, or exits cleanly, is good.
   */
  requireGood?: boolean;
}

/** The loaded image: the segment holding the boot block, placed and held. */
export interface LoadedImage {
  readonly cmdline: string;
  readonly segment: PhysRange;
  /** True when the segment lies in a subsystem's arena (KHO scratch), not in pages taken from the allocator. */
  readonly inArena: boolean;
  /** The boot id the successor will have. */
  readonly bootId: Uint8Array;
  readonly generation: number;
  /** What a real process execs, as given to load. */
  readonly program?: string;
  readonly argv?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** `successor === 'preload'`. */
  readonly preload: boolean;
  readonly successor: SuccessorStart;
  /** The successor's boot counting, carried in the kexec metadata; null when none. */
  readonly counting: BootCounting | null;
}

/** The generation kexec belongs to, seen from below. */
export interface KexecHost {
  readonly device: MemoryDevice;
  readonly pages: BuddyAllocator;
  readonly generation: number;
  readonly bootId: Uint8Array;
  readonly cmdline: string;
  /** This generation's release and kexec count, for the kexec metadata. */
  readonly release: string;
  readonly kexecCount: number;
  readonly subsystems: readonly HandoverSubsystem[];
  /** Runs first at load (a successor on trial marks itself good). */
  beforeLoad?(): void;
  /** The memory map handed over, before the subsystems' marks. */
  handoverMemoryMap(): MemoryMap;
  /** exec has begun: the downtime starts (advisory: what it throws is ignored). */
  handoverBegan?(image: LoadedImage): void;
  /** exec failed and this generation goes on (advisory: what it throws is ignored). */
  handoverFailed?(image: LoadedImage, err: unknown): void;
  /** Checks the successor's command line as it will parse it. @throws BootError naming the parameter. */
  checkCmdline(cmdline: string): void;
  /** Whether this generation may kexec at all (a crash kernel may not). */
  checkCanKexec(): void;
  /**
   * Makes the boot block pending in the device header (with the map handed
   * over, so even a cold boot of a later generation keeps out of preserved
   * memory). The point of no return.
   */
  commitPendingBoot(
    bootBlockPhys: number,
    memoryMap: readonly MemoryRange[],
    counting: BootCounting | null,
    /** The first try is started by whoever boots the device next (a restart), not by this exec. */
    restart: boolean,
  ): void;
  /** Undoes commitPendingBoot when the platform could not start the successor. */
  cancelPendingBoot(): void;
}

/** Starts the successor from a committed image. */
export interface KexecPlatform<K> {
  /** Emulated: boots and returns the successor. Real: execve, never returns on success. */
  execute(image: LoadedImage): K;
  /** load({ preload: true }): start the successor now, up to "ready to take over". */
  preload?(image: LoadedImage): void;
  /**
   * Resolves once the preloaded successor is ready to take over (Kexec.ready).
   * @throws KexecError EIO (it died first), ETIMEDOUT.
   */
  preloadReady?(image: LoadedImage, timeoutMs?: number): Promise<void>;
  /** An image is loaded: get ready for its exec (advisory: what it throws is ignored). */
  loaded?(image: LoadedImage): void;
  /** unload (or a new load) of a preloaded image: stop the waiting successor. */
  cancelPreload?(image: LoadedImage): void;
  /** exec has begun, before the freeze: a preloaded successor gets ready to be released. */
  execBegin?(image: LoadedImage): void;
  /** The exec that execBegin announced failed before the successor took over. */
  execCancelled?(image: LoadedImage): void;
  /**
   * Refuses a load this platform cannot carry out (a real process: an IPC
   * channel to a parent cannot follow a preloaded successor, a cluster
   * worker cannot be replaced under its primary).
   * @throws KexecError EINVAL naming why.
   */
  checkLoad?(successor: SuccessorStart): void;
  /**
   * The boot counting of an image being loaded: the commands of the
   * successor and of the fallback. None given (null, or no such method):
   * the image counts only when `trial` was given, with placeholder commands.
   * @throws KexecError EINVAL when the options cannot be honoured.
   */
  bootCounting?(
    image: Pick<LoadedImage, 'program' | 'argv' | 'successor'>,
    trial: TrialOptions | false | undefined,
  ): BootCounting | null;
}

/** Alignment of the boot block segment, like the kernel's page-aligned segments. */
const SEGMENT_ALIGN = PAGE_SIZE;
/** Room kept for handover data added at exec (the KHO root FDT, ...). */
const DEFAULT_RESERVE = 64 * 1024;

/**
 * kexec for one generation: `load` stages the boot block in free memory
 * (placed like kexec_locate_mem_hole: top-down, never over reserved or
 * preserved pages), `exec` freezes the subsystems, writes the final boot
 * block, commits it and starts the successor, `unload` gives the memory back.
 */
export class Kexec<K> {
  #image: LoadedImage | null = null;

  constructor(
    private readonly host: KexecHost,
    private readonly platform: KexecPlatform<K>,
  ) {}

  /** The loaded image, or null. */
  get loaded(): LoadedImage | null {
    return this.#image;
  }

  /**
   * Stages the successor: checks the command line, places and claims the
   * boot block segment. Loading again replaces the previous image; a load
   * refused before the new segment is placed keeps it (a failed preload of
   * the new one leaves nothing loaded: the previous successor was stopped;
   * so does a subsystem that refuses the placed segment, whose error is thrown).
   * @throws BootError EINVAL naming the parameter when the command line is bad.
   * @throws KexecError EINVAL (too large, bad reserveBytes), ENOMEM (no hole), ESRCH (cannot kexec).
   */
  load(options: KexecLoadOptions = {}): LoadedImage {
    const draft = this.#draft(options);
    const { segment, inArena } = this.#replace(draft.bytes);
    const image: LoadedImage = {
      cmdline: draft.cmdline,
      segment,
      inArena,
      bootId: draft.bootId,
      generation: draft.generation,
      program: options.program,
      argv: options.argv,
      env: options.env,
      preload: draft.successor === 'preload',
      successor: draft.successor,
      counting: draft.counting,
    };
    this.#startPreload(image);
    this.#image = image;
    this.#announce(image);
    try {
      this.platform.loaded?.(image);
    } catch {
      // Only a head start for exec.
    }
    return image;
  }

  /**
   * Everything load checks before it claims anything: the request, the
   * platform, the command line, and the block's size (a draft encoded now,
   * with room for what the handover adds at exec).
   */
  #draft(options: KexecLoadOptions): {
    successor: SuccessorStart;
    counting: BootCounting | null;
    cmdline: string;
    bootId: Uint8Array;
    generation: number;
    bytes: number;
  } {
    this.host.checkCanKexec();
    if (typeof options !== 'object' || options === null)
      throw new KexecError('EINVAL', `load options must be an object, got ${show(options)}`);
    this.host.beforeLoad?.();
    const successor = successorStart(options);
    this.platform.checkLoad?.(successor);
    const counting = this.#counting(options, successor);
    const cmdline = options.cmdline ?? this.host.cmdline;
    this.host.checkCmdline(cmdline);
    const bootId = randomBootId();
    const generation = this.host.generation + 1;
    const map = this.host.handoverMemoryMap().entries();
    const draft = this.#encode(cmdline, bootId, generation, map, [], counting);
    const reserve = options.reserveBytes ?? DEFAULT_RESERVE;
    if (!Number.isSafeInteger(reserve) || reserve < 0) {
      throw new KexecError('EINVAL', `kexec load: reserveBytes ${reserve} is not a byte count`);
    }
    return { successor, counting, cmdline, bootId, generation, bytes: draft.length + reserve };
  }

  /**
   * A segment of `bytes` for the new image, in place of the loaded one: the
   * previous image's memory may take it, and the previous image is held
   * again (still loaded) when nothing fits or its preload cannot be stopped.
   */
  #replace(bytes: number): { segment: PhysRange; inArena: boolean } {
    const previous = this.#image;
    if (previous) this.#release(previous);
    let placed: { segment: PhysRange; inArena: boolean };
    try {
      placed = this.#place(bytes);
    } catch (err) {
      if (previous) this.#hold(previous);
      throw err;
    }
    if (previous?.preload) {
      try {
        this.platform.cancelPreload?.(previous);
      } catch (err) {
        this.#release(placed);
        this.#hold(previous);
        throw err;
      }
    }
    this.#image = null;
    return placed;
  }

  /**
   * Starts a preloaded successor; when it cannot start, nothing stays held.
   * @throws KexecError EINVAL (the platform cannot preload), EIO (the preload failed)
   */
  #startPreload(image: LoadedImage): void {
    if (!image.preload) return;
    if (!this.platform.preload) {
      this.#release(image);
      throw new KexecError('EINVAL', 'kexec load: this platform cannot preload a successor');
    }
    try {
      this.platform.preload(image);
    } catch (err) {
      this.#release(image);
      throw err instanceof KexecError
        ? err
        : new KexecError('EIO', `kexec load: preload failed: ${messageOf(err)}`, { cause: err });
    }
  }

  /** Tells the subsystems where the segment is; one that cannot make room refuses the load, and nothing stays loaded. */
  #announce(image: LoadedImage): void {
    try {
      for (const s of this.host.subsystems) s.segmentsPlaced?.([image.segment]);
    } catch (err) {
      this.#image = null;
      try {
        if (image.preload) this.platform.cancelPreload?.(image);
      } finally {
        this.#release(image);
      }
      throw err;
    }
  }

  /**
   * Resolves when the loaded successor is ready to take over: a preloaded
   * one once it has started up and waits for "go", while this generation
   * serves on; any other at once. Awaited before exec, what it waits for is
   * not part of the downtime (kernel.upgrade awaits it).
   * @param timeoutMs how long a preloaded successor may take (default 30000).
   * @throws KexecError ENOENT (nothing loaded), EINVAL (a bad timeout), EIO
   *   (the preloaded successor died first), ETIMEDOUT (still loaded: unload
   *   stops it).
   */
  async ready(timeoutMs?: number): Promise<void> {
    const image = this.#image;
    if (!image) throw new KexecError('ENOENT', 'kexec ready: no image is loaded');
    if (timeoutMs !== undefined && !(typeof timeoutMs === 'number' && timeoutMs >= 0)) {
      throw new KexecError(
        'EINVAL',
        `kexec ready: timeoutMs must be a number of ms >= 0, got ${show(timeoutMs)}`,
      );
    }
    if (!image.preload || !this.platform.preloadReady) return;
    await this.platform.preloadReady(image, timeoutMs);
  }

  /** Frees what load placed. @throws KexecError ENOENT when nothing is loaded. */
  unload(): void {
    const image = this.#image;
    if (!image) throw new KexecError('ENOENT', 'kexec unload: no image is loaded');
    if (image.preload) this.platform.cancelPreload?.(image);
    this.#release(image);
    this.#image = null;
  }

  /**
   * Hands over and starts the successor. Every subsystem is frozen; on any
   * failure before the successor runs, the frozen ones are unfrozen and this
   * generation stays fully usable.
   * @throws KexecError ENOENT (nothing loaded), EAGAIN (a subsystem refused), ENOMEM, EIO.
   */
  exec(): K {
    this.host.checkCanKexec();
    const image = this.#image;
    if (!image) throw new KexecError('ENOENT', 'kexec exec: no image is loaded (kexec load first)');
    const frozen: HandoverSubsystem[] = [];
    const parts: HandoverPart[] = [];
    let committed = false;
    try {
      this.host.handoverBegan?.(image);
    } catch {
      // Only a clock reading for status.
    }
    this.platform.execBegin?.(image);
    try {
      for (const s of this.host.subsystems) {
        if (!s.freeze) continue;
        try {
          parts.push(s.freeze());
        } catch (err) {
          throw new KexecError(
            'EAGAIN',
            `kexec exec: ${s.name} could not freeze: ${messageOf(err)}`,
            {
              cause: err,
            },
          );
        }
        frozen.push(s);
      }
      // One sweep for all the marks (KHO alone marks up to KHO_MAX_MAP_MARKS extents).
      const map = this.host.handoverMemoryMap().addAll(parts.flatMap((p) => p.marks ?? []));
      const memoryMap = map.entries();
      const setupData = parts.flatMap((p) => p.setupData ?? []);
      const block = this.#encode(
        image.cmdline,
        image.bootId,
        image.generation,
        memoryMap,
        setupData,
        image.counting,
      );
      const target = this.#fit(image, block.length);
      this.host.device.bytes(target.segment.base, block.length).set(block);
      this.host.device.flush(target.segment.base, block.length);
      this.host.commitPendingBoot(
        target.segment.base,
        memoryMap,
        target.counting,
        target.successor === 'restart',
      );
      committed = true;
      return this.platform.execute(target);
    } catch (err) {
      if (committed) this.host.cancelPendingBoot();
      for (const s of frozen.reverse()) s.unfreeze?.();
      this.platform.execCancelled?.(image);
      try {
        this.host.handoverFailed?.(image, err);
      } catch {
        // Status only: the exec's own error is what the caller needs.
      }
      if (err instanceof KexecError) throw err;
      throw new KexecError('EIO', `kexec exec: ${messageOf(err)}`, { cause: err });
    }
  }

  #encode(
    cmdline: string,
    bootId: Uint8Array,
    generation: number,
    memoryMap: readonly MemoryRange[],
    setupData: readonly SetupData[],
    counting: BootCounting | null,
  ): Uint8Array {
    try {
      const metadata = encodeKexecMetadata({
        kexecCount: this.host.kexecCount + 1,
        previousRelease: this.host.release,
        counting,
      });
      return encodeBootBlock({
        generation,
        bootId,
        predecessorBootId: this.host.bootId,
        cmdline,
        memoryMap,
        setupData: [...setupData, { type: SETUP.KEXEC_METADATA, data: metadata }],
      });
    } catch (err) {
      throw new KexecError('EINVAL', `kexec: ${messageOf(err)}`, { cause: err });
    }
  }

  /** The successor's boot counting: the platform's, or (asked for, on a platform without one) placeholders. */
  #counting(options: KexecLoadOptions, successor: SuccessorStart): BootCounting | null {
    const trial = options.trial;
    if (this.platform.bootCounting) {
      return this.platform.bootCounting(
        { program: options.program, argv: options.argv, successor },
        trial,
      );
    }
    if (trial === undefined || trial === false) return null;
    const here = { cwd: '', file: 'machine', argv: ['machine'] };
    return { ...trialDefaults(trial), successor: here, fallback: here };
  }

  /** The image with a segment big enough for `bytes`, re-placed when the handover grew. */
  #fit(image: LoadedImage, bytes: number): LoadedImage {
    if (bytes <= image.segment.size) return image;
    // Placed while the old segment is still held, so the two never overlap.
    const placed = this.#place(bytes);
    this.#release(image);
    this.#image = { ...image, ...placed };
    return this.#image;
  }

  /** Places a segment: in a subsystem's arena when there is one, else in pages claimed from the allocator. */
  #place(bytes: number): { segment: PhysRange; inArena: boolean } {
    const pages = pagesFor(bytes);
    const size = pages * PAGE_SIZE;
    const arena = this.#arena();
    const free = arena
      ? arena.free()
      : this.host.pages
          .freeExtents()
          .map((e) => ({ base: e.pfn * PAGE_SIZE, size: e.count * PAGE_SIZE }));
    const base = locateMemHole(free, size, SEGMENT_ALIGN);
    if (base === null) {
      const where = arena ? ' in the scratch areas' : '';
      throw new KexecError(
        'ENOMEM',
        `kexec load: no free hole of ${size} bytes for the boot block${where}`,
      );
    }
    const segment = { base, size };
    if (arena) arena.claim(segment);
    else this.host.pages.claimRange(base / PAGE_SIZE, pages);
    return { segment, inArena: arena !== undefined };
  }

  #release(image: Pick<LoadedImage, 'segment' | 'inArena'>): void {
    if (image.inArena) this.#arena()?.release(image.segment);
    else
      this.host.pages.releaseRange(image.segment.base / PAGE_SIZE, image.segment.size / PAGE_SIZE);
  }

  /** Claims again the pages of an image #release gave back (nothing was allocated since). */
  #hold(image: LoadedImage): void {
    if (image.inArena) this.#arena()?.claim(image.segment);
    else this.host.pages.claimRange(image.segment.base / PAGE_SIZE, image.segment.size / PAGE_SIZE);
  }

  #arena(): SegmentArena | undefined {
    for (const s of this.host.subsystems) {
      const a = s.segmentArena?.();
      if (a !== undefined) return a;
    }
    return undefined;
  }
}

function randomBootId(): Uint8Array {
  return randomBytes(16);
}

/** The tries, deadline and requirement of `trial`, with the defaults filled in. @throws KexecError EINVAL */
export function trialDefaults(
  trial: TrialOptions,
): Pick<BootCounting, 'tries' | 'deadlineMs' | 'requireGood'> {
  const tries = trial.tries ?? 2;
  const deadlineMs = trial.deadlineMs ?? 5000;
  if (!Number.isInteger(tries) || tries < 1 || tries > 1000) {
    throw new KexecError('EINVAL', `kexec load: trial.tries ${tries} is not an integer in 1..1000`);
  }
  if (!Number.isInteger(deadlineMs) || deadlineMs < 1 || deadlineMs > 0xffffffff) {
    throw new KexecError(
      'EINVAL',
      `kexec load: trial.deadlineMs ${deadlineMs} is not a positive integer`,
    );
  }
  return { tries, deadlineMs, requireGood: trial.requireGood === true };
}

function successorStart(options: KexecLoadOptions): SuccessorStart {
  const s = options.successor ?? (options.preload ? 'preload' : 'in-place');
  if (s !== 'in-place' && s !== 'preload' && s !== 'restart') {
    throw new KexecError(
      'EINVAL',
      `kexec load: successor '${String(s)}' is not in-place, preload or restart`,
    );
  }
  if (options.preload && s !== 'preload') {
    throw new KexecError('EINVAL', `kexec load: preload: true with successor '${s}'`);
  }
  return s;
}
