/**
 * Booting a real process: the first thing a program using livekexec awaits.
 * It cold-boots a memory device, or boots as the successor its predecessor
 * started (in place by execve, or preloaded and released over the control
 * channel).
 */

import { existsSync, readlinkSync } from 'node:fs';
import { messageOf, show } from './base/errors.js';
import { hex } from './base/hex.js';
import { memparseExact } from './boot/memparse.js';
import { Kernel } from './kernel/kernel.js';
import type { UpgradeOptions } from './kernel/upgrade.js';
import { ControlChannel, type ControlMessage, type Received } from './kexec/control-channel.js';
import { KexecError } from './kexec/errors.js';
import type { Kexec } from './kexec/kexec.js';
import { ENV_FALLBACK_MAIN, startedScript } from './kexec/main-script.js';
import {
  ENV_BOOT,
  ENV_DEVICE_FD,
  ENV_PRELOAD,
  mainScriptRealPath,
  mapWhole,
  ProcessPlatform,
  type ProcessPlatformOptions,
  parseBootSpec,
  placeReceivedFds,
  TAKEOVER_TIMEOUT,
} from './kexec/process-platform.js';
import { ENV_REAP, reapEnv, reapInherited, reapListFor } from './kexec/reap.js';
import { sdNotify } from './kexec/sd-notify.js';
import { PAGE_SIZE } from './memory/device.js';
import { decodeDeviceHeader, formatDevice } from './memory/header.js';
import { growDeviceFile } from './memory/hotplug.js';
import { MappedDevice } from './memory/mapped.js';
import { makePageArraysAhead } from './mm/page-array.js';
import { rehearseControlChannel, rehearseHandovers, rehearseStatusRead } from './rehearsal.js';
import {
  defaultDevicePath,
  defaultRelease,
  fdMapEnv,
  forgetStoredFds,
  inheritedFd,
  movedFd,
  movedFds,
  setTrialArmer,
  takePendingHandover,
  takeServiceFds,
} from './service.js';
import {
  armTrial,
  describeFds,
  type Inherited,
  setTrialEnv,
  trialBooted,
  trialGood,
  trialSuccessorEnv,
} from './trial.js';
import { failTry } from './trial-fail.js';
import { trialBootPath, trialPreloadOption } from './trial-options.js';

export { defaultDevicePath, defaultRelease, listenFds } from './service.js';

/** A generation booted in a real process: its kexec exec does not return on success. */
export interface ProcessKernel extends Kernel {
  readonly kexec: Kexec<never>;
  upgrade(options?: UpgradeOptions): Promise<never>;
}

/** The NODE_OPTIONS word that preloads trial-boot.cjs (in dist/pkg). */
const trialBootOption = () => trialPreloadOption(trialBootPath(import.meta.url));
/** The trial loader sits beside this module (dist/src, or the bundle in dist/pkg). */
const trialLoader = () => (loaderUrl ??= new URL('./trial-loader.js', import.meta.url).href);
let loaderUrl: string | undefined;

/** The size of a device created without one. */
const DEFAULT_SIZE = 64 * 1024 * 1024;
/** How often a process republishes its status by default (ms). */
const STATUS_INTERVAL_MS = 1000;
export interface ProcessBootOptions {
  /** The device file of a cold boot (default: defaultDevicePath()). */
  device?: string;
  /**
   * Its size: bytes or a memparse string ("64M", "1G"). A new device is
   * created at it; an existing smaller one (in a cold boot or a successor's
   * kexec boot) grows to it and the new range comes online as usable memory
   * (memory hotplug), everything kept staying where it was; a larger one is
   * refused (devices never shrink).
   */
  size?: number | string;
  /** The command line of a cold boot (a kexec boot takes the boot block's). */
  cmdline?: string;
  /**
   * Kept for callers that say so explicitly; it changes nothing: an absent
   * device is always created (at `size`, 64 MiB by default) and formatted, an
   * existing empty file is preallocated and formatted, and an existing device
   * grows to `size` when it is smaller (see `size`).
   */
  create?: boolean;
  /**
   * How often the status area is rewritten, so `livekexec status` and
   * `kernel.metrics()` readers outside the process see current figures (ms;
   * default 1000; 0: only at boot and at handover events). The timer does
   * not keep the process alive.
   */
  statusIntervalMs?: number;
  /** Platform options (kept descriptors, preload timeout, takeover hook). */
  platform?: Omit<ProcessPlatformOptions, 'device'>;
  /**
   * This program's release, which its successor reads as
   * `kernel.boot.previousRelease` (default: `name@version` of the
   * package.json nearest the main script, else the script's name).
   */
  release?: string;
  /**
   * When systemd hears READY=1: `'boot'` (default) once booted; `'good'`
   * when the program calls `kernel.markGood()` (it serves).
   */
  notifyReady?: 'boot' | 'good';
  /**
   * A cold start that finds a handover pending (a restart handover, or a
   * try that died) boots as its successor; when that handover cannot be
   * booted, boot() throws BootError ESTALE rather than drop it. true: drop
   * it and boot cold (its preserved memory stays reserved).
   */
  discardPending?: boolean;
}

