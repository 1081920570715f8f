/**
 * The platform of a real process: kexec exec replaces the program in place
 * with execve (same PID), or releases a successor process preloaded at
 * kexec load. The successor finds the device descriptor (and its flock) at
 * the same number and the boot block's address in its environment.
 */

import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { messageOf } from '../base/errors.js';
import { hex } from '../base/hex.js';
import type { BootCounting, KexecCommand } from '../boot/kexec-metadata.js';
import { PAGE_SIZE } from '../memory/device.js';
import type { MappedDevice } from '../memory/mapped.js';
import { errnoName, F_GETFD, F_SETFD, FD_CLOEXEC } from '../sys/libc.js';
import { getProcLibc, SIG_IGN, SIGACTION_SIZE, SIGPROF } from '../sys/socket.js';
import { saveCodeCache } from './code-cache.js';
import { ControlChannel, type Received } from './control-channel.js';
import { KexecError } from './errors.js';
import { storeFd, storeName } from './fd-store.js';
import {
  type KexecPlatform,
  type LoadedImage,
  type SuccessorStart,
  type TrialOptions,
  trialDefaults,
} from './kexec.js';
import { ENV_FALLBACK_MAIN, ENV_MAIN, mainScriptRealPath, startedScript } from './main-script.js';
import { ENV_REAP, reapListFor } from './reap.js';
import { notifyMainPid, notifyReady, notifyReloading } from './sd-notify.js';

export { mainScriptRealPath } from './main-script.js';

/** `<device path>@0x<boot block physical address>`: where and what the successor boots. */
export const ENV_BOOT = 'LIVEKEXEC_BOOT';
/** The inherited descriptor of the device, holding its flock. */
export const ENV_DEVICE_FD = 'LIVEKEXEC_DEVICE_FD';
/** The preloaded successor's end of the control channel. */
export const ENV_PRELOAD = 'LIVEKEXEC_PRELOAD';

/** How long a takeover may take by default, from "go" (or a successor's "prepare") on (ms). */
export const TAKEOVER_TIMEOUT = 10_000;
/** How long a preloaded successor may take to start up by default, until "ready" (ms). */
export const READY_TIMEOUT = 30_000;
/** How long each poll of an asynchronous wait for "ready" lasts at most (ms). */
const READY_SLICE_MS = 50;
/** How long a wait for "ready" whose channel closed waits to hear how the successor exited (ms). */
const EXIT_WAIT_MS = 1000;

/** How long a killed successor may take to die before exec reports failure anyway. */
const REAP_TIMEOUT = 5_000;

export interface ProcessPlatformOptions {
  readonly device: MappedDevice;
  /**
   * Descriptors the successor keeps (the LUO's preserved files): left open
   * across an in-place execve, passed by SCM_RIGHTS to a preloaded successor.
   */
  readonly keepFds?: () => Iterable<number>;
  /**
   * How long a preloaded successor may take from "go" to "took over", and,
   * in the successor, how long it waits for "go" after "prepare" (ms, default 10 s).
   */
  readonly takeoverTimeoutMs?: number;
  /** Runs in the old process after a preloaded successor took over, right before it exits. */
  readonly onTakeover?: (successorPid: number) => void;
  /**
   * Runs right before an in-place execve, once nothing else can fail before
   * it (to trace a handover's phases). What it throws is ignored.
   */
  readonly onExecve?: () => void;
  /**
   * Runs at a kexec load that preloads a successor, while the successor
   * starts: readies this process's side of the handover (boot() passes one
   * that rehearses the exec path, so exec runs compiled code). Advisory: what
   * it throws is ignored.
   */
  readonly readyHandover?: () => void;
  /**
   * The environment an in-place successor on trial gets on top of the
   * handover's, from its NODE_OPTIONS and the descriptors it inherits
   * (beyond stdio): boot() passes one that preloads trial-boot.cjs, which
   * catches a main module that cannot load; without it such a successor is
   * not caught, only one that fails after boot().
   */
  readonly trialEnv?: (
    nodeOptions: string | undefined,
    keptFds: readonly number[],
  ) => Record<string, string>;
  /** Where a preserved descriptor is in this process when it moved (see KernelPlatform.inheritedFd). */
  readonly inheritedFd?: (session: string, token: bigint, fd: number) => number | undefined;
  /** A successor on trial was marked good. */
  readonly markedGood?: () => void;
}

