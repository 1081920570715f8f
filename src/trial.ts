/**
 * A successor on trial in a real process (A/B boot counting; the device's
 * side is in kexec/boot-counting.ts). A try fails when the process exits
 * with a non-zero status, an uncaught exception or a signal it handles,
 * before it is marked good, or, when its predecessor required it, when the
 * deadline passes unmarked. A failed try execs the trial loader in its place
 * (same PID, same handover, every inherited descriptor kept), which counts
 * the failure in the device and execs the next try or the fallback.
 *
 * Failures before the program's main module has even loaded (a syntax
 * error, a missing file or export) are caught by trial-boot.cjs, which the
 * predecessor's exec preloads (--require in NODE_OPTIONS); boot() arms
 * the rest. The state is one object per process (a global symbol), as the
 * two may be different copies of livekexec. Failing a try (trial-fail.ts)
 * needs the libc binding: trial-boot.cjs loads it only then, from
 * trial-fail.cjs, so that arming costs a successor's start-up next to
 * nothing.
 */
import { closeSync, fstatSync, openSync, readdirSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { ENV_TRIAL_FDS, withNodeOption } from './trial-options.js';

export interface Inherited {
  readonly fd: number;
  readonly dev: number;
  readonly ino: number;
}

export interface TrialState {
  /** The environment this process started with: the next try's and the fallback's. */
  env: Record<string, string>;
  /** Descriptors inherited across the exec, to inherit again. */
  inherited: Inherited[];
  /** A handover is on trial in this process. */
  armed: boolean;
  good: boolean;
  /** boot() has booted the handover. */
  booted: boolean;
  /** The last uncaught exception, for the reason. */
  lastError: string | null;
  /** Marks the booted generation good (set by boot()). */
  markGood: (() => void) | null;
  /** The trial loader's URL (trial-decide and trial-boot sit in dist/pkg, one level from it). */
  loaderUrl: string;
  /** Fails the try (trial-fail.ts's failTry); loaded from trial-fail.cjs when unset. */
  fail: ((reason: string) => void) | null;
  deadline: ReturnType<typeof setTimeout> | null;
  failing: boolean;
}

const KEY = Symbol.for('livekexec.trial');
/** The close-on-exec bit of /proc/<pid>/fdinfo's flags: O_CLOEXEC, 02000000 on Linux (x86-64 and arm64). */
const O_CLOEXEC = 0o2000000;

export function state(): TrialState | undefined {
  return (globalThis as { [KEY]?: TrialState })[KEY];
}

/**
 * What an in-place successor on trial gets in its environment on top of the
 * handover's: NODE_OPTIONS preloading trial-boot.cjs (`trialBoot`, the
 * word), and the descriptors it inherits beyond stdio (`kept`).
 */
export function trialSuccessorEnv(
  nodeOptions: string | undefined,
  kept: readonly number[],
  trialBoot: string,
): Record<string, string> {
  return {
    NODE_OPTIONS: withNodeOption(nodeOptions, trialBoot, true),
    [ENV_TRIAL_FDS]: describeFds(kept)
      .map((f) => `${f.fd}:${f.dev}:${f.ino}`)
      .join(','),
  };
}

/**
 * Arms the trial of this process, once: records the environment and the
 * inherited descriptors, and fails the try at a bad exit. `env` is what the
 * next try starts with; `inherited` the descriptors it must keep, numbers
 * or described already (describeFds) (when undefined, those `env` names in
 * LIVEKEXEC_TRIAL_FDS, else every open one without FD_CLOEXEC: what crossed
 * the exec).
 */
export function armTrial(
  loaderUrl: string,
  env: NodeJS.ProcessEnv,
  inherited?: readonly (number | Inherited)[],
  fail: ((reason: string) => void) | null = null,
): void {
  if (state()?.armed) return;
  const copy: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) copy[k] = v;
  const s: TrialState = {
    env: copy,
    inherited:
      inherited !== undefined
        ? describeFds(inherited)
        : (parseFds(copy[ENV_TRIAL_FDS]) ?? describeFds(inheritableFds())),
    armed: true,
    good: false,
    booted: false,
    lastError: null,
    markGood: null,
    loaderUrl,
    fail,
    deadline: null,
    failing: false,
  };
  (globalThis as { [KEY]?: TrialState })[KEY] = s;
  process.on('uncaughtExceptionMonitor', (err) => {
    s.lastError = errorText(err);
  });
  process.on('unhandledRejection', rejectedBeforeBoot);
  process.on('exit', (code) => onExit(s, code));
}

/**
 * A rejection nobody handled before boot() booted the handover: the
 * program failed to start. Node would exit; a wrapper that imports the main
 * module itself and logs such rejections (pm2's container) keeps the
 * process alive but serving nothing, so the try fails here. Removed once
 * booted: from then on node's own handling (or the program's) applies.
 */
