/**
 * The libc calls a real process needs to hand over: execve, descriptor flags,
 * Unix sockets with ancillary data (SCM_RIGHTS, SCM_CREDENTIALS) and poll.
 * Bound through koffi on first use. Structures passed by pointer (msghdr,
 * iovec, cmsghdr, pollfd, sockaddr_un) are laid out by hand in koffi-allocated
 * memory for LP64 Linux (x86-64 and arm64 share these layouts).
 */
import koffi from 'koffi';
import { KexecError } from './errors.js';

export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SO_PASSCRED = 16;
export const SCM_RIGHTS = 1;
export const SCM_CREDENTIALS = 2;
export const MSG_NOSIGNAL = 0x4000;
export const MSG_DONTWAIT = 0x40;
export const MSG_CMSG_CLOEXEC = 0x40000000;
export const POLLIN = 0x1;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const F_GETFD = 1;
export const F_SETFD = 2;
export const FD_CLOEXEC = 1;
/** Bytes of sun_path in struct sockaddr_un. */
export const SUN_PATH_MAX = 108;
/** At most this many descriptors travel in one message (the kernel's SCM_MAX_FD is 253). */
export const MAX_FDS_PER_MESSAGE = 253;

const CMSG_HDR = 16;
const MSGHDR_SIZE = 56;
const IOVEC_SIZE = 16;

type Fn = ((...args: unknown[]) => unknown) & {
  async: (...args: unknown[]) => void;
};

/** One ancillary message received with data. */
export interface Cmsg {
  readonly level: number;
  readonly type: number;
  readonly data: Uint8Array;
}

export interface ProcLibc {
  /** Only returns on failure (-1, errno set). */
  execve(path: string, argv: readonly string[], envp: readonly string[]): number;
  fcntl(fd: number, cmd: number, arg: number): number;
  close(fd: number): number;
  dup2(from: number, to: number): number;
  socket(domain: number, type: number, protocol: number): number;
  /** [fd0, fd1] or null with errno set. */
  socketpair(domain: number, type: number): [number, number] | null;
  setsockoptInt(fd: number, level: number, name: number, value: number): number;
  /** Binds to a path ("@name" is the abstract namespace). */
  bind(fd: number, path: string): number;
  /** Sends to a path ("@name" is abstract). */
  sendto(fd: number, data: Uint8Array, path: string, flags: number): number;
  /** sendmsg of `data` with SCM_RIGHTS for `fds` when any. */
  sendmsg(fd: number, data: Uint8Array, fds: readonly number[], flags: number): number;
  /** recvmsg into `into`; -1 with errno on failure. */
  recvmsg(fd: number, into: Uint8Array, flags: number): { n: number; cmsgs: Cmsg[] };
  /** poll one descriptor; the returned revents, 0 on timeout, -1 on error. */
  poll(fd: number, events: number, timeoutMs: number): number;
  /** poll on a worker thread, so the event loop keeps running. */
  pollAsync(fd: number, events: number, timeoutMs: number): Promise<number>;
  errno(): number;
}

let libc: ProcLibc | null = null;

export function getProcLibc(): ProcLibc {
  if (libc !== null) return libc;
  const lib = koffi.load('libc.so.6');
  const execve = lib.func(
    'int execve(const char *path, const char **argv, const char **envp)',
  ) as Fn;
  const fcntl = lib.func('int fcntl(int fd, int cmd, ...)') as Fn;
  const close = lib.func('int close(int fd)') as Fn;
  const dup2 = lib.func('int dup2(int from, int to)') as Fn;
  const socket = lib.func('int socket(int domain, int type, int protocol)') as Fn;
  const socketpair = lib.func('int socketpair(int d, int t, int p, _Out_ int *sv)') as Fn;
  const setsockopt = lib.func(
    'int setsockopt(int fd, int level, int name, const void *val, uint32_t len)',
  ) as Fn;
  const bind = lib.func('int bind(int fd, const void *addr, uint32_t len)') as Fn;
  const sendto = lib.func(
    'intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t alen)',
  ) as Fn;
  const sendmsg = lib.func('intptr_t sendmsg(int fd, void *msg, int flags)') as Fn;
  const recvmsg = lib.func('intptr_t recvmsg(int fd, void *msg, int flags)') as Fn;
  const poll = lib.func('int poll(void *fds, unsigned long n, int timeout)') as Fn;

  libc = {
    execve: (path, argv, envp) => execve(path, [...argv, null], [...envp, null]) as number,
    fcntl: (fd, cmd, arg) => fcntl(fd, cmd, 'int', arg) as number,
    close: (fd) => close(fd) as number,
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
    bind: (fd, path) => {
      const addr = sockaddrUn(path);
      return bind(fd, addr, addr.length) as number;
    },
    sendto: (fd, data, path, flags) => {
      const addr = sockaddrUn(path);
      return Number(sendto(fd, data, data.length, flags, addr, addr.length));
    },
    sendmsg: (fd, data, fds, flags) => {
      const ctl = fds.length > 0 ? cmsgSpace(fds.length * 4) : 0;
      const scratch = new Scratch(MSGHDR_SIZE + IOVEC_SIZE + data.length + ctl);
      try {
        const iov = scratch.at(MSGHDR_SIZE);
        const buf = scratch.at(MSGHDR_SIZE + IOVEC_SIZE);
        const control = scratch.at(MSGHDR_SIZE + IOVEC_SIZE + data.length);
        scratch.bytes.set(data, MSGHDR_SIZE + IOVEC_SIZE);
        const v = scratch.view;
        v.setBigUint64(MSGHDR_SIZE, buf, true);
        v.setBigUint64(MSGHDR_SIZE + 8, BigInt(data.length), true);
        writeMsghdr(v, iov, ctl > 0 ? control : 0n, ctl);
        if (ctl > 0) {
          const at = MSGHDR_SIZE + IOVEC_SIZE + data.length;
          v.setBigUint64(at, BigInt(CMSG_HDR + fds.length * 4), true);
          v.setInt32(at + 8, SOL_SOCKET, true);
          v.setInt32(at + 12, SCM_RIGHTS, true);
          fds.forEach((f, i) => {
            v.setInt32(at + CMSG_HDR + 4 * i, f, true);
          });
        }
        return Number(sendmsg(fd, scratch.ptr, flags));
      } finally {
        scratch.free();
      }
    },
    recvmsg: (fd, into, flags) => {
      const ctl = cmsgSpace(MAX_FDS_PER_MESSAGE * 4);
      const scratch = new Scratch(MSGHDR_SIZE + IOVEC_SIZE + into.length + ctl);
      try {
        const bufAt = MSGHDR_SIZE + IOVEC_SIZE;
        const ctlAt = bufAt + into.length;
        const v = scratch.view;
        v.setBigUint64(MSGHDR_SIZE, scratch.at(bufAt), true);
        v.setBigUint64(MSGHDR_SIZE + 8, BigInt(into.length), true);
        writeMsghdr(v, scratch.at(MSGHDR_SIZE), scratch.at(ctlAt), ctl);
        const n = Number(recvmsg(fd, scratch.ptr, flags));
        if (n < 0) return { n, cmsgs: [] };
        into.set(scratch.bytes.subarray(bufAt, bufAt + n));
        const ctlLen = Math.min(Number(v.getBigUint64(40, true)), ctl);
        return { n, cmsgs: parseCmsgs(scratch.bytes.subarray(ctlAt, ctlAt + ctlLen)) };
      } finally {
        scratch.free();
      }
    },
    poll: (fd, events, timeoutMs) => {
      const pfd = Buffer.alloc(8);
      pfd.writeInt32LE(fd, 0);
      pfd.writeInt16LE(events, 4);
      const rc = poll(pfd, 1, timeoutMs) as number;
      return rc <= 0 ? rc : pfd.readInt16LE(6);
    },
    pollAsync: (fd, events, timeoutMs) =>
      new Promise((resolve, reject) => {
        const pfd = Buffer.alloc(8);
        pfd.writeInt32LE(fd, 0);
        pfd.writeInt16LE(events, 4);
        poll.async(pfd, 1, timeoutMs, (err: unknown, rc: number) => {
          if (err) reject(err);
          else resolve(rc <= 0 ? rc : pfd.readInt16LE(6));
        });
      }),
    errno: () => koffi.errno(),
  };
  return libc;
}