/**
 * Boots this process's generation.
 *
 * Without `LIVEKEXEC_BOOT` or `LIVEKEXEC_PRELOAD` in the environment: a cold
 * boot of `options.device`, created and formatted when it does not exist.
 * With `LIVEKEXEC_BOOT=<path>@0x<addr>` and `LIVEKEXEC_DEVICE_FD`: a kexec
 * boot on the inherited, already locked descriptor. With `LIVEKEXEC_PRELOAD`:
 * first waits for the predecessor's "go", blocking, so that "go" wakes it at
 * once: until the predecessor's exec has begun the event loop takes a turn
 * every 50 ms (timers and signal handlers run up to that late), then it
 * blocks until "go".
 * The handover variables are removed from process.env. Under systemd
 * (NOTIFY_SOCKET) READY=1 is sent once booted.
 * @throws DeviceError EBUSY when another process owns the device (the message
 *   names its PID); ENODEV when an existing file holds no device; others as
 *   MappedDevice.open.
 * @throws KexecError EINVAL for malformed handover variables; EIO when the
 *   control channel fails.
 * @throws BootError for a bad command line.
 */
export async function boot(options: ProcessBootOptions = {}): Promise<ProcessKernel> {
  checkBootOptions(options);
  const env = process.env;
  mainScriptRealPath(); // now, before a deploy flips a release symlink: the fallback's path
  takeServiceFds();
  reapInherited(env);
  if (env[ENV_PRELOAD] !== undefined) return bootPreloaded(options);
  const spec = env[ENV_BOOT];
  if (spec !== undefined) {
    const fd = deviceFd();
    delete env[ENV_BOOT];
    const { path, bootBlock } = parseBootSpec(spec);
    // A successor may ask for a larger device than its predecessor had: it grows (hotplug), never shrinks.
    if (options.size !== undefined) growDeviceFile(fd, path, sizeBytes(options.size));
    return start(MappedDevice.openFd(fd, path), options, bootBlock);
  }
  return startCold(options);
}

/** @throws KexecError EINVAL for options that are not boot options (boot(42), a numeric device). */
function checkBootOptions(o: unknown): asserts o is ProcessBootOptions {
  const bad = (what: string, v: unknown): never => {
    throw new KexecError('EINVAL', `boot: ${what}, got ${show(v)}`);
  };
  if (typeof o !== 'object' || o === null) bad('options must be an object', o);
  const r = o as Record<string, unknown>;
  if (r.device !== undefined && (typeof r.device !== 'string' || r.device === ''))
    bad('device must be a path', r.device);
  if (r.size !== undefined && typeof r.size !== 'number' && typeof r.size !== 'string')
    bad('size must be a number of bytes or a memparse string', r.size);
  if (r.cmdline !== undefined && typeof r.cmdline !== 'string')
    bad('cmdline must be a string', r.cmdline);
  for (const flag of ['create', 'discardPending'] as const)
    if (r[flag] !== undefined && typeof r[flag] !== 'boolean')
      bad(`${flag} must be a boolean`, r[flag]);
  if (r.platform !== undefined && (typeof r.platform !== 'object' || r.platform === null))
    bad('platform must be an object', r.platform);
}