function rejectedBeforeBoot(reason: unknown): void {
  const s = state();
  if (s && !s.good && !s.failing)
    failWith(s, `unhandled rejection before boot (${errorText(reason)})`);
  // Still here: the exec failed; fail as node would.
  throw reason;
}

function errorText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/**
 * boot() booted the handover on trial: `markGood` ends it; the deadline
 * fails it (`requireGood`, with `fail`) or marks it good.
 */
export function trialBooted(
  markGood: () => void,
  deadlineMs: number,
  requireGood: boolean,
  env: Readonly<Record<string, string>>,
  fail: (reason: string) => void,
): void {
  const s = state();
  if (!s) return;
  s.booted = true;
  process.off('unhandledRejection', rejectedBeforeBoot);
  s.markGood = markGood;
  s.fail = fail;
  Object.assign(s.env, env);
  const timer = setTimeout(() => {
    if (s.good) return;
    if (requireGood) fail(`not marked good within ${deadlineMs} ms`);
    else markGood();
  }, deadlineMs);
  timer.unref();
  s.deadline = timer;
}

/** The trial ended well: nothing more to watch. */
export function trialGood(): void {
  const s = state();
  if (!s) return;
  s.good = true;
  if (s.deadline) clearTimeout(s.deadline);
  s.deadline = null;
}

/** Sets a variable of the environment a failed try starts the next try or the fallback with. */
export function setTrialEnv(name: string, value: string): void {
  const s = state();
  if (s?.armed) s.env[name] = value;
}

/** True while this process runs a handover on trial not yet marked good. */
export function onTrial(): boolean {
  const s = state();
  return s?.armed === true && !s.good;
}

function onExit(s: TrialState, code: number): void {
  if (s.good || s.failing) return;
  if (code === 0 && s.booted && s.markGood) {
    // A clean exit of a booted successor is a good run.
    try {
      s.markGood();
      return;
    } catch {
      // fall through: count it as a failure rather than lose the handover
    }
  }
  const why =
    code === 0
      ? 'exited before booting the handover'
      : `exited with status ${code}${s.lastError ? ` (${s.lastError})` : ''}`;
  failWith(s, why);
}

/**
 * Fails the try with the state's own failTry, or trial-fail.cjs's (in
 * dist/pkg), required now: an exit listener runs synchronously.
 */
function failWith(s: TrialState, reason: string): void {
  let fail = s.fail;
  if (fail === null) {
    try {
      const file = fileURLToPath(new URL('../pkg/trial-fail.cjs', s.loaderUrl));
      ({ failTry: fail } = createRequire(import.meta.url)(
        file,
      ) as typeof import('./trial-fail.js'));
    } catch (err) {
      process.stderr.write(
        `livekexec: cannot fall back: ${String(err)}; the handover stays pending\n`,
      );
      return;
    }
  }
  fail(reason);
}

/**
 * Open descriptors without FD_CLOEXEC: what crossed the exec into this
 * process. Read from /proc/self/fdinfo (its flags show O_CLOEXEC), not with
 * fcntl: trial-boot.cjs runs this before the main module, and loading the
 * libc binding there would put koffi's load before it.
 */
function inheritableFds(): number[] {
  const out: number[] = [];
  const info = Buffer.alloc(256);
  for (const name of readdirSync('/proc/self/fd')) {
    const fd = Number(name);
    if (!Number.isSafeInteger(fd) || fd < 3) continue;
    let n: number;
    try {
      // One read of the first line or two (readFileSync grows its buffer in steps on /proc).
      const f = openSync(`/proc/self/fdinfo/${fd}`, 'r');
      try {
        n = readSync(f, info, 0, info.length, 0);
      } finally {
        closeSync(f);
      }
    } catch {
      continue; // closed meanwhile (the directory's own descriptor)
    }
    const flags = /^flags:\s*([0-7]+)$/m.exec(info.toString('latin1', 0, n));
    if (flags && (Number.parseInt(flags[1]!, 8) & O_CLOEXEC) === 0) out.push(fd);
  }
  return out;
}

/** LIVEKEXEC_TRIAL_FDS read back; null when absent or malformed. */
function parseFds(text: string | undefined): Inherited[] | null {
  if (text === undefined || !/^(\d+:\d+:\d+(,\d+:\d+:\d+)*)?$/.test(text)) return null;
  if (text === '') return [];
  return text.split(',').map((f) => {
    const [fd, dev, ino] = f.split(':').map(Number) as [number, number, number];
    return { fd, dev, ino };
  });
}

/** Each descriptor's identity; one described already is taken as it is. */
export function describeFds(fds: readonly (number | Inherited)[]): Inherited[] {
  const out: Inherited[] = [];
  for (const fd of fds) {
    if (typeof fd !== 'number') {
      out.push(fd);
      continue;
    }
    try {
      const st = fstatSync(fd);
      out.push({ fd, dev: st.dev, ino: st.ino });
    } catch {
      // closed meanwhile
    }
  }
  return out;
}
