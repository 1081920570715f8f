import { type ChildProcess, type StdioOptions, spawn } from 'node:child_process';
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture } from '../_helpers/paths.js';

/** One JSON line a fixture printed. */
export interface FixtureEvent {
  event: string;
  pid: number;
  t: number;
  [k: string]: unknown;
}

/** A fixture program running under test, its stdout parsed into events. */
export class Fixture {
  readonly events: FixtureEvent[] = [];
  readonly child: ChildProcess;
  stderr = '';
  #waiters: (() => void)[] = [];
  #ended = false;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    name: string,
    args: string[],
    options: {
      env?: NodeJS.ProcessEnv;
      stdio?: StdioOptions;
      nodeArgs?: string[];
      /** Starts the fixture another way (a service manager, a wrapper); argv[0] is the script. */
      start?: (argv: string[], env: NodeJS.ProcessEnv) => ChildProcess;
    } = {},
  ) {
    const env = { ...process.env, ...options.env };
    delete env.NOTIFY_SOCKET;
    if (options.env?.NOTIFY_SOCKET) env.NOTIFY_SOCKET = options.env.NOTIFY_SOCKET;
    const nodeArgs = options.nodeArgs ?? [];
    const argv = [...nodeArgs, fixture('process', name), ...args];
    this.child =
      options.start?.(argv, env) ??
      spawn(process.execPath, argv, {
        stdio: options.stdio ?? ['pipe', 'pipe', 'pipe'],
        env,
      });
    let buf = '';
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (d: string) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          this.events.push(JSON.parse(line) as FixtureEvent);
        } catch {
          this.events.push({ event: 'text', pid: 0, t: 0, line });
        }
        this.#wake();
      }
    });
    // stdout ends when every generation (including a preloaded successor) has closed it.
    this.child.stdout!.on('end', () => {
      this.#ended = true;
      this.#wake();
    });
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (d: string) => {
      this.stderr += d;
    });
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => resolve({ code, signal }));
    });
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** The first event matching, waiting up to `timeoutMs`. */
  async waitFor(
    match: string | ((e: FixtureEvent) => boolean),
    timeoutMs = 20_000,
  ): Promise<FixtureEvent> {
    const pred = typeof match === 'string' ? (e: FixtureEvent) => e.event === match : match;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find(pred);
      if (found) return found;
      if (this.#ended) throw new Error(`output ended before ${String(match)}; ${this.report()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${String(match)}; ${this.report()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Every event of one kind. */
  all(event: string): FixtureEvent[] {
    return this.events.filter((e) => e.event === event);
  }

  /** Waits until all writers closed stdout. */
  async ended(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#ended) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`stdout still open; ${this.report()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Closes stdin, which lets a waiting last generation exit. */
  finish(): void {
    this.child.stdin?.end();
  }

  report(): string {
    return `events: ${this.events.map((e) => e.event).join(',')}; stderr: ${this.stderr.slice(-2000)}`;
  }

  /** Kills every PID the fixture reported (successors are not our children) and the child. */
  cleanup(): void {
    for (const pid of new Set(this.events.map((e) => e.pid))) {
      if (pid > 0) tryKill(pid);
    }
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

function tryKill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** A fresh device path on tmpfs (or the temp directory), unique to this test run. */
export function tempDevice(tag: string): string {
  const dir = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  return join(dir, `livekexec-test-${tag}-${process.pid}-${Math.random().toString(36).slice(2)}`);
}

export function removeDevice(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // never created
  }
}

/** Whether `pid` still runs (a zombie, dead but not yet reaped, counts as gone). */
export function running(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}