/** A cold start; a handover still pending on the device (its owner is gone) is booted as its successor. */
function startCold(options: ProcessBootOptions): ProcessKernel {
  const device = openCold(options);
  let pending: number | null;
  try {
    setTrialArmer(() => armTrial(trialLoader(), process.env, [device.fd, ...movedFds()], failTry));
    pending = takePendingHandover(device, options.discardPending === true);
  } catch (err) {
    device.close();
    throw err;
  }
  return start(device, options, pending ?? undefined);
}

/** Descriptors the predecessor passed, by their number there -> number here. */
export function receivedFds(): ReadonlyMap<number, number> {
  return received;
}

const received = new Map<number, number>();
const platforms = new WeakMap<Kernel, ProcessPlatform>();

/** The platform a kernel booted by boot() runs on (to wait for a preloaded successor, pass descriptors). */
export function processPlatform(kernel: Kernel): ProcessPlatform | undefined {
  return platforms.get(kernel);
}

/** What arming a trial reads, read by a preloaded successor before "go": see bootPreloaded. */
interface TrialInputs {
  readonly env: NodeJS.ProcessEnv;
  readonly device: readonly Inherited[];
}

function start(
  device: MappedDevice,
  options: ProcessBootOptions,
  bootBlock?: number,
  ready = 'READY=1',
  trialInputs?: TrialInputs,
): ProcessKernel {
  let readySent = false;
  const sendReady = () => {
    if (readySent) return;
    readySent = true;
    try {
      sdNotify(ready);
    } catch {
      // Advisory: a service manager that cannot be told will time out on its own.
    }
  };
  const platform = new ProcessPlatform({
    ...options.platform,
    device,
    readyHandover: () => {
      readyExec();
      options.platform?.readyHandover?.();
    },
    trialEnv: (nodeOptions, kept) => trialSuccessorEnv(nodeOptions, kept, trialBootOption()),
    inheritedFd: (session, token, fd) =>
      options.platform?.inheritedFd?.(session, token, fd) ?? inheritedFd(session, token, fd),
    markedGood: () => {
      trialGood();
      forgetStoredFds();
      sendReady();
      options.platform?.markedGood?.();
    },
  });
  let interval = 0;
  let kernel: Kernel;
  try {
    interval = statusInterval(options.statusIntervalMs);
    kernel = Kernel.boot({
      device,
      cmdline: options.cmdline,
      bootBlock,
      platform,
      release: options.release ?? defaultRelease(),
      status: true,
      statusIntervalMs: interval,
      deferStatus: true,
    });
  } catch (err) {
    device.close();
    throw err;
  }
  // Once the program that awaited boot() has run on (restored its state,
  // said ready): not inside a successor's downtime.
  const booted = kernel;
  setImmediate(() => booted.publishStatus());
  platform.adopt(kernel);
  platforms.set(kernel, platform);
  // Off the boot path (the size checks start a timer, the sentinel a spawn): see memory/_truncation.ts.
  setImmediate(() => {
    try {
      device.guardTruncation(
        (s) => process.stderr.write(`livekexec: ${s.message}\n`),
        // A failed try execs the next one in place: it reaps this sentinel too.
        (pid) => setTrialEnv(ENV_REAP, reapListFor([pid])),
      );
    } catch {
      // The device was closed before the guard started: nothing left to guard.
    }
  });
  if (interval > 0) republish(kernel, interval);
  const trial = kernel.trial;
  if (trial !== null) {
    // Another try or the fallback boots this same handover if this one fails.
    const handover = {
      [ENV_BOOT]: `${device.path}@${hex(bootBlock ?? 0)}`,
      [ENV_DEVICE_FD]: String(device.fd),
      // A try started by a supervisor (a restart handover) falls back to the same program.
      [ENV_FALLBACK_MAIN]: process.env[ENV_FALLBACK_MAIN] || (startedScript() ?? ''),
      ...fdMapEnv(),
      ...reapEnv(),
    };
    // trialBooted adds the handover's names to the environment armTrial copies.
    // A preloaded successor's preserved files came by the channel (received), not
    // across an exec that listed them (LIVEKEXEC_TRIAL_FDS): its tries keep them too.
    const kept = new Set([...movedFds(), ...received.values()]);
    kept.delete(device.fd);
    armTrial(
      trialLoader(),
      trialInputs?.env ?? process.env,
      [...(trialInputs?.device ?? [device.fd]), ...kept],
      failTry,
    );
    trialBooted(() => kernel.markGood(), trial.deadlineMs, trial.requireGood, handover, failTry);
  } else if (kernel.boot.kind === 'kexec') {
    forgetStoredFds();
  }
  if (options.notifyReady !== 'good') sendReady();
  return kernel as ProcessKernel;
}

