/**
 * A device file shortened under its owner kills the owner: a page of the
 * shared mapping past the new end raises SIGBUS ("Bus error", exit 135), and
 * no JavaScript can run then. Three defences, weakest last:
 *
 * 1. While a process owns a device its file is mode 0400 (restored to 0600
 *    when the last owner lets it go), so another process of the same user
 *    can neither truncate it nor open it for writing: EACCES. Root is not
 *    stopped by modes.
 * 2. A look at the file's size every CHECK_INTERVAL_MS: when it shrank
 *    anyway, its size is put back (the lost pages read as zeros) and the
 *    owner is told, naming the device, the sizes and the cause, before the
 *    program touches the hole if the check gets there first. Not an inotify
 *    watch: the watch's descriptor is closed at execve, and closing an
 *    inotify instance that held a watch waits for an SRCU grace period in
 *    the kernel (fsnotify's mark reaper): 12-23 ms of every in-place
 *    handover here, in the downtime (BENCHMARKS.md, session 13). An fstat
 *    every 100 ms costs nothing like it.
 * 3. A sentinel process (a few lines of sh) that outlives the owner: when the
 *    owner is gone and the file is shorter than the owner mapped it, it
 *    prints why on the owner's stderr, so a SIGBUS death never goes unexplained.
 */