interface Preloaded {
  readonly child: ChildProcess;
  readonly channel: ControlChannel;
  ready: boolean;
  /** Told "prepare" and not yet "go" or "cancel": it waits blocking. */
  prepared: boolean;
  exit: string | null;
  /** An asynchronous wait for "ready" in flight (preloadReady), shared by its callers. */
  readyWait: Promise<void> | null;
}

/** A preloading image #handOver (through execute) returns on at once, and a successor #awaitTakeover does. */
const PRIME = Object.freeze({ preload: true }) as LoadedImage;
const PRIME_PRELOADED = Object.freeze({}) as Preloaded;

/**
 * Starts successors of a real process.
 *
 * In place (`execute` of an image loaded without preload): RELOADING=1 to
 * systemd, every descriptor but stdio, the device's and `keepFds` marked
 * close-on-exec (stdio cleared of it), then execve; on failure the flags are
 * restored, READY=1 is sent again and KexecError EIO thrown, so kexec
 * cancels the pending boot and this generation goes on.
 *
 * Preloaded (`preload` at load, `execute` at exec): the successor is spawned
 * at load with the device descriptor at the same number (same open file
 * description, so it shares the flock) and a control channel; it runs its
 * start-up and waits in boot(). At exec the old process says "prepare"
 * first (the successor then waits blocking), freezes, sends the kept
 * descriptors and "go" with the boot block address, and waits for "took
 * over"; an exec that fails before "go" says "cancel". Then the old process, which from "go" on never touches the device
 * again, closes the channel, tells systemd MAINPID=<successor>, calls
 * `onTakeover`, and calls process.exit(0) ('exit' listeners run; nothing
 * else). If the successor dies, fails or times out first, it is killed and
 * reaped, and exec throws KexecError EIO (this generation keeps serving).
 */
/** What the platform needs of the generation it runs (the Kernel, seen from below). */
export interface PlatformGeneration {
  /** Marks the generation replaced once a successor took over. */
  retire(by: string): void;
  /** Descriptors preserved for the next exec, kept open across it. */
  preservedFds(): number[];
  /** The same, with the session and token each is preserved under (for the fd store). */
  preservedFiles(): { session: string; token: bigint; fd: number }[];
  /** How it booted ('kexec': from a handover). */
  readonly boot?: { readonly kind: string };
}

export class ProcessPlatform implements KexecPlatform<never> {
  readonly device: MappedDevice;
  #options: ProcessPlatformOptions;
  #preloaded: Preloaded | null = null;
  #kernel: PlatformGeneration | null = null;

  constructor(options: ProcessPlatformOptions) {
    this.device = options.device;
    this.#options = options;
  }

  /** The running generation (the last one booted or adopted on this platform). */
  get kernel(): PlatformGeneration | null {
    return this.#kernel;
  }

  /** The preloaded successor's PID, while one waits. */
  get preloadedPid(): number | undefined {
    return this.#preloaded?.child.pid;
  }

