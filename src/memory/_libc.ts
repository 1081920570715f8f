/**
 * The few libc calls the mapped device needs, bound through koffi on first
 * use, so that code using only heap devices never loads libc through the FFI.
 */
import { constants as fsConstants } from 'node:fs';
import { constants as osConstants } from 'node:os';
import koffi from 'koffi';

export const O_RDONLY = fsConstants.O_RDONLY;
export const O_RDWR = fsConstants.O_RDWR;
export const O_CREAT = fsConstants.O_CREAT;
export const O_EXCL = fsConstants.O_EXCL;
/** Differs between x86-64 and arm64; Node knows the right value. */
export const O_NOFOLLOW = fsConstants.O_NOFOLLOW;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 1;
export const MS_SYNC = 4;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const F_GETFD = 1;
export const F_SETFD = 2;
export const FD_CLOEXEC = 1;
/** (void *)-1 as koffi.address() reports it. */
export const MAP_FAILED = 0xffffffffffffffffn;

type Fn = (...args: unknown[]) => unknown;

export interface Libc {
  open(path: string, flags: number, mode: number): number;
  close(fd: number): number;
  flock(fd: number, op: number): number;
  fcntl(fd: number, cmd: number, arg: number): number;
  ftruncate(fd: number, length: number): number;
  /** Returns an error number (0 on success), not -1 and errno. */
  posixFallocate(fd: number, offset: number, length: number): number;
  mmap(length: number, prot: number, flags: number, fd: number, offset: number): unknown;
  munmap(addr: unknown, length: number): number;
  /** `addr` as an integer: msync of part of a mapping needs pointer arithmetic. */
  msync(addr: number, length: number, flags: number): number;
  address(ptr: unknown): bigint;
  view(ptr: unknown, length: number): ArrayBuffer;
  errno(): number;
}

let libc: Libc | null = null;

export function getLibc(): Libc {
  if (libc !== null) return libc;
  const lib = koffi.load('libc.so.6');
  const open = lib.func('int open(const char *path, int flags, ...)') as Fn;
  const close = lib.func('int close(int fd)') as Fn;
  const flock = lib.func('int flock(int fd, int op)') as Fn;
  const fcntl = lib.func('int fcntl(int fd, int cmd, ...)') as Fn;
  const ftruncate = lib.func('int ftruncate(int fd, int64_t length)') as Fn;
  const fallocate = lib.func('int posix_fallocate(int fd, int64_t offset, int64_t len)') as Fn;
  const mmap = lib.func(
    'void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)',
  ) as Fn;
  const munmap = lib.func('int munmap(void *addr, size_t length)') as Fn;
  const msync = lib.func('int msync(uintptr_t addr, size_t length, int flags)') as Fn;
  libc = {
    open: (path, flags, mode) => open(path, flags, 'uint32_t', mode) as number,
    close: (fd) => close(fd) as number,
    flock: (fd, op) => flock(fd, op) as number,
    fcntl: (fd, cmd, arg) => fcntl(fd, cmd, 'int', arg) as number,
    ftruncate: (fd, length) => ftruncate(fd, length) as number,
    posixFallocate: (fd, offset, length) => fallocate(fd, offset, length) as number,
    mmap: (length, prot, flags, fd, offset) => mmap(null, length, prot, flags, fd, offset),
    munmap: (addr, length) => munmap(addr, length) as number,
    msync: (addr, length, flags) => msync(addr, length, flags) as number,
    address: (ptr) => koffi.address(ptr),
    view: (ptr, length) => koffi.view(ptr, length),
    errno: () => koffi.errno(),
  };
  return libc;
}

const ERRNO_NAMES = new Map<number, string>(
  Object.entries(osConstants.errno).map(([name, n]) => [n, name]),
);

/** "EAGAIN" for 11, "errno 999" for what the table does not know. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}
