/**
 * Every libc call livekexec makes, bound through koffi once, on first use (so
 * that code using only heap devices never loads libc through the FFI, and
 * importing this module loads nothing): the mapped device's (open, flock,
 * mmap, msync, ...), the live update orchestrator's (descriptor flags, socket
 * options and names, lseek, memfds) and a real process's handover (execve,
 * dup2, Unix sockets, sendmsg, recvmsg, poll, setpriority, sched_yield). Each function is declared here
 * and nowhere else; ./socket.ts lays out the structures passed by pointer
 * (msghdr, sockaddr_un, pollfd) on top of it. Constants are Linux's generic
 * values, the same on x86-64 and arm64, except where Node supplies the right
 * one. Only memory/, luo/, kexec/ and the trial's failure path may import
 * src/sys/ (test/layers.test.ts).
 */
import { constants as fsConstants } from 'node:fs';
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';

type Koffi = typeof import('koffi');

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
export const LOCK_UN = 8;
export const F_GETFD = 1;
export const F_SETFD = 2;
export const FD_CLOEXEC = 1;
export const SOL_SOCKET = 1;
export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
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
export const WNOHANG = 1;
/** (void *)-1 as koffi.address() reports it. */
export const MAP_FAILED = 0xffffffffffffffffn;
/** setpriority(2)'s `which` for one task (who 0: the caller). */
const PRIO_PROCESS = 0;

type Fn = ((...args: unknown[]) => unknown) & {
  async: (...args: unknown[]) => void;
};

export interface Libc {
  open(path: string, flags: number, mode: number): number;
  close(fd: number): number;
  flock(fd: number, op: number): number;
  /** -1 and errno on failure, as libc. */
  fcntl(fd: number, cmd: number, arg: number): number;
  ftruncate(fd: number, length: number): number;
  /** Returns an error number (0 on success), not -1 and errno. */
  posixFallocate(fd: number, offset: number, length: number): number;
  mmap(length: number, prot: number, flags: number, fd: number, offset: number): unknown;
  /**
   * mmap at the address of `at`'s first byte (MAP_FIXED in flags): over memory
   * this process already owns, such as a WebAssembly memory's.
   */
  mmapAt(
    at: ArrayBufferView,
    length: number,
    prot: number,
    flags: number,
    fd: number,
    offset: number,
  ): unknown;
  munmap(addr: unknown, length: number): number;
  /** `addr` as an integer: msync of part of a mapping needs pointer arithmetic. */
  msync(addr: number, length: number, flags: number): number;
  /** `addr` as an integer, as msync. */
  madvise(addr: number, length: number, advice: number): number;
  /** madvise on a libuv worker thread: 0, or -1 when it failed. */
  madviseAsync(addr: number, length: number, advice: number): Promise<number>;
  /** The new offset as a bigint, or -1n. */
  lseek(fd: number, offset: bigint, whence: number): bigint;
  memfdCreate(name: string, flags: number): number;
  /**
   * signal(2) with the handler as an integer (SIG_DFL 0, SIG_IGN 1, or what an
   * earlier call returned); returns the previous one, or -1n (SIG_ERR).
   */
  signal(sig: number, handler: bigint): bigint;
  /**
   * sigaction(2), glibc's struct sigaction as opaque bytes (SIGACTION_SIZE):
   * to save a disposition and put it back whole (flags and mask too).
   */
  sigaction(sig: number, act: Uint8Array | null, oldact: Uint8Array | null): number;
  /** Returns only on failure (-1). `argv` and `envp` without the trailing NULL. */
  execve(path: string, argv: readonly string[], envp: readonly string[]): number;
  dup2(from: number, to: number): number;
  socket(domain: number, type: number, protocol: number): number;
  /** [fd0, fd1] or null with errno set. */
  socketpair(domain: number, type: number): [number, number] | null;
  setsockoptInt(fd: number, level: number, name: number, value: number): number;
  /** An int socket option, or null with errno set. */
  getsockoptInt(fd: number, level: number, name: number): number | null;
  /** The socket's bound address (`len` bytes of sockaddr), or null with errno set. */
  getsockname(fd: number): Uint8Array | null;
  /** bind to a sockaddr laid out by the caller. */
  bind(fd: number, addr: Uint8Array): number;
  /** sendto a sockaddr laid out by the caller. */
  sendto(fd: number, data: Uint8Array, flags: number, addr: Uint8Array): number;
  /** `msg` points to a struct msghdr in memory from `alloc`. */
  sendmsg(fd: number, msg: unknown, flags: number): number;
  recvmsg(fd: number, msg: unknown, flags: number): number;
  /** `fds` holds `n` struct pollfd. */
  poll(fds: Uint8Array, n: number, timeoutMs: number): number;
  /** setpriority(PRIO_PROCESS, 0, nice): the calling thread's nice value (per thread on Linux). */
  setNice(nice: number): number;
  schedYield(): number;
  /** waitpid(2) without the status: the child's PID, 0 (WNOHANG, still running) or -1 (errno). */
  waitpid(pid: number, options: number): number;
  /** poll on a worker thread, so the event loop keeps running. */
  pollAsync(fds: Uint8Array, n: number, timeoutMs: number): Promise<number>;
  /** C memory of `size` bytes (for structures holding pointers); give it back with `free`. */
  alloc(size: number): unknown;
  free(ptr: unknown): void;
  address(ptr: unknown): bigint;
  view(ptr: unknown, length: number): ArrayBuffer;
  errno(): number;
}