function statusInterval(ms: number | undefined): number {
  if (ms === undefined) return STATUS_INTERVAL_MS;
  if (!Number.isSafeInteger(ms) || ms < 0) {
    throw new KexecError('EINVAL', `statusIntervalMs: expected a whole number of ms, got ${ms}`);
  }
  return ms;
}

/** Rewrites the status every `ms` until the generation is replaced; never keeps the process alive. */
function republish(kernel: Kernel, ms: number): void {
  const timer = setInterval(() => {
    if (!kernel.alive) clearInterval(timer);
    else kernel.publishStatus();
  }, ms);
  timer.unref();
}

function openCold(options: ProcessBootOptions): MappedDevice {
  const path = options.device ?? defaultDevicePath();
  const size = options.size === undefined ? undefined : sizeBytes(options.size);
  const absent = !existsSync(path);
  // An existing file is recognised before it is opened: preallocating a file that is no
  // device (a sparse one could be any size) would fill the file system for nothing.
  if (!absent) {
    const peek = MappedDevice.peek(path);
    if (!peek.page0.every((b) => b === 0)) decodeDeviceHeader(peek.page0, peek.size, path);
  }
  const device = MappedDevice.open(path, {
    create: absent || options.create === true,
    size: absent ? (size ?? DEFAULT_SIZE) : size,
  });
  // A new file, or one never formatted (page 0 all zeros), gets a header; anything else is read as is.
  if (absent || isBlank(device)) {
    try {
      formatDevice(device);
    } catch (err) {
      device.close();
      throw err;
    }
  }
  return device;
}

function sizeBytes(size: number | string): number {
  return typeof size === 'string' ? memparseExact(size, 'size') : size;
}

function isBlank(device: MappedDevice): boolean {
  const page0 = device.bytes(0, Math.min(PAGE_SIZE, device.size));
  return page0.every((b) => b === 0);
}

function deviceFd(): number {
  const text = process.env[ENV_DEVICE_FD];
  delete process.env[ENV_DEVICE_FD];
  const fd = text !== undefined && /^\d{1,9}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(fd)) {
    throw new KexecError('EINVAL', `${ENV_DEVICE_FD}: expected a descriptor number, got '${text}'`);
  }
  return fd;
}