  /** Descriptors the successor inherits: the hook's and those the kernel's live update preserved. */
  #keepFds(): number[] {
    return [...(this.#options.keepFds?.() ?? []), ...(this.#kernel?.preservedFds() ?? [])];
  }

  adopt(kernel: PlatformGeneration): void {
    this.#kernel = kernel;
  }

  /**
   * Replaces this process (in place) or hands over to the preloaded
   * successor. Never returns on success.
   * @throws KexecError EIO when the successor could not be started or did not take over.
   */
  execute(image: LoadedImage): never {
    if (image.preload) return this.#handOver(image);
    if (image.successor === 'restart') return this.#restart();
    const { file, argv } = successorCommand(image);
    const extra: Record<string, string> = {
      [ENV_BOOT]: bootSpec(this.device.path, image.segment.base),
      [ENV_DEVICE_FD]: String(this.device.fd),
    };
    // Children of this program that outlive the execve, for the successor to reap.
    const reap = reapListFor(this.device.guardChildren());
    if (reap !== '') extra[ENV_REAP] = reap;
    // The IPC channel to a parent (process.send: pm2, fork()) stays open and the successor's node takes it up.
    const channel = ipcChannelFd();
    if (channel !== null) extra.NODE_CHANNEL_FD = String(channel);
    const keep = new Set([0, 1, 2, this.device.fd, ...this.#keepFds()]);
    if (channel !== null) keep.add(channel);
    const trialEnv = this.#options.trialEnv;
    if (image.counting !== null && trialEnv) {
      const kept = [...keep].filter((fd) => fd > 2);
      Object.assign(extra, trialEnv((image.env ?? process.env).NODE_OPTIONS, kept));
    }
    const env = successorEnv(image, extra);
    checkStdioFlushed();
    const libc = getProcLibc();
    const restore = setCloseOnExec(keep);
    // Only now, with nothing left that can throw before execve: a failure
    // after RELOADING=1 must be followed by READY=1.
    tryNotify(notifyReloading);
    try {
      this.#options.onExecve?.();
    } catch {
      // A tracing hook cannot stop the exec.
    }
    // A SIGPROF from a profiler (node --cpu-prof) still pending at execve would
    // reach the successor before any handler and kill it: ignoring it drops it.
    // Saved whole to be put back if execve fails: signal() would restore the
    // profiler's handler without SA_SIGINFO (on arm64 it then gets no context).
    const prof = new Uint8Array(SIGACTION_SIZE);
    const profSaved = libc.sigaction(SIGPROF, null, prof) === 0;
    if (profSaved) libc.signal(SIGPROF, SIG_IGN);
    // Not process.execve: on Node.js 22 and 24 a failed one aborts the
    // process (SIGABRT, seen on 22.23 and 24.22; only 26 throws), and this
    // generation must keep serving when the exec fails.
    libc.execve(file, argv, env);
    const errno = libc.errno();
    if (profSaved) libc.sigaction(SIGPROF, prof, null);
    restore();
    tryNotify(notifyReady);
    throw new KexecError(
      'EIO',
      `kexec exec: execve(${file}): ${errnoName(errno)}; generation ${image.generation - 1} keeps running`,
    );
  }

  /**
   * A restart handover: the handover is committed; the preserved descriptors
   * go to the service manager's fd store (named by session and token), and
   * this process exits cleanly ('exit' handlers run). The next process that
   * boots the device boots as the successor.
   * @throws KexecError EINVAL when descriptors are preserved and there is no
   *   fd store (NOTIFY_SOCKET unset); EIO when storing one fails. Thrown
   *   before the exit, so kexec cancels the handover and this generation goes on.
   */
  #restart(): never {
    const files = this.#kernel?.preservedFiles() ?? [];
    if (files.length > 0 && !process.env.NOTIFY_SOCKET) {
      throw new KexecError(
        'EINVAL',
        `kexec exec: a restart handover cannot keep ${files.length} preserved descriptor(s) without a service manager's fd store (NOTIFY_SOCKET is unset; under systemd set FileDescriptorStoreMax=); preserve none, or use successor 'in-place' or 'preload'`,
      );
    }
    for (const f of files) storeFd(storeName(f.session, f.token), f.fd);
    this.#kernel?.retire('a restart handover: the next boot of the device');
    process.exit(0);
  }

  /**
   * The boot counting of an image: on by default (`trial` undefined), with
   * the successor's command and this program's own as the fallback.
   * @throws KexecError EINVAL for bad trial options.
   */
  bootCounting(
    image: Pick<LoadedImage, 'program' | 'argv' | 'successor'>,
    trial: TrialOptions | false | undefined,
  ): BootCounting | null {
    if (trial === false) return null;
    const { file, argv } = successorCommand(image);
    return {
      ...trialDefaults(trial ?? {}),
      successor: { cwd: process.cwd(), file, argv },
      fallback: ownCommand(),
    };
  }

  /**
   * A process with an IPC channel to its parent (process.send) keeps it
   * across an in-place exec; a preloaded successor is another process, which
   * the channel cannot follow. A cluster worker's listening sockets belong
   * to its primary: only a restart handover (the primary forks anew) works.
   * @throws KexecError EINVAL naming why.
   */
  checkLoad(successor: SuccessorStart): void {
    if (ipcChannelFd() === null || successor === 'restart') return;
    const cluster = createRequire(import.meta.url)('node:cluster') as { isWorker: boolean };
    if (cluster.isWorker) {
      throw new KexecError(
        'EINVAL',
        `kexec load: a cluster worker cannot be replaced ${successor}: its primary holds the listening sockets and tracks the worker over IPC; upgrade the primary, or use successor 'restart' (the primary forks a new worker)`,
      );
    }
    if (successor === 'preload') {
      throw new KexecError(
        'EINVAL',
        "kexec load: this process has an IPC channel to its parent (process.send: pm2, child_process.fork), which cannot follow a preloaded successor (another process); use successor 'in-place' (the channel is kept) or 'restart'",
      );
    }
  }

  /** Where a preserved descriptor is now, when it moved. */
  inheritedFd(session: string, token: bigint, fd: number): number | undefined {
    return this.#options.inheritedFd?.(session, token, fd);
  }

  markedGood(): void {
    this.#options.markedGood?.();
  }

  /**
   * A loaded image: exec checks that stdout and stderr hold nothing back, and
   * Node creates those streams on first use (2 ms for a pipe): created now,
   * that is not part of the exec. The package's code cache is written now
   * too when it has none for this node and place (code-cache.ts).
   */
  loaded(): void {
    void process.stdout;
    void process.stderr;
    saveCodeCache(this.#kernel?.boot?.kind === 'kexec');
  }

  /**
   * Spawns the successor now; it starts up and waits for "go".
   * @throws KexecError EIO when it cannot be spawned.
   */
  preload(image: LoadedImage): void {
    this.#stop();
    const { channel, peerFd } = ControlChannel.pair();
    const { file, argv } = successorCommand(image);
    const devFd = this.device.fd;
    const stdio: (number | 'inherit' | 'ignore')[] = [];
    for (let i = 0; i <= Math.max(devFd, peerFd); i++) stdio.push(i < 3 ? 'inherit' : 'ignore');
    stdio[devFd] = devFd;
    stdio[peerFd] = peerFd;
    const env = successorEnv(image, {
      [ENV_PRELOAD]: String(peerFd),
      [ENV_DEVICE_FD]: String(devFd),
    });
    let child: ChildProcess;
    try {
      child = childProcess().spawn(file, argv.slice(1), {
        argv0: argv[0],
        stdio,
        env: envObject(env),
      });
    } catch (err) {
      channel.close();
      getProcLibc().close(peerFd);
      throw new KexecError('EIO', `kexec load: cannot spawn ${file}: ${messageOf(err)}`, {
        cause: err,
      });
    }
    getProcLibc().close(peerFd);
    const pre: Preloaded = {
      child,
      channel,
      ready: false,
      prepared: false,
      exit: null,
      readyWait: null,
    };
    // A spawn failure (ENOENT, ...) arrives here and, for exec, as the channel's end.
    child.on('error', (err) => {
      pre.exit ??= messageOf(err);
    });
    child.on('exit', (code, signal) => {
      pre.exit ??= signal ? `killed by ${signal}` : `exited with status ${code}`;
    });
    this.#preloaded = pre;
    // The old side's part of the downtime is exec: map the device's windows now, not then.
    mapWhole(this.device);
    try {
      this.#options.readyHandover?.();
      this.#primeHandOver();
    } catch {
      // Only an optimization: exec works without it, a little later.
    }
  }

  /**
   * Calls, so that they do nothing, the steps of a preloaded exec that no
   * rehearsal reaches (execute and #handOver with PRIME, #awaitTakeover
   * with PRIME_PRELOADED; the others with no descriptors, a non-preloading
   * image, no NOTIFY_SOCKET): V8 compiles a function at its first call, and
   * these compilations fell inside the downtime (about 0.3 ms of a 5 ms
   * handover on one vCPU).
   */
  #primeHandOver(): void {
    this.#awaitTakeover(PRIME_PRELOADED, 0);
    stepAside(0);
    this.execBegin({ ...PRIME, preload: false });
    this.passFds([]);
    this.#kernel?.preservedFds();
    bootSpec(this.device.path, 0);
    tryNotify(() => notifyReloading({}));
    this.execute(PRIME);
  }

  /**
   * Tells the preloaded successor that "go" is near, so it waits for it
   * blocking until it comes (no more turns of its event loop between
   * slices of its wait), while this process freezes. "go" does not wait for its answer: a successor
   * still on its way to waiting finds "go" queued, and on a CPU the two
   * share, waiting for "prepared" cost a round trip of wake-ups (about 1 ms
   * of a 6 ms handover on one vCPU). Advisory: a successor that is gone is
   * found out by the handover itself.
   */
  execBegin(image: LoadedImage): void {
    const pre = this.#preloaded;
    if (!image.preload || !pre || pre.exit !== null) return;
    try {
      pre.channel.send({ t: 'prepare' });
      pre.prepared = true;
    } catch {
      // Gone: #handOver reports it.
    }
  }

  /** The exec failed before "go": the successor goes back to waiting on its event loop. */
  execCancelled(): void {
    const pre = this.#preloaded;
    if (!pre?.prepared) return;
    pre.prepared = false;
    try {
      pre.channel.send({ t: 'cancel' });
    } catch {
      // Gone: the next exec reports it.
    }
  }

  /** Kills the waiting successor (kexec unload, or a new load). */
  cancelPreload(): void {
    this.#stop();
  }

  /**
   * Waits (blocking) until the preloaded successor has finished its start-up
   * and waits for "go": call it before exec so the downtime excludes start-up.
   * It blocks this process's event loop (and V8's own work in it) meanwhile;
   * `await kernel.kexec.ready()` waits without, as kernel.upgrade() does.
   * @returns false on timeout.
   * @throws KexecError ENOENT when nothing is preloaded; EIO when the successor died.
   */
  waitPreloadReady(timeoutMs = TAKEOVER_TIMEOUT): boolean {
    const pre = this.#preloaded;
    if (!pre) throw new KexecError('ENOENT', 'no preloaded successor');
    const deadline = Date.now() + timeoutMs;
    while (!pre.ready) {
      const r = pre.channel.receiveSync(Math.max(0, deadline - Date.now()));
      if (r === null) return false;
      if (r.msg.t === 'ready') pre.ready = true;
      // A late "prepared" of an exec that was cancelled since says nothing new.
      else if (r.msg.t !== 'prepared')
        throw new KexecError('EIO', `preloaded successor said ${r.msg.t} before go`);
    }
    return true;
  }

  /**
   * Resolves once the preloaded successor has finished its start-up and
   * waits for "go", without blocking: this process's event loop (it still
   * serves, and V8 finishes its own work in it) runs meanwhile. Callers of
   * one successor share one wait.
   * @throws KexecError ENOENT when nothing is preloaded; EIO when the
   *   successor died first or its channel failed; ETIMEDOUT after `timeoutMs`.
   */
  preloadReady(image: LoadedImage, timeoutMs = READY_TIMEOUT): Promise<void> {
    if (!image.preload) return Promise.resolve();
    const pre = this.#preloaded;
    if (!pre) return Promise.reject(new KexecError('ENOENT', 'no preloaded successor'));
    if (pre.ready) return Promise.resolve();
    pre.readyWait ??= this.#awaitReady(pre, timeoutMs).finally(() => {
      pre.readyWait = null;
    });
    return pre.readyWait;
  }

