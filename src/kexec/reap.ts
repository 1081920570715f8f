/**
 * Children an earlier program of this process leaves behind across an
 * in-place execve: the truncation guard's sentinel (memory/_truncation.ts)
 * sees its stdin close at the execve and exits, but its parent is still
 * this PID, and node (libuv) waits only for the children it spawned itself.
 * Unreaped, each would stay a zombie for the life of the service, one more
 * at every in-place handover. The exec names them in ENV_REAP; the next
 * program reaps each once it has exited, and passes on the ones it has not.
 */
import { readFileSync } from 'node:fs';
import { WNOHANG } from '../sys/libc.js';
import { getProcLibc } from '../sys/socket.js';

export const ENV_REAP = 'LIVEKEXEC_REAP';

/** How often, and how many times, a child still running is looked at again. */
const REAP_EVERY_MS = 100;
const REAP_TRIES = 50;

/** What this program has still to reap. */
let pending: number[] = [];

/** The PIDs of a reap list: comma-separated decimal numbers; anything else in it is dropped (it is untrusted). */
export function parseReapList(text: string | undefined): number[] {
  if (text === undefined || text === '') return [];
  const out: number[] = [];
  for (const word of text.split(',')) {
    if (!/^[1-9]\d{0,9}$/.test(word)) continue;
    const pid = Number(word);
    if (pid <= 2 ** 22 && pid !== process.pid && !out.includes(pid)) out.push(pid);
  }
  return out;
}

/** The reap list for the next program: `children` of this one, and what it has not reaped yet. */
export function reapListFor(children: readonly number[]): string {
  return [...new Set([...pending, ...children])].join(',');
}

/**
 * Takes ENV_REAP out of the environment (the program's own children have
 * nothing to reap) and reaps the children it names: those that have exited
 * now, the others as they exit (a timer that keeps nothing alive). A trial
 * armed before (trial-boot) keeps its own copy; one armed after gets
 * reapEnv().
 */
export function reapInherited(env: NodeJS.ProcessEnv = process.env): void {
  pending = parseReapList(env[ENV_REAP]);
  delete env[ENV_REAP];
  reapExited();
  if (pending.length === 0) return;
  let tries = 0;
  const timer = setInterval(() => {
    reapExited();
    if (pending.length === 0 || ++tries >= REAP_TRIES) clearInterval(timer);
  }, REAP_EVERY_MS);
  timer.unref();
}

/** ENV_REAP for a failed try's next try or fallback: what this program has still to reap. */
export function reapEnv(): Record<string, string> {
  return pending.length === 0 ? {} : { [ENV_REAP]: pending.join(',') };
}

/** waitpid for each pending child that is this process's and has exited; drops those that are not. */
function reapExited(): void {
  pending = pending.filter((pid) => {
    const state = childState(pid);
    if (state === null) return false; // gone, or another process's now
    if (state !== 'Z') return true;
    getProcLibc().waitpid(pid, WNOHANG);
    return false;
  });
}

/** The state letter of `pid` (/proc/PID/stat) when it is a child of this process, else null. */
function childState(pid: number): string | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  // "pid (comm) S ppid ...": comm may hold spaces and parentheses, so from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[1]) === process.pid ? (fields[0] ?? null) : null;
}
