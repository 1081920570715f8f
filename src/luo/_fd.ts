/**
 * What a descriptor is: its flags, identity, kind, socket options, address,
 * position and path. Each probe returns null (or throws LuoError) instead of
 * letting a libc or Node error escape.
 */
import { fstatSync, readlinkSync } from 'node:fs';
import { show } from '../base/errors.js';
import { hexDigits } from '../base/hex.js';
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  F_GETFD,
  F_SETFD,
  FD_CLOEXEC,
  getLibc,
  SEEK_CUR,
  SO_ACCEPTCONN,
  SO_DOMAIN,
  SO_TYPE,
  SOCK_STREAM,
  SOL_SOCKET,
} from '../sys/libc.js';
import { LUO_FD_MAX } from './abi.js';
import { LuoError } from './errors.js';

const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFSOCK = 0o140000;

/** The open file behind a descriptor, as fstat sees it. */
export interface FdStat {
  dev: bigint;
  ino: bigint;
  /** st_mode & S_IFMT. */
  type: number;
  size: bigint;
}

/** @throws LuoError EINVAL not a descriptor number */
export function checkFdNumber(fd: unknown): asserts fd is number {
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0 || fd > LUO_FD_MAX) {
    throw new LuoError('EINVAL', `bad file descriptor ${show(fd)}`);
  }
}

/** F_GETFD flags, or null when `fd` is not open. */
export function fdFlags(fd: number): number | null {
  const r = getLibc().fcntl(fd, F_GETFD, 0);
  return r < 0 ? null : r;
}

/** Set F_SETFD flags; false when `fd` is not open. */
export function setFdFlags(fd: number, flags: number): boolean {
  return getLibc().fcntl(fd, F_SETFD, flags) === 0;
}

/** Flags with FD_CLOEXEC cleared or set. */
export function withCloexec(flags: number, on: boolean): number {
  return on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
}

/** fstat, or null when `fd` is not open. */
export function fdStat(fd: number): FdStat | null {
  try {
    const st = fstatSync(fd, { bigint: true });
    return { dev: st.dev, ino: st.ino, type: Number(st.mode) & S_IFMT, size: st.size };
  } catch {
    return null;
  }
}

/** The current file position, or null (a socket, a closed fd). */
export function fdPosition(fd: number): bigint | null {
  const r = getLibc().lseek(fd, 0n, SEEK_CUR);
  return r < 0n ? null : r;
}

/** What /proc/self/fd/N links to ("/memfd:x (deleted)", "socket:[123]", a path), or null. */
export function fdLink(fd: number): string | null {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return null;
  }
}

/** A listening stream socket: its family and bound address. */
export type Listener =
  | { family: 4 | 6; address: string; port: number }
  | { family: 'unix'; sunPath: Uint8Array };

/** The listening stream socket behind `fd`, or null when it is anything else. */
export function fdListener(fd: number): Listener | null {
  const libc = getLibc();
  if (libc.getsockoptInt(fd, SOL_SOCKET, SO_TYPE) !== SOCK_STREAM) return null;
  if (libc.getsockoptInt(fd, SOL_SOCKET, SO_ACCEPTCONN) !== 1) return null;
  const domain = libc.getsockoptInt(fd, SOL_SOCKET, SO_DOMAIN);
  const sa = libc.getsockname(fd);
  if (sa === null || sa.length < 2) return null;
  const dv = new DataView(sa.buffer, sa.byteOffset, sa.byteLength);
  if (domain === AF_INET && sa.length >= 8) {
    return { family: 4, address: [...sa.subarray(4, 8)].join('.'), port: dv.getUint16(2) };
  }
  if (domain === AF_INET6 && sa.length >= 24) {
    const groups: string[] = [];
    for (let i = 0; i < 8; i++) groups.push(hexDigits(dv.getUint16(8 + i * 2)));
    return { family: 6, address: compressIpv6(groups), port: dv.getUint16(2) };
  }
  if (domain === AF_UNIX) {
    let path = sa.slice(2);
    // A pathname ends at its NUL; an abstract name (leading NUL) is all of it.
    if (path.length > 0 && path[0] !== 0) {
      const nul = path.indexOf(0);
      if (nul >= 0) path = path.slice(0, nul);
    }
    return { family: 'unix', sunPath: path };
  }
  return null;
}

/** RFC 5952 text for eight hex groups: the longest run of 2+ zero groups becomes "::". */
function compressIpv6(groups: string[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** sun_path bytes as text for messages: "@name" for abstract names. */
export function sunPathText(path: Uint8Array): string {
  if (path.length > 0 && path[0] === 0) return `@${Buffer.from(path.subarray(1)).toString()}`;
  return Buffer.from(path).toString();
}