  async #awaitReady(pre: Preloaded, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pre.ready) {
      if (this.#preloaded !== pre)
        throw new KexecError('EIO', 'the preloaded successor was stopped');
      if (pre.exit !== null) {
        throw new KexecError('EIO', `the preloaded successor ${pre.exit} before it was ready`);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new KexecError(
          'ETIMEDOUT',
          `the preloaded successor was not ready within ${timeoutMs} ms`,
        );
      }
      // In slices: no poll of the channel outlives the wait (exec receives from it blocking).
      let r: Received | null;
      try {
        r = await pre.channel.receiveWithin(Math.min(left, READY_SLICE_MS));
      } catch (err) {
        // The channel closes as the process dies: say how it died, once node has heard.
        const why = (await exitOf(pre, EXIT_WAIT_MS)) ?? `closed its channel (${messageOf(err)})`;
        throw new KexecError('EIO', `the preloaded successor ${why} before it was ready`, {
          cause: err,
        });
      }
      if (r === null) continue;
      if (r.msg.t === 'ready') pre.ready = true;
      else if (r.msg.t !== 'prepared')
        throw new KexecError('EIO', `preloaded successor said ${r.msg.t} before go`);
    }
  }

  /**
   * Passes descriptors to the preloaded successor now (SCM_RIGHTS); it places
   * each at the same number before it boots.
   * @throws KexecError ENOENT when nothing is preloaded; EIO when it is gone.
   */
  passFds(fds: readonly number[]): void {
    const pre = this.#preloaded;
    if (!pre) throw new KexecError('ENOENT', 'no preloaded successor to pass descriptors to');
    if (fds.length > 0) pre.channel.send({ t: 'fds', numbers: [...fds] }, fds);
  }

  #handOver(image: LoadedImage): never {
    if (image === PRIME) return undefined as never;
    const pre = this.#preloaded;
    if (!pre) throw new KexecError('EIO', 'kexec exec: the preloaded successor is gone');
    tryNotify(notifyReloading);
    let pid: number;
    try {
      if (pre.exit !== null) throw new Error(`it ${pre.exit}`);
      this.passFds(this.#keepFds());
      const timeoutMs = this.#options.takeoverTimeoutMs ?? TAKEOVER_TIMEOUT;
      const deadline = Date.now() + timeoutMs;
      pre.channel.send({ t: 'go', boot: bootSpec(this.device.path, image.segment.base) });
      stepAside(Math.min(STEP_ASIDE_MS, timeoutMs));
      pid = this.#awaitTakeover(pre, deadline);
    } catch (err) {
      this.#stop();
      tryNotify(notifyReady);
      throw new KexecError(
        'EIO',
        `kexec exec: the preloaded successor did not take over: ${messageOf(err)}`,
        { cause: err },
      );
    }
    // From here on this process only exits: at the lowest priority, its teardown
    // (unmapping the device, the heap) yields a shared CPU to the successor's first steps.
    lowerPriority();
    this.#preloaded = null;
    pre.channel.close();
    this.#kernel?.retire(`the preloaded successor (PID ${pid})`);
    tryNotify(() => notifyMainPid(pid));
    this.#options.onTakeover?.(pid);
    process.exit(0);
  }

  #awaitTakeover(pre: Preloaded, deadline: number): number {
    if (pre === PRIME_PRELOADED) return 0;
    for (;;) {
      const r = pre.channel.receiveSync(Math.max(0, deadline - Date.now()));
      if (r === null) throw new Error('timed out');
      if (r.msg.t === 'took-over') return r.msg.pid;
      if (r.msg.t === 'failed') throw new Error(r.msg.message);
      if (r.msg.t === 'ready') pre.ready = true;
    }
  }

  /** Kills and reaps the waiting successor, if any. */
  #stop(): void {
    const pre = this.#preloaded;
    if (!pre) return;
    this.#preloaded = null;
    pre.channel.close();
    const pid = pre.child.pid;
    if (pid === undefined || pre.exit !== null) return;
    pre.child.kill('SIGKILL');
    waitDead(pid, REAP_TIMEOUT);
  }
}

