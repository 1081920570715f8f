/**
 * sd_notify(3) for a generation running under systemd: READY=1 after boot,
 * RELOADING=1 with MONOTONIC_USEC before an in-place exec (the PID stays the
 * same, as Type=notify-reload expects), MAINPID= when a preloaded successor
 * (another PID) takes over.
 */
import { AF_UNIX, errnoName } from '../sys/libc.js';
import { getProcLibc, MSG_NOSIGNAL, SOCK_CLOEXEC, SOCK_DGRAM } from '../sys/socket.js';

/**
 * Sends `state` (newline-separated KEY=VALUE lines) to $NOTIFY_SOCKET.
 * @returns false when NOTIFY_SOCKET is unset (not under systemd), true when sent.
 * @throws Error naming the errno when the socket exists but the send fails.
 */
export function sdNotify(state: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const path = env.NOTIFY_SOCKET;
  if (!path) return false;
  const libc = getProcLibc();
  const fd = libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new Error(`sd_notify: socket: ${errnoName(libc.errno())}`);
  try {
    const n = libc.sendto(fd, Buffer.from(state, 'utf8'), path, MSG_NOSIGNAL);
    if (n < 0) throw new Error(`sd_notify(${path}): sendto: ${errnoName(libc.errno())}`);
    return true;
  } finally {
    libc.close(fd);
  }
}

/** CLOCK_MONOTONIC in microseconds (libuv's hrtime reads CLOCK_MONOTONIC on Linux). */
export function monotonicUsec(): bigint {
  return process.hrtime.bigint() / 1000n;
}

/** READY=1: the generation has booted and serves. */
export function notifyReady(env?: NodeJS.ProcessEnv): boolean {
  return sdNotify('READY=1', env);
}

/** RELOADING=1 with the time the reload began, before an exec. */
export function notifyReloading(env?: NodeJS.ProcessEnv): boolean {
  return sdNotify(`RELOADING=1\nMONOTONIC_USEC=${monotonicUsec()}`, env);
}

/** MAINPID=: a preloaded successor with another PID is now the service's main process. */
export function notifyMainPid(pid: number, env?: NodeJS.ProcessEnv): boolean {
  return sdNotify(`MAINPID=${pid}`, env);
}
