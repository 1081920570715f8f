/**
 * The libc calls the Live Update Orchestrator needs, bound through koffi on
 * first use (as src/memory/_libc.ts): descriptor flags, socket options and
 * names, file positions, memfds and execve. Node has no API for any of them.
 * Constants are Linux's generic values, the same on x86-64 and arm64.
 */
import koffi from 'koffi';

export const F_GETFD = 1;
export const F_SETFD = 2;
export const FD_CLOEXEC = 1;
/** fcntl(F_DUPFD_CLOEXEC): a dup that is not inherited by accident. */
export const F_DUPFD_CLOEXEC = 1030;
export const SEEK_SET = 0;
export const SEEK_CUR = 1;
export const SOL_SOCKET = 1;
export const SO_TYPE = 3;
export const SO_ACCEPTCONN = 30;
export const SO_DOMAIN = 39;
export const SOCK_STREAM = 1;
export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const MFD_CLOEXEC = 1;
/** sizeof(struct sockaddr_storage). */
export const SOCKADDR_MAX = 128;
export const EBADF = 9;

type Fn = (...args: unknown[]) => unknown;

export interface LuoLibc {
  /** -1 and errno on failure, as libc. */
  fcntl(fd: number, cmd: number, arg: number): number;
  /** The new offset as a bigint, or -1n. */
  lseek(fd: number, offset: bigint, whence: number): bigint;
  /** An int socket option, or null with errno set. */
  getsockoptInt(fd: number, level: number, name: number): number | null;
  /** The socket's bound address (`len` bytes of sockaddr), or null with errno set. */
  getsockname(fd: number): Uint8Array | null;
  memfdCreate(name: string, flags: number): number;
  ftruncate(fd: number, length: number): number;
  /** Returns only on failure (-1). `argv` and `envp` without the trailing NULL. */
  execve(path: string, argv: readonly string[], envp: readonly string[]): number;
  errno(): number;
}

let libc: LuoLibc | null = null;

export function getLuoLibc(): LuoLibc {
  if (libc !== null) return libc;
  const lib = koffi.load('libc.so.6');
  const fcntl = lib.func('int fcntl(int fd, int cmd, ...)') as Fn;
  const lseek = lib.func('int64_t lseek(int fd, int64_t offset, int whence)') as Fn;
  const getsockopt = lib.func(
    'int getsockopt(int fd, int level, int name, _Out_ int *value, _Inout_ uint32_t *len)',
  ) as Fn;
  const getsockname = lib.func(
    'int getsockname(int fd, _Out_ uint8_t *addr, _Inout_ uint32_t *len)',
  ) as Fn;
  const memfdCreate = lib.func('int memfd_create(const char *name, unsigned int flags)') as Fn;
  const ftruncate = lib.func('int ftruncate(int fd, int64_t length)') as Fn;
  const execve = lib.func(
    'int execve(const char *path, const char **argv, const char **envp)',
  ) as Fn;
  libc = {
    fcntl: (fd, cmd, arg) => fcntl(fd, cmd, 'int', arg) as number,
    lseek: (fd, offset, whence) => BigInt(lseek(fd, offset, whence) as number | bigint),
    getsockoptInt: (fd, level, name) => {
      const value = [0];
      const len = [4];
      return getsockopt(fd, level, name, value, len) === 0 ? value[0]! : null;
    },
    getsockname: (fd) => {
      const addr = new Uint8Array(SOCKADDR_MAX);
      const len = [SOCKADDR_MAX];
      if (getsockname(fd, addr, len) !== 0) return null;
      return addr.subarray(0, Math.min(len[0]!, SOCKADDR_MAX));
    },
    memfdCreate: (name, flags) => memfdCreate(name, flags) as number,
    ftruncate: (fd, length) => ftruncate(fd, length) as number,
    execve: (path, argv, envp) => execve(path, [...argv, null], [...envp, null]) as number,
    errno: () => koffi.errno(),
  };
  return libc;
}