/**
 * Maps all of a device now: a large device is mapped in windows on first
 * access, and each new mapping costs a garbage collection (V8 counts it as
 * external memory). One page per GiB reaches every window.
 */
export function mapWhole(device: MappedDevice): void {
  for (let at = 0; at < device.size; at += 2 ** 30) {
    device.bytes(at, Math.min(PAGE_SIZE, device.size - at));
  }
}

/** The descriptor of this process's IPC channel to its parent, or null when it has none. */
function ipcChannelFd(): number | null {
  const channel = (process as { channel?: { fd?: unknown } }).channel;
  const fd = channel?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : null;
}

/**
 * node:child_process, on first use: it loads node:net, node:dgram and a dozen
 * more internal modules, which an in-place successor's start-up never needs.
 */
function childProcess(): typeof import('node:child_process') {
  return createRequire(import.meta.url)(
    'node:child_process',
  ) as typeof import('node:child_process');
}

/** What to execve or spawn: argv[0] is the file. */
export function successorCommand(image: Pick<LoadedImage, 'program' | 'argv'>): {
  file: string;
  argv: string[];
} {
  const args = [...(image.argv ?? process.argv.slice(2))];
  const program = image.program;
  if (program === undefined || /\.[cm]?js$/.test(program)) {
    const script = program ?? startedScript();
    return {
      file: process.execPath,
      argv: [process.execPath, ...process.execArgv, ...(script ? [script] : []), ...args],
    };
  }
  return { file: program, argv: [program, ...args] };
}