import type { ChildProcess } from 'node:child_process';
import { closeSync, fchmodSync, constants as fsConstants, fstatSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import {
  F_GETFD,
  F_SETFD,
  FD_CLOEXEC,
  getLibc,
  LOCK_EX,
  LOCK_NB,
  LOCK_UN,
  O_NOFOLLOW,
  O_RDONLY,
} from '../sys/libc.js';

/** Mode of a device file while a process owns it. */
export const OWNED_MODE = 0o400;
/** Mode of a device file at rest. */
export const IDLE_MODE = 0o600;

/** What the owner is told when its device shrank under it. */
export interface DeviceShrink {
  readonly path: string;
  /** Bytes the owner mapped. */
  readonly mapped: number;
  /** Bytes the file had when the shrink was seen. */
  readonly found: number;
  /** Whether the size could be put back. */
  readonly restored: boolean;
  readonly message: string;
}

/** Makes the owner's file read-only for everyone, its owner included (the mapping keeps its access). */
export function markOwned(fd: number): void {
  try {
    fchmodSync(fd, OWNED_MODE);
  } catch {
    // A file system without modes: the size checks and the sentinel still stand.
  }
}

/**
 * After the owner closed its descriptor: mode 0600 again, unless another
 * process holds the device (a preloaded successor took it over).
 */
export function markIdle(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, O_RDONLY | O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch {
    return;
  }
  try {
    const libc = getLibc();
    if (libc.flock(fd, LOCK_EX | LOCK_NB) !== 0) return;
    if ((fstatSync(fd).mode & 0o777) === OWNED_MODE) fchmodSync(fd, IDLE_MODE);
    libc.flock(fd, LOCK_UN);
  } catch {
    // Best effort: a 0400 device is reclaimed by the next owner anyway.
  } finally {
    closeSync(fd);
  }
}

/**
 * A device left at 0400 by an owner that died (kill -9): made 0600 again so
 * it can be opened for writing, but only when no process holds it.
 * @returns false when someone holds it (the caller reports EBUSY).
 */
export function reclaimAbandoned(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, O_RDONLY | O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch {
    return true; // the caller's own open reports why
  }
  try {
    const libc = getLibc();
    if (libc.flock(fd, LOCK_EX | LOCK_NB) !== 0) return false;
    if ((fstatSync(fd).mode & 0o777) === OWNED_MODE) fchmodSync(fd, IDLE_MODE);
    libc.flock(fd, LOCK_UN);
    return true;
  } finally {
    closeSync(fd);
  }
}

function shrinkMessage(path: string, mapped: number, found: number, restored: boolean): string {
  return (
    `${path} was truncated from ${mapped} to ${found} bytes by another process while this process owns it; ` +
    (restored
      ? `its size is restored, but its contents past ${found} bytes are lost (zeros): what was preserved there is damaged`
      : `its size could not be restored: any access to its pages past ${found} bytes kills this process with SIGBUS`)
  );
}

/** How long after boot the sentinel starts. */
const SENTINEL_DELAY_MS = 200;
/** How often the owner looks at its device file's size. */
export const CHECK_INTERVAL_MS = 100;

/** The sentinel: waits for the owner's end (its stdin closes), then explains a shrunk device. */
const SENTINEL = [
  // Inherited descriptors first (a listening socket kept open here would outlive its
  // server); POSIX sh closes only single-digit ones, the device's own is close-on-exec.
  'for f in /proc/$$/fd/*; do case ${f##*/} in [3-9]) eval "exec ${f##*/}>&-";; esac; done',
  'read -r _',
  'size=$(stat -c %s -- "$1" 2>/dev/null) || exit 0',
  '[ "$size" -lt "$2" ] || exit 0',
  'printf "livekexec: the owner of %s (PID %s) is gone and %s is %s bytes, not the %s it mapped: the file was truncated under its owner, and an access to its pages past the new end kills the owner with SIGBUS (Bus error, exit status 135)\\n" "$1" "$3" "$1" "$size" "$2" >&2',
].join('\n');

/** Guards one owned device file against shrinking; stop() ends the checks and the sentinel. */
export class TruncationGuard {
  #checks: ReturnType<typeof setInterval> | null = null;
  #sentinel: ChildProcess | null = null;

  constructor(
    private readonly fd: number,
    private readonly path: string,
    private readonly size: number,
    private readonly onShrink: (s: DeviceShrink) => void,
    private readonly onSentinel?: (pid: number) => void,
  ) {}

  #timer: ReturnType<typeof setTimeout> | null = null;

  /**
   * Starts the size checks now and the sentinel a little later (where the
   * platform allows it): spawning loads node:child_process and forks,
   * milliseconds a successor's first requests should not wait for. Neither
   * keeps the process alive.
   */
  start(sentinelAfterMs = SENTINEL_DELAY_MS, checkEveryMs = CHECK_INTERVAL_MS): void {
    this.#checks = setInterval(() => this.check(), checkEveryMs);
    this.#checks.unref();
    this.#timer = setTimeout(() => this.#startSentinel(), sentinelAfterMs);
    this.#timer.unref();
  }

  #startSentinel(): void {
    this.#timer = null;
    const libc = getLibc();
    const flags = libc.fcntl(this.fd, F_GETFD, 0);
    try {
      // The device's descriptor stays open across execve on purpose; not into the sentinel.
      if (flags >= 0) libc.fcntl(this.fd, F_SETFD, flags | FD_CLOEXEC);
      const args = ['-c', SENTINEL, 'livekexec-sentinel', this.path, String(this.size)];
      // Loaded on first use: a successor's import must not pay for node:child_process.
      const { spawn } = createRequire(import.meta.url)(
        'node:child_process',
      ) as typeof import('node:child_process');
      const child = spawn('/bin/sh', [...args, String(process.pid)], {
        stdio: ['pipe', 'ignore', 'inherit'],
      });
      child.on('error', () => {});
      child.stdin?.on('error', () => {});
      child.unref();
      (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
      this.#sentinel = child;
      if (child.pid !== undefined) this.onSentinel?.(child.pid);
    } catch {
      this.#sentinel = null;
    } finally {
      if (flags >= 0) libc.fcntl(this.fd, F_SETFD, flags);
    }
  }

  /** The sentinel's PID while it runs: it outlives an in-place execve, and the next program reaps it. */
  get sentinelPid(): number | null {
    const child = this.#sentinel;
    return child !== null && child.exitCode === null && child.signalCode === null
      ? (child.pid ?? null)
      : null;
  }

  /** Looks at the file's size now; a shrink is put back and reported. @returns whether it had shrunk. */
  check(): boolean {
    let found: number;
    try {
      found = fstatSync(this.fd).size;
    } catch {
      return false;
    }
    if (found >= this.size) return false;
    const libc = getLibc();
    const restored =
      libc.ftruncate(this.fd, this.size) === 0 && libc.posixFallocate(this.fd, 0, this.size) === 0;
    this.onShrink({
      path: this.path,
      mapped: this.size,
      found,
      restored,
      message: shrinkMessage(this.path, this.size, found, restored),
    });
    return true;
  }

  stop(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#checks !== null) clearInterval(this.#checks);
    this.#checks = null;
    // Its stdin closes: it checks once (the file is whole) and exits.
    this.#sentinel?.stdin?.destroy();
    this.#sentinel = null;
  }
}
