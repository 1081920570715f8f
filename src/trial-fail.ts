/**
 * A try of a successor on trial failed (trial.ts): execs what follows in
 * this process, same PID, every inherited descriptor kept. Needs the libc
 * binding (execve, fcntl); trial-boot.cjs requires this module's bundle
 * (dist/pkg/trial-fail.cjs) only when a try fails.
 */
import { fstatSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { F_GETFD, F_SETFD, FD_CLOEXEC } from './sys/libc.js';
import { getProcLibc } from './sys/socket.js';
import { type Inherited, state, type TrialState } from './trial.js';
import { trialBootPath, trialPreloadOption } from './trial-options.js';

/** Why the last try failed, for the trial loader. */
export const ENV_TRIAL_FAILED = 'LIVEKEXEC_TRIAL_FAILED';

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
    libc.execve(process.execPath, [process.execPath, fileURLToPath(s.loaderUrl)], lines);
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
    const file = fileURLToPath(new URL('../pkg/trial-decide.cjs', s.loaderUrl));
    ({ decideNext } = createRequire(import.meta.url)(file) as typeof import('./trial-decide.js'));
  } catch {
    return;
  }
  const next = decideNext(s.env, reason, trialPreloadOption(trialBootPath(s.loaderUrl)));
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