/** A preloaded successor: says ready, places passed descriptors, waits for go, boots, acknowledges. */
async function bootPreloaded(options: ProcessBootOptions): Promise<ProcessKernel> {
  const text = process.env[ENV_PRELOAD] ?? '';
  delete process.env[ENV_PRELOAD];
  const fd = deviceFd();
  if (!/^\d{1,9}$/.test(text)) {
    throw new KexecError('EINVAL', `${ENV_PRELOAD}: expected a descriptor number, got '${text}'`);
  }
  const channel = ControlChannel.adopt(Number(text));
  let device: MappedDevice | null = null;
  try {
    // Map the inherited device and ready the takeover now, while the
    // predecessor still serves, so that none of it falls in the downtime.
    device = MappedDevice.openFd(fd, devicePathOf(fd));
    await readyTakeover(device);
    makePageArraysAhead(device.pages);
    // What start() reads from files and names, read now rather than after "go" (0.3-0.4 ms
    // on one vCPU): the release from package.json, the trial loader's URL, the main script.
    const release = options.release ?? defaultRelease();
    trialLoader();
    startedScript();
    // "go"'s boot spec is parsed once, after it: its pattern is compiled at first use.
    parseBootSpec(`${device.path}@0x0`);
    // And what arming a trial copies (the environment: node reads each variable through
    // a C++ call) and describes (the device's descriptor, an fstat): ~0.3 ms, cold, after go.
    const trialInputs: TrialInputs = { env: { ...process.env }, device: describeFds([fd]) };
    channel.send({ t: 'ready', pid: process.pid });
    const spec = await awaitGo(channel, options.platform?.takeoverTimeoutMs ?? TAKEOVER_TIMEOUT);
    const { bootBlock } = parseBootSpec(spec);
    let kernel: ProcessKernel;
    const booting = device;
    // start() owns the device from here, and closes it when the boot fails.
    device = null;
    try {
      // Another PID becomes the service's main process (systemd needs NotifyAccess=all for it).
      kernel = start(
        booting,
        { ...options, release },
        bootBlock,
        `MAINPID=${process.pid}\nREADY=1`,
        trialInputs,
      );
    } catch (err) {
      channel.send({ t: 'failed', message: messageOf(err) });
      throw err;
    }
    channel.send({ t: 'took-over', pid: process.pid, generation: kernel.generation });
    return kernel;
  } finally {
    // Not booted (a bad frame, a closed channel, a bad boot spec): unmap what was mapped.
    device?.close();
    channel.close();
  }
}

/**
 * What a preloaded successor does before it says "ready", while the
 * predecessor still serves, so that none of it falls in the downtime: maps
 * the whole device (each mapping of a large device costs a garbage
 * collection), rehearses handovers (V8 compiles a function at its first
 * call and optimizes it once it ran a while: enough runs that the boot's
 * code is optimized, and a pause for the compiler threads to finish, so
 * that no compilation competes with the boot for the CPU) and, before them,
 * the control channel's exchange (receiving "prepare" and "go" as it will),
 * and the read of the predecessor's status (which they have no area for),
 * then collects the garbage, so that no collection is due during the boot.
 */
async function readyTakeover(device: MappedDevice): Promise<void> {
  mapWhole(device);
  // The channel first: on Node.js 24 the first frame this process sent deoptimized some 35
  // functions the handover rehearsals had optimized (V8: "dependent prototype chain
  // changed"), and the real boot ran them cold again (KHO's tree walked in 4 ms, not 0.3).
  await rehearseControlChannel();
  rehearseHandovers(TAKEOVER_REHEARSALS);
  rehearseStatusRead(device);
  warmNodeTimers();
  await new Promise((resolve) => setTimeout(resolve, COMPILER_SETTLE_MS));
  await collectGarbage();
}

/**
 * Node's own functions that start() calls after "go" and a preloaded
 * successor had not called yet (timers of two durations, an immediate, a
 * listener added and removed), called now with nothing to do: node
 * compiles its library lazily too, about 0.2 ms inside the downtime.
 */
function warmNodeTimers(): void {
  const nothing = (): void => {};
  clearImmediate(setImmediate(nothing));
  const a = setInterval(nothing, 2 ** 30);
  const b = setTimeout(nothing, 2 ** 29);
  a.unref();
  b.unref();
  clearInterval(a);
  clearTimeout(b);
  process.on(WARM_EVENT, nothing);
  process.off(WARM_EVENT, nothing);
}

/** An event nothing emits. */
const WARM_EVENT = 'livekexec:warm-up';

/**
 * Handovers a preloaded successor rehearses: from about 5 on, its boot ran
 * optimized code in every run on V8 11 (Node.js 20). V8 13 and later
 * (Node.js 24, 26) tier up later (Maglev, then TurboFan): after 10, the
 * last compilations of the boot's code fell inside its downtime, on a
 * compiler thread that shares one vCPU with it (Node.js 24, medians of 15
 * at 64 MiB and 1 GiB: 3.9-6.7 ms, the slowest 9-14; after 30, 3.8-4.3,
 * the slowest 5.2-6.6). On V8 11 and 12 (Node.js 20, 22) 30 made it slower
 * (node 20: 3.6-4.1 -> 4.3-4.9 ms; node 22: 4.2-5.7 -> 5.2-6.4).
 */