/** sizeof(struct sockaddr_storage). */
const SOCKADDR_MAX = 128;

let libc: Libc | null = null;

/**
 * koffi's entry point also loads https, zlib and crypto for its installer,
 * about 10 ms of every successor's start-up. Where the prebuilt addon's name
 * is certain (glibc Linux on x86-64 and arm64) it is loaded directly, and
 * kept only if it is the version the entry point would accept; anywhere else
 * (or when that fails, as on musl) the entry point picks.
 */
export function loadKoffi(): Koffi {
  const require = createRequire(import.meta.url);
  const triplet = `${process.platform}_${process.arch}`;
  if (triplet === 'linux_x64' || triplet === 'linux_arm64') {
    try {
      const addon = require(`koffi/build/koffi/${triplet}/koffi.node`) as Koffi & {
        version?: string;
      };
      const { version } = require('koffi/package.json') as { version: string };
      if (addon.version === version) return addon;
    } catch {
      // Not this layout or not loadable here: koffi's own loader decides.
    }
  }
  return require('koffi') as Koffi;
}

export function getLibc(): Libc {
  if (libc !== null) return libc;
  const koffi = loadKoffi();
  const lib = koffi.load('libc.so.6');
  // Bound on first call: a successor's boot uses a handful of the 28, and
  // each declaration parsed costs ~20 us of its start-up.
  const fn = (decl: string): Fn => {
    let f: Fn | null = null;
    const bound = (): Fn => {
      f ??= lib.func(decl) as Fn;
      return f;
    };
    const call = (...args: unknown[]) => bound()(...args);
    return Object.assign(call, { async: (...args: unknown[]) => bound().async(...args) });
  };
  const open = fn('int open(const char *path, int flags, ...)');
  const close = fn('int close(int fd)');
  const flock = fn('int flock(int fd, int op)');
  const fcntl = fn('int fcntl(int fd, int cmd, ...)');
  const ftruncate = fn('int ftruncate(int fd, int64_t length)');
  const fallocate = fn('int posix_fallocate(int fd, int64_t offset, int64_t len)');
  const mmap = fn(
    'void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)',
  );
  const munmap = fn('int munmap(void *addr, size_t length)');
  const msync = fn('int msync(uintptr_t addr, size_t length, int flags)');
  const madvise = fn('int madvise(uintptr_t addr, size_t length, int advice)');
  const lseek = fn('int64_t lseek(int fd, int64_t offset, int whence)');
  const memfdCreate = fn('int memfd_create(const char *name, unsigned int flags)');
  const execve = fn('int execve(const char *path, const char **argv, const char **envp)');
  // Handlers as integers: SIG_IGN and the previous handler pass through unchanged.
  const signal = fn('intptr_t signal(int sig, intptr_t handler)');
  const sigaction = fn('int sigaction(int sig, const void *act, void *oldact)');
  const dup2 = fn('int dup2(int from, int to)');
  const socket = fn('int socket(int domain, int type, int protocol)');
  const socketpair = fn('int socketpair(int d, int t, int p, _Out_ int *sv)');
  const setsockopt = fn(
    'int setsockopt(int fd, int level, int name, const void *val, uint32_t len)',
  );
  const getsockopt = fn(
    'int getsockopt(int fd, int level, int name, _Out_ int *value, _Inout_ uint32_t *len)',
  );
  const getsockname = fn('int getsockname(int fd, _Out_ uint8_t *addr, _Inout_ uint32_t *len)');
  const bind = fn('int bind(int fd, const void *addr, uint32_t len)');
  const sendto = fn(
    'intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t alen)',
  );
  const sendmsg = fn('intptr_t sendmsg(int fd, void *msg, int flags)');
  const recvmsg = fn('intptr_t recvmsg(int fd, void *msg, int flags)');
  const poll = fn('int poll(void *fds, unsigned long n, int timeout)');
  const setpriority = fn('int setpriority(int which, uint32_t who, int prio)');
  const schedYield = fn('int sched_yield(void)');
  const waitpid = fn('int waitpid(int pid, void *status, int options)');
  libc = {
    open: (path, flags, mode) => open(path, flags, 'uint32_t', mode) as number,
    close: (fd) => close(fd) as number,
    flock: (fd, op) => flock(fd, op) as number,
    fcntl: (fd, cmd, arg) => fcntl(fd, cmd, 'int', arg) as number,
    ftruncate: (fd, length) => ftruncate(fd, length) as number,
    posixFallocate: (fd, offset, length) => fallocate(fd, offset, length) as number,
    mmap: (length, prot, flags, fd, offset) => mmap(null, length, prot, flags, fd, offset),
    mmapAt: (at, length, prot, flags, fd, offset) => mmap(at, length, prot, flags, fd, offset),
    munmap: (addr, length) => munmap(addr, length) as number,
    msync: (addr, length, flags) => msync(addr, length, flags) as number,
    madvise: (addr, length, advice) => madvise(addr, length, advice) as number,
    madviseAsync: (addr, length, advice) =>
      new Promise((resolve) => {
        // koffi runs the call on a worker; errno is that thread's, so only success is told apart.
        madvise.async(addr, length, advice, (err: unknown, r: unknown) =>
          resolve(err ? -1 : (r as number)),
        );
      }),
    lseek: (fd, offset, whence) => BigInt(lseek(fd, offset, whence) as number | bigint),
    memfdCreate: (name, flags) => memfdCreate(name, flags) as number,
    signal: (sig, handler) => BigInt(signal(sig, handler) as number | bigint),
    sigaction: (sig, act, oldact) => sigaction(sig, act, oldact) as number,
    execve: (path, argv, envp) => execve(path, [...argv, null], [...envp, null]) as number,
    dup2: (from, to) => dup2(from, to) as number,
    socket: (d, t, p) => socket(d, t, p) as number,
    socketpair: (d, t) => {
      const sv = [-1, -1];
      return (socketpair(d, t, 0, sv) as number) === 0 ? [sv[0], sv[1]] : null;
    },
    setsockoptInt: (fd, level, name, value) => {
      const v = Buffer.alloc(4);
      v.writeInt32LE(value);
      return setsockopt(fd, level, name, v, 4) as number;
    },
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
    bind: (fd, addr) => bind(fd, addr, addr.length) as number,
    sendto: (fd, data, flags, addr) =>
      Number(sendto(fd, data, data.length, flags, addr, addr.length)),
    sendmsg: (fd, msg, flags) => Number(sendmsg(fd, msg, flags)),
    recvmsg: (fd, msg, flags) => Number(recvmsg(fd, msg, flags)),
    poll: (fds, n, timeoutMs) => poll(fds, n, timeoutMs) as number,
    setNice: (nice) => setpriority(PRIO_PROCESS, 0, nice) as number,
    schedYield: () => schedYield() as number,
    waitpid: (pid, options) => waitpid(pid, null, options) as number,
    pollAsync: (fds, n, timeoutMs) =>
      new Promise((resolve, reject) => {
        poll.async(fds, n, timeoutMs, (err: unknown, rc: number) => {
          if (err) reject(err);
          else resolve(rc);
        });
      }),
    alloc: (size) => koffi.alloc('uint8_t', size),
    free: (ptr) => koffi.free(ptr),
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