/**
 * This program as it runs now, to fall back to: node, its options, the main
 * script by its real path (a deploy that flips a `current` symlink to the
 * new release must not turn the fallback into the new code) and arguments.
 */
export function ownCommand(): KexecCommand {
  const script = mainScriptRealPath();
  const argv = [process.execPath, ...process.execArgv];
  if (script) argv.push(script);
  argv.push(...process.argv.slice(2));
  return { cwd: process.cwd(), file: process.execPath, argv };
}

/**
 * The successor's environment as KEY=VALUE strings: the image's (or ours)
 * without stale handover variables, plus `extra`, and the script this
 * program's successors start, for a fallback to start its own from.
 */
export function successorEnv(
  image: Pick<LoadedImage, 'env'>,
  extra: Readonly<Record<string, string>>,
): string[] {
  const base: Record<string, string | undefined> = { ...(image.env ?? process.env) };
  for (const k of [ENV_BOOT, ENV_DEVICE_FD, ENV_PRELOAD, ENV_MAIN, ENV_REAP]) delete base[k];
  base[ENV_FALLBACK_MAIN] = startedScript();
  Object.assign(base, extra);
  const out: string[] = [];
  for (const [k, v] of Object.entries(base)) if (v !== undefined) out.push(`${k}=${v}`);
  return out;
}

