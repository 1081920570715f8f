/**
 * The libc calls the Live Update Orchestrator needs (descriptor flags, socket
 * options and names, file positions, memfds and execve; Node has no API for
 * any of them), from the one binding in src/memory/_libc.ts, with the
 * constants this layer uses. Constants are Linux's generic values, the same
 * on x86-64 and arm64.
 */
import { getLibc, type Libc } from '../memory/_libc.js';

export {
  AF_UNIX,
  F_GETFD,
  F_SETFD,
  FD_CLOEXEC,
  SOCK_STREAM,
  SOL_SOCKET,
} from '../memory/_libc.js';

/** fcntl(F_DUPFD_CLOEXEC): a dup that is not inherited by accident. */
export const F_DUPFD_CLOEXEC = 1030;
export const SEEK_SET = 0;
export const SEEK_CUR = 1;
export const SO_TYPE = 3;
export const SO_ACCEPTCONN = 30;
export const SO_DOMAIN = 39;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const MFD_CLOEXEC = 1;

export type LuoLibc = Pick<
  Libc,
  | 'fcntl'
  | 'lseek'
  | 'getsockoptInt'
  | 'getsockname'
  | 'memfdCreate'
  | 'ftruncate'
  | 'execve'
  | 'errno'
>;

/** The shared binding, seen through what this layer uses. */
export function getLuoLibc(): LuoLibc {
  return getLibc();
}