const TAKEOVER_REHEARSALS = Number(process.versions.v8.split('.')[0]) >= 13 ? 30 : 10;
/** How long the compiler threads get to finish the rehearsals' optimizations. */
const COMPILER_SETTLE_MS = 50;

/**
 * At a preloading kexec load: rehearses, so that exec runs compiled code
 * (in a process booted cold or in place it never ran; in any other, V8 may
 * have dropped it since). It takes this serving process some 5 to 40 ms at
 * load (the most the first time) instead of in exec.
 */
function readyExec(): void {
  // It runs to its end before it returns (its receives block); a fault of the channel shows
  // in exec. First, as in readyTakeover.
  rehearseControlChannel().catch(() => {});
  rehearseHandovers(1);
}

/**
 * A full collection: node offers one only behind a V8 flag, as `gc` in the
 * contexts made after it is set. The flag is set back at once: V8 refuses a
 * code cache made under other flags, and node's own caches of its built-in
 * modules (node:http and the like, loaded when the program starts serving)
 * would all be compiled again. Left alone when the program exposed gc itself.
 */
async function collectGarbage(): Promise<void> {
  try {
    const [v8, vm] = await Promise.all([import('node:v8'), import('node:vm')]);
    const exposed = vm.runInNewContext('typeof gc') === 'function';
    if (!exposed) v8.setFlagsFromString('--expose-gc');
    try {
      (vm.runInNewContext('gc') as () => void)();
    } finally {
      if (!exposed) v8.setFlagsFromString('--no-expose-gc');
    }
  } catch {
    // Only an optimization: without it a collection may fall in the downtime.
  }
}

/**
 * Waits for "go", placing passed descriptors. Blocking, so that "go" wakes
 * this process at once (an asynchronous receive took a worker thread's
 * wake-up, then the event loop's: 0.6-0.9 ms of a 5 ms handover on one
 * vCPU); until "prepare" (the predecessor's exec has begun) in slices of
 * WAIT_SLICE_MS with a turn of the event loop between them, so that timers,
 * signal handlers and I/O of a waiting successor still run, up to a slice
 * late. From "prepare" on it blocks until "go" ("prepared" tells the
 * predecessor); "cancel" goes back to the slices.
 * @returns the boot spec.
 * @throws KexecError EIO when the channel closes, a frame is unexpected, or
 *   no "go" or "cancel" follows "prepare" within `timeoutMs`.
 */
async function awaitGo(channel: ControlChannel, timeoutMs: number): Promise<string> {
  let prepared = false;
  for (;;) {
    const got: Received | null = channel.receiveSync(prepared ? timeoutMs : WAIT_SLICE_MS);
    if (got === null) {
      if (!prepared) {
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      const message = `control channel: no go within ${timeoutMs} ms of prepare`;
      trySend(channel, { t: 'failed', message });
      throw new KexecError('EIO', message);
    }
    const msg: ControlMessage = got.msg;
    const fds = got.fds;
    if (msg.t === 'go') return msg.boot;
    if (msg.t === 'fds') {
      for (const [from, to] of placeReceivedFds(msg.numbers, fds)) {
        received.set(from, to);
        movedFd(from, to);
      }
    } else if (msg.t === 'prepare' || msg.t === 'cancel') {
      prepared = msg.t === 'prepare';
      // Said for the record (the predecessor's exec does not wait for it): it shows the switch.
      if (prepared) trySend(channel, { t: 'prepared' });
    } else {
      throw new KexecError('EIO', `control channel: unexpected ${msg.t} before go`);
    }
  }
}

/** How long a waiting successor blocks at a time before its event loop takes a turn (ms). */
const WAIT_SLICE_MS = 50;

function trySend(channel: ControlChannel, msg: ControlMessage): void {
  try {
    channel.send(msg);
  } catch {
    // The predecessor is gone; the caller's error says what happened.
  }
}

/** The path of an inherited descriptor. @throws KexecError EINVAL when it is not open. */
function devicePathOf(fd: number): string {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    throw new KexecError('EINVAL', `${ENV_DEVICE_FD}: descriptor ${fd} is not open`);
  }
}