export function bootSpec(path: string, phys: number): string {
  return `${path}@${hex(phys)}`;
}

/**
 * Splits "<path>@0x<hex>" at its last '@'.
 * @throws KexecError EINVAL when it is not of that form.
 */
export function parseBootSpec(spec: string): { path: string; bootBlock: number } {
  const at = spec.lastIndexOf('@');
  const hex = at > 0 ? spec.slice(at + 1) : '';
  if (!/^0x[0-9a-fA-F]{1,13}$/.test(hex)) {
    throw new KexecError('EINVAL', `${ENV_BOOT}: expected <device>@0x<address>, got '${spec}'`);
  }
  const bootBlock = Number.parseInt(hex.slice(2), 16);
  if (!Number.isSafeInteger(bootBlock)) {
    throw new KexecError('EINVAL', `${ENV_BOOT}: address ${hex} is too large`);
  }
  return { path: spec.slice(0, at), bootBlock };
}

/**
 * Places descriptors received from the predecessor at the numbers they had
 * there. A number already in use here keeps its descriptor, and the received
 * one stays where it arrived.
 * @returns original number -> number in this process.
 */
export function placeReceivedFds(
  numbers: readonly number[],
  fds: readonly number[],
): Map<number, number> {
  const libc = getProcLibc();
  const placed = new Map<number, number>();
  numbers.forEach((want, i) => {
    const got = fds[i];
    if (got === want || libc.fcntl(want, F_GETFD, 0) >= 0 || libc.dup2(got, want) < 0) {
      placed.set(want, got);
      return;
    }
    libc.close(got);
    placed.set(want, want);
  });
  return placed;
}

