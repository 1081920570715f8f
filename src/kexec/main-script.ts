/**
 * Which script a process runs, as upgrades need it: the script its
 * successors start by default (the path as the program was started, so a
 * deploy that flips a `current` symlink takes effect), and the real path of
 * the code running now (the fallback, which must not become the new code).
 *
 * A fallback runs the last good release by its real path; its successors
 * must start the path the program was started as, which the fallback learns
 * from LIVEKEXEC_MAIN (set by trial-decide.ts from LIVEKEXEC_FALLBACK_MAIN,
 * which each exec on trial passes on). Under pm2, node runs pm2's container,
 * which imports the program named by pm_exec_path.
 */
import { realpathSync } from 'node:fs';

/** The script a fallback's successors start by default (set for a fallback only). */
export const ENV_MAIN = 'LIVEKEXEC_MAIN';
/** The script the fallback of a try will hand on as ENV_MAIN (set by each exec on trial). */
export const ENV_FALLBACK_MAIN = 'LIVEKEXEC_FALLBACK_MAIN';

let started: string | undefined | null = null;
let realMain: string | undefined | null = null;

/**
 * The script successors start by default: LIVEKEXEC_MAIN when this process
 * is a fallback, else process.argv[1]. Read once, at the first call (boot()
 * makes it at start-up), and LIVEKEXEC_MAIN removed from the environment:
 * the program's own children are not fallbacks.
 */
export function startedScript(): string | undefined {
  if (started !== null) return started;
  started = process.env[ENV_MAIN] || process.argv[1];
  delete process.env[ENV_MAIN];
  return started;
}

/**
 * The real path of the program's script running now, resolved once, at the
 * first call (boot() makes it at start-up: by the time of an upgrade the
 * deploy may have flipped a `current` symlink to the new release). Under
 * pm2 that is the script pm2's container imports, not the container.
 */
export function mainScriptRealPath(): string | undefined {
  if (realMain !== null) return realMain;
  startedScript();
  const main = runningScript();
  try {
    realMain = main ? realpathSync(main) : undefined;
  } catch {
    realMain = main; // gone: exec will say so
  }
  return realMain;
}

/** process.argv[1], or under pm2's container (fork or cluster mode) the program it imports. */
function runningScript(): string | undefined {
  const main = process.argv[1];
  const imported = process.env.pm_exec_path;
  if (main && imported && /[\\/]pm2[\\/]lib[\\/]ProcessContainer(Fork)?\.js$/.test(main)) {
    return imported;
  }
  return main;
}
