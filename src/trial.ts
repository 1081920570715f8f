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
 * error, a missing file or export) are caught by trial-boot.js, which the
 * predecessor's exec loads first (--import in NODE_OPTIONS); boot() arms
 * the rest. The state is one object per process (a global symbol), as the
 * two may be different copies of livekexec.
 */
import { fstatSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { F_GETFD, F_SETFD, FD_CLOEXEC, getProcLibc } from './kexec/_libc.js';

/** Why the last try failed, for the trial loader. */
export const ENV_TRIAL_FAILED = 'LIVEKEXEC_TRIAL_FAILED';

interface Inherited {
  readonly fd: number;
  readonly dev: number;
  readonly ino: number;
}

interface TrialState {
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
  loader: string;
  /** trial-decide's bundle (CommonJS: required at exit, synchronously). */
  decide: string;
  /** The NODE_OPTIONS word that loads trial-boot.js. */
  trialBoot: string;
  deadline: ReturnType<typeof setTimeout> | null;
  failing: boolean;
}

const KEY = Symbol.for('livekexec.trial');

function state(): TrialState | undefined {
  return (globalThis as { [KEY]?: TrialState })[KEY];
}

/** The options node was given to load trial-boot.js, as a NODE_OPTIONS word. */
export function trialImportOption(trialBootUrl: string): string {
  return `--import=${trialBootUrl}`;
}

/** NODE_OPTIONS with `word` added (or removed, when `add` is false). */
export function withNodeOption(options: string | undefined, word: string, add: boolean): string {
  const words = (options ?? '').split(/\s+/).filter((w) => w !== '' && w !== word);
  if (add) words.push(word);
  return words.join(' ');
}

/**
 * Arms the trial of this process, once: records the environment and the
 * inherited descriptors, and fails the try at a bad exit. `env` is what the
 * next try starts with; `inherited` the descriptors it must keep (all open
 * ones without FD_CLOEXEC when undefined: what crossed the exec).
 */
export function armTrial(
  loaderUrl: string,
  env: NodeJS.ProcessEnv,
  inherited?: readonly number[],
): void {
  if (state()?.armed) return;
  const copy: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) copy[k] = v;
  const s: TrialState = {
    env: copy,
    inherited: describeFds(inherited ?? inheritableFds()),
    armed: true,
    good: false,
    booted: false,
    lastError: null,
    markGood: null,
    loader: fileURLToPath(loaderUrl),
    decide: fileURLToPath(new URL('../pkg/trial-decide.cjs', loaderUrl)),
    trialBoot: trialImportOption(new URL('./trial-boot.js', loaderUrl).href),
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
  failTry(`unhandled rejection before boot (${errorText(reason)})`);
  // Still here: the exec failed; fail as node would.
  throw reason;
}

function errorText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/**
 * boot() booted the handover on trial: `markGood` ends it; the deadline
 * fails it (`requireGood`) or marks it good.
 */
export function trialBooted(
  markGood: () => void,
  deadlineMs: number,
  requireGood: boolean,
  env?: Readonly<Record<string, string>>,
): void {
  const s = state();
  if (!s) return;
  s.booted = true;
  process.off('unhandledRejection', rejectedBeforeBoot);
  s.markGood = markGood;
  if (env) Object.assign(s.env, env);
  const timer = setTimeout(() => {
    if (s.good) return;
    if (requireGood) failTry(`not marked good within ${deadlineMs} ms`);
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

/** True while this process runs a handover on trial not yet marked good. */
export function onTrial(): boolean {
  const s = state();
  return s !== undefined && s.armed && !s.good;
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
  failTry(why);
}

/**
 * This try failed: exec the trial loader in this process, which counts it
 * and execs the next try or the fallback. Returns only when the exec itself
 * failed (the handover then stays pending for the next boot of the device).
 */
export function failTry(reason: string): void {
  const s = state();
  if (!s || s.good || s.failing) return;
  s.failing = true;
  try {
    const libc = getProcLibc();
    keepInherited(s.inherited);
    process.stderr.write(`livekexec: this try failed: ${reason}\n`);
    execNext(s, reason);
    // No bundle to decide with here: the trial loader, a program, decides.
    const env = { ...s.env, [ENV_TRIAL_FAILED]: reason.slice(0, 1000) };
    const lines = Object.entries(env).map(([k, v]) => `${k}=${v}`);
    libc.execve(process.execPath, [process.execPath, s.loader], lines);
    process.stderr.write(
      `livekexec: cannot start the trial loader (errno ${libc.errno()}); the handover stays pending\n`,
    );
  } catch (err) {
    process.stderr.write(
      `livekexec: cannot fall back: ${String(err)}; the handover stays pending\n`,
    );
  }
}

/**
 * Decides here what follows (trial-decide's bundle, required synchronously:
 * one node start less than the trial loader) and execs it. Returns when
 * there is no bundle; a decision that fails is reported and thrown.
 */
function execNext(s: TrialState, reason: string): void {
  let decideNext: typeof import('./trial-decide.js').decideNext;
  try {
    ({ decideNext } = createRequire(import.meta.url)(
      s.decide,
    ) as typeof import('./trial-decide.js'));
  } catch {
    return;
  }
  const next = decideNext(s.env, reason, s.trialBoot);
  process.stderr.write(`${next.message}\n`);
  if (next.command.cwd !== '') process.chdir(next.command.cwd);
  const libc = getProcLibc();
  libc.execve(
    next.command.file,
    next.command.argv,
    Object.entries(next.env).map(([k, v]) => `${k}=${v}`),
  );
  throw new Error(`execve(${next.command.file}) failed (errno ${libc.errno()})`);
}

/** Open descriptors without FD_CLOEXEC: what crossed the exec into this process. */
function inheritableFds(): number[] {
  const libc = getProcLibc();
  const out: number[] = [];
  for (const name of readdirSync('/proc/self/fd')) {
    const fd = Number(name);
    if (!Number.isSafeInteger(fd) || fd < 3) continue;
    const flags = libc.fcntl(fd, F_GETFD, 0);
    if (flags >= 0 && (flags & FD_CLOEXEC) === 0) out.push(fd);
  }
  return out;
}

function describeFds(fds: readonly number[]): Inherited[] {
  const out: Inherited[] = [];
  for (const fd of fds) {
    try {
      const st = fstatSync(fd);
      out.push({ fd, dev: st.dev, ino: st.ino });
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** Node may have set FD_CLOEXEC on stdio: cleared before an execve, or the next program gets /dev/null. */
export function keepStdio(): void {
  const libc = getProcLibc();
  for (const fd of [0, 1, 2]) {
    const flags = libc.fcntl(fd, F_GETFD, 0);
    if (flags >= 0) libc.fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
  }
}

/** Makes stdio and each inherited descriptor (when it is still the same file) inheritable again. */
function keepInherited(fds: readonly Inherited[]): void {
  const libc = getProcLibc();
  keepStdio();
  for (const f of fds) {
    try {
      const st = fstatSync(f.fd);
      if (st.dev !== f.dev || st.ino !== f.ino) continue;
    } catch {
      continue;
    }
    const flags = libc.fcntl(f.fd, F_GETFD, 0);
    if (flags >= 0) libc.fcntl(f.fd, F_SETFD, flags & ~FD_CLOEXEC);
  }
}