/** A block of C memory with its address, for structures that hold pointers. */
class Scratch {
  readonly ptr: unknown;
  readonly base: bigint;
  readonly bytes: Uint8Array;
  readonly view: DataView;

  constructor(size: number) {
    this.ptr = koffi.alloc('uint8_t', size);
    this.base = koffi.address(this.ptr);
    const ab = koffi.view(this.ptr, size);
    this.bytes = new Uint8Array(ab);
    this.bytes.fill(0);
    this.view = new DataView(ab);
  }

  at(offset: number): bigint {
    return this.base + BigInt(offset);
  }

  free(): void {
    koffi.free(this.ptr);
  }
}

/** struct msghdr at offset 0: no name, one iovec, the control buffer. */
function writeMsghdr(v: DataView, iov: bigint, control: bigint, controlLen: number): void {
  v.setBigUint64(16, iov, true);
  v.setBigUint64(24, 1n, true);
  v.setBigUint64(32, control, true);
  v.setBigUint64(40, BigInt(controlLen), true);
}

function cmsgSpace(n: number): number {
  return CMSG_HDR + Math.ceil(n / 8) * 8;
}

/** Walks a control buffer; a header that does not fit ends the walk. */
function parseCmsgs(ctl: Uint8Array): Cmsg[] {
  const out: Cmsg[] = [];
  const v = new DataView(ctl.buffer, ctl.byteOffset, ctl.byteLength);
  for (let at = 0; at + CMSG_HDR <= ctl.length; ) {
    const len = Number(v.getBigUint64(at, true));
    if (len < CMSG_HDR || at + len > ctl.length) break;
    out.push({
      level: v.getInt32(at + 8, true),
      type: v.getInt32(at + 12, true),
      data: ctl.slice(at + CMSG_HDR, at + len),
    });
    at += Math.ceil(len / 8) * 8;
  }
  return out;
}

/** struct sockaddr_un for `path`; a leading '@' names the abstract namespace. */
function sockaddrUn(path: string): Buffer {
  const name = Buffer.from(path, 'utf8');
  if (name.length === 0 || name.length >= SUN_PATH_MAX) {
    throw new KexecError('EINVAL', `socket path must be 1..${SUN_PATH_MAX - 1} bytes: ${path}`);
  }
  const abstract = name[0] === 0x40;
  const addr = Buffer.alloc(2 + name.length + (abstract ? 0 : 1));
  addr.writeUInt16LE(AF_UNIX, 0);
  name.copy(addr, 2);
  if (abstract) addr[2] = 0;
  return addr;
}

/** File descriptors carried by SCM_RIGHTS messages in `cmsgs`. */
export function rightsOf(cmsgs: readonly Cmsg[]): number[] {
  const fds: number[] = [];
  for (const c of cmsgs) {
    if (c.level !== SOL_SOCKET || c.type !== SCM_RIGHTS) continue;
    const v = new DataView(c.data.buffer, c.data.byteOffset, c.data.byteLength);
    for (let i = 0; i + 4 <= c.data.length; i += 4) fds.push(v.getInt32(i, true));
  }
  return fds;
}
