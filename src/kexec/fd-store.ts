/**
 * Descriptors across service restarts, through what service managers
 * already have: systemd's file descriptor store (sd_notify FDSTORE=1 with
 * FDNAME=, the descriptors by SCM_RIGHTS; FileDescriptorStoreMax= in the
 * unit) gives stored descriptors back to the next start as LISTEN_FDS /
 * LISTEN_FDNAMES, the way socket activation passes a .socket unit's.
 * A preserved file is stored under a name that says its LUO session and
 * token, so the successor matches it to the handover by name.
 */
import { hexDigits } from '../base/hex.js';
import { AF_UNIX, errnoName, F_GETFD, F_SETFD, FD_CLOEXEC } from '../sys/libc.js';
import { getProcLibc, MSG_NOSIGNAL, SOCK_CLOEXEC, SOCK_DGRAM } from '../sys/socket.js';
import { KexecError } from './errors.js';

/** The first descriptor a service manager passes (SD_LISTEN_FDS_START). */
export const LISTEN_FDS_START = 3;
/** systemd's limit on an FDNAME. */
const FDNAME_MAX = 255;
const PREFIX = 'lkx.';

/** One descriptor passed by the service manager: a .socket unit's (named by FileDescriptorName=) or one from the fd store. */
export interface ListenFd {
  readonly fd: number;
  readonly name: string;
}

/**
 * The FDNAME of a preserved file: `lkx.<session>.<token>`, the session name
 * percent-encoded outside [A-Za-z0-9_-] (FDNAME allows no ':' or control
 * characters; a 64-byte name stays under 255).
 */
export function storeName(session: string, token: bigint): string {
  let enc = '';
  for (const b of Buffer.from(session, 'utf8')) {
    const c = String.fromCharCode(b);
    enc += /[A-Za-z0-9_-]/.test(c) ? c : `%${hexDigits(b, 2)}`;
  }
  return `${PREFIX}${enc}.${token}`;
}

/** The session and token a store name says, or null for another name. */
export function parseStoreName(name: string): { session: string; token: bigint } | null {
  const m = /^lkx\.((?:[A-Za-z0-9_-]|%[0-9a-f]{2})+)\.(\d{1,20})$/.exec(name);
  if (m === null) return null;
  const bytes: number[] = [];
  for (let i = 0; i < m[1].length; i++) {
    if (m[1][i] === '%') {
      bytes.push(Number.parseInt(m[1].slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(m[1].charCodeAt(i));
  }
  try {
    return {
      session: new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes)),
      token: BigInt(m[2]),
    };
  } catch {
    return null;
  }
}

/**
 * Stores `fd` in the service manager's fd store under `name` (sd_notify
 * FDSTORE=1 with the descriptor by SCM_RIGHTS).
 * @throws KexecError EINVAL when NOTIFY_SOCKET is unset or the name is bad; EIO when the send fails.
 */
export function storeFd(name: string, fd: number, env: NodeJS.ProcessEnv = process.env): void {
  if (name.length === 0 || name.length > FDNAME_MAX || /[:\x00-\x1f\x7f]/.test(name)) {
    throw new KexecError('EINVAL', `fd store: bad FDNAME '${name}'`);
  }
  notifyWithFds(`FDSTORE=1\nFDNAME=${name}`, [fd], env);
}

/** Asks the service manager to drop what it stores under `name` (FDSTOREREMOVE=1). Advisory: false when not sent. */
export function removeStoredFd(name: string, env: NodeJS.ProcessEnv = process.env): boolean {
  try {
    notifyWithFds(`FDSTOREREMOVE=1\nFDNAME=${name}`, [], env);
    return true;
  } catch {
    return false;
  }
}

function notifyWithFds(state: string, fds: readonly number[], env: NodeJS.ProcessEnv): void {
  const path = env.NOTIFY_SOCKET;
  if (!path) {
    throw new KexecError(
      'EINVAL',
      'fd store: NOTIFY_SOCKET is unset (not under a service manager)',
    );
  }
  const libc = getProcLibc();
  const sock = libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) throw new KexecError('EIO', `fd store: socket: ${errnoName(libc.errno())}`);
  try {
    if (libc.sendmsg(sock, Buffer.from(state, 'utf8'), fds, MSG_NOSIGNAL, path) < 0) {
      throw new KexecError('EIO', `fd store: sendmsg to ${path}: ${errnoName(libc.errno())}`);
    }
  } finally {
    libc.close(sock);
  }
}

/**
 * The descriptors the service manager passed to this process (sd_listen_fds
 * with names): LISTEN_FDS from LISTEN_FDS_START on, named by LISTEN_FDNAMES
 * ("unknown" when unnamed), only when LISTEN_PID is this process. They are
 * made close-on-exec and the three variables are removed from `env`, as
 * sd_listen_fds(1) does, so a child does not take them for its own.
 */
export function takeListenFds(env: NodeJS.ProcessEnv = process.env): ListenFd[] {
  const pid = env.LISTEN_PID;
  const count = env.LISTEN_FDS;
  const names = env.LISTEN_FDNAMES;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
  if (count === undefined || pid === undefined || pid !== String(process.pid)) return [];
  const n = /^\d{1,4}$/.test(count) ? Number(count) : 0;
  const named = names === undefined ? [] : names.split(':');
  const libc = getProcLibc();
  const out: ListenFd[] = [];
  for (let i = 0; i < n; i++) {
    const fd = LISTEN_FDS_START + i;
    const flags = libc.fcntl(fd, F_GETFD, 0);
    if (flags < 0) continue; // announced but not open
    libc.fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    out.push({ fd, name: named[i] || 'unknown' });
  }
  return out;
}