/**
 * Marks every open descriptor close-on-exec except `keep`, which are cleared
 * of the flag (Node may set it on stdio). Returns a function restoring the
 * previous flags, for when execve fails.
 */
function setCloseOnExec(keep: ReadonlySet<number>): () => void {
  const libc = getProcLibc();
  const changed: [number, number][] = [];
  for (const name of readdirSync('/proc/self/fd')) {
    const fd = Number(name);
    if (!Number.isSafeInteger(fd)) continue;
    const flags = libc.fcntl(fd, F_GETFD, 0);
    if (flags < 0) continue; // the directory's own descriptor, closed by now
    const want = keep.has(fd) ? flags & ~FD_CLOEXEC : flags | FD_CLOEXEC;
    if (want !== flags && libc.fcntl(fd, F_SETFD, want) === 0) changed.push([fd, flags]);
  }
  return () => {
    for (const [fd, flags] of changed) libc.fcntl(fd, F_SETFD, flags);
  };
}

/**
 * Node writes to files, pipes and terminals synchronously on Linux, so stdio
 * holds nothing back; if it ever does, exec must not lose it.
 * @throws KexecError EIO when stdout or stderr has unwritten bytes.
 */
function checkStdioFlushed(): void {
  for (const [name, s] of [
    ['stdout', process.stdout],
    ['stderr', process.stderr],
  ] as const) {
    if (s.writableLength > 0) {
      throw new KexecError('EIO', `kexec exec: ${name} has ${s.writableLength} unwritten bytes`);
    }
  }
}

/** Blocks until `pid` is a zombie or gone, at most `timeoutMs`. */
function waitDead(pid: number, timeoutMs: number): void {
  const deadline = Date.now() + timeoutMs;
  const cell = new Int32Array(new SharedArrayBuffer(4));
  while (Date.now() < deadline) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return;
    }
    // The state follows the parenthesised command name, which may itself hold ')'.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return;
    Atomics.wait(cell, 0, 0, 1);
  }
}

function envObject(lines: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of lines) {
    const eq = l.indexOf('=');
    out[l.slice(0, eq)] = l.slice(eq + 1);
  }
  return out;
}

/** systemd notification is advisory: a failure to notify never fails an exec. */
function tryNotify(fn: () => unknown): void {
  try {
    fn();
  } catch {
    // NOTIFY_SOCKET gone or unwritable: the service manager will notice on its own.
  }
}

/**
 * After "go", this process sleeps (STEP_ASIDE_MS) before it reads the
 * successor's answer: woken by "took over" at once, on a CPU the two share
 * it ran ahead of the successor's first steps (the program's restores),
 * then its exit did (0.3-0.8 ms of a 4-5 ms handover on one vCPU, and most
 * of its tail). A successor that fails is noticed that much later.
 */
function stepAside(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** How the preloaded process exited, once node reports it within `ms`; null if it has not. */
async function exitOf(pre: { exit: string | null }, ms: number): Promise<string | null> {
  for (const end = Date.now() + ms; pre.exit === null && Date.now() < end; ) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return pre.exit;
}

/** How long the old process leaves the CPU to its successor after "go" (ms). */
const STEP_ASIDE_MS = 20;

/**
 * Nice 19 for the main thread (Linux keeps nice per thread: this is the one
 * that runs the exit), then the CPU handed on: woken by "took over",
 * this process ran ahead of the successor it woke from (a wake-up preempts),
 * and a lowered priority alone takes effect at the scheduler's next tick
 * (up to 4 ms at HZ=250) on a CPU the two share. Advisory: a container may
 * refuse it. Through libc, already bound: node:os would be loaded cold here.
 */
function lowerPriority(): void {
  try {
    const libc = getProcLibc();
    libc.setNice(19);
    libc.schedYield();
  } catch {
    // Only the successor's share of a busy CPU depends on it.
  }
}
