/**
 * What a real process needs to hand over, on the one libc binding in
 * ./libc.ts: execve, descriptor flags, Unix sockets with ancillary
 * data (SCM_RIGHTS, SCM_CREDENTIALS) and poll. Structures passed by pointer
 * (msghdr, iovec, cmsghdr, pollfd, sockaddr_un) are laid out here by hand,
 * in memory from the binding's alloc, for LP64 Linux (x86-64 and arm64 share
 * these layouts).
 */
import { constants as osConstants } from 'node:os';
import { LivekexecError } from '../base/errors.js';
import { AF_UNIX, getLibc, type Libc, SOL_SOCKET } from './libc.js';

export const SOCK_DGRAM = 2;
export const SOCK_CLOEXEC = 0o2000000;
export const SO_PASSCRED = 16;
export const SCM_RIGHTS = 1;
export const SCM_CREDENTIALS = 2;
export const MSG_NOSIGNAL = 0x4000;
export const MSG_DONTWAIT = 0x40;
export const MSG_CMSG_CLOEXEC = 0x40000000;
export const POLLIN = 0x1;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
/** Bytes of sun_path in struct sockaddr_un. */
export const SUN_PATH_MAX = 108;
export const SIGPROF = osConstants.signals.SIGPROF;
export const SIG_IGN = 1n;
/** Bytes of glibc's struct sigaction on LP64 Linux (152), with room to spare. */
export const SIGACTION_SIZE = 256;
/** At most this many descriptors travel in one message (the kernel's SCM_MAX_FD is 253). */
export const MAX_FDS_PER_MESSAGE = 253;
/** The scratch block kept for sendmsg and recvmsg: a 64 KiB read, its header and the most descriptors. */
const KEPT_SCRATCH = 68 * 1024;

const CMSG_HDR = 16;
const MSGHDR_SIZE = 56;
const IOVEC_SIZE = 16;

/** One ancillary message received with data. */
export interface Cmsg {
  readonly level: number;
  readonly type: number;
  readonly data: Uint8Array;
}

export interface ProcLibc {
  /** Only returns on failure (-1, errno set). */
  execve(path: string, argv: readonly string[], envp: readonly string[]): number;
  /** signal(2), handlers as integers (SIG_IGN, or what it returned before); SIG_ERR on failure. */
  signal(sig: number, handler: bigint): bigint;
  /** sigaction(2), struct sigaction as opaque bytes (SIGACTION_SIZE); 0 or -1. */
  sigaction(sig: number, act: Uint8Array | null, oldact: Uint8Array | null): number;
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
  /** sendmsg of `data` with SCM_RIGHTS for `fds` when any; to a path when `to` is given ("@name" is abstract). */
  sendmsg(fd: number, data: Uint8Array, fds: readonly number[], flags: number, to?: string): number;
  /** recvmsg into `into`; -1 with errno on failure. */
  recvmsg(fd: number, into: Uint8Array, flags: number): { n: number; cmsgs: Cmsg[] };
  /** poll one descriptor; the returned revents, 0 on timeout, -1 on error. */
  poll(fd: number, events: number, timeoutMs: number): number;
  /** poll on a worker thread, so the event loop keeps running. */
  pollAsync(fd: number, events: number, timeoutMs: number): Promise<number>;
  errno(): number;
  /** The calling thread's nice value (setpriority; per thread on Linux). */
  setNice(nice: number): number;
  schedYield(): number;
  /** waitpid(2) without the status: the child's PID, 0 (WNOHANG, still running) or -1 (errno). */
  waitpid(pid: number, options: number): number;
}

let procLibc: ProcLibc | null = null;

export function getProcLibc(): ProcLibc {
  if (procLibc !== null) return procLibc;
  const libc = getLibc();
  procLibc = {
    execve: (path, argv, envp) => libc.execve(path, argv, envp),
    setNice: (nice) => libc.setNice(nice),
    schedYield: () => libc.schedYield(),
    waitpid: (pid, options) => libc.waitpid(pid, options),
    signal: (sig, handler) => libc.signal(sig, handler),
    sigaction: (sig, act, oldact) => libc.sigaction(sig, act, oldact),
    fcntl: (fd, cmd, arg) => libc.fcntl(fd, cmd, arg),
    close: (fd) => libc.close(fd),
    dup2: (from, to) => libc.dup2(from, to),
    socket: (d, t, p) => libc.socket(d, t, p),
    socketpair: (d, t) => libc.socketpair(d, t),
    setsockoptInt: (fd, level, name, value) => libc.setsockoptInt(fd, level, name, value),
    bind: (fd, path) => libc.bind(fd, sockaddrUn(path)),
    sendto: (fd, data, path, flags) => libc.sendto(fd, data, flags, sockaddrUn(path)),
    sendmsg: (fd, data, fds, flags, to) => {
      const ctl = fds.length > 0 ? cmsgSpace(fds.length * 4) : 0;
      const name = to === undefined ? null : sockaddrUn(to);
      const nameAt = MSGHDR_SIZE + IOVEC_SIZE + data.length + ctl;
      const scratch = Scratch.take(libc, nameAt + (name === null ? 0 : name.length));
      try {
        const iov = scratch.at(MSGHDR_SIZE);
        const buf = scratch.at(MSGHDR_SIZE + IOVEC_SIZE);
        const control = scratch.at(MSGHDR_SIZE + IOVEC_SIZE + data.length);
        scratch.bytes.set(data, MSGHDR_SIZE + IOVEC_SIZE);
        const v = scratch.view;
        v.setBigUint64(MSGHDR_SIZE, buf, true);
        v.setBigUint64(MSGHDR_SIZE + 8, BigInt(data.length), true);
        writeMsghdr(v, iov, ctl > 0 ? control : 0n, ctl);
        v.setBigUint64(0, name === null ? 0n : scratch.at(nameAt), true);
        v.setUint32(8, name === null ? 0 : name.length, true);
        if (name !== null) scratch.bytes.set(name, nameAt);
        if (ctl > 0) {
          const at = MSGHDR_SIZE + IOVEC_SIZE + data.length;
          v.setBigUint64(at, BigInt(CMSG_HDR + fds.length * 4), true);
          v.setInt32(at + 8, SOL_SOCKET, true);
          v.setInt32(at + 12, SCM_RIGHTS, true);
          fds.forEach((f, i) => {
            v.setInt32(at + CMSG_HDR + 4 * i, f, true);
          });
        }
        return libc.sendmsg(fd, scratch.ptr, flags);
      } finally {
        scratch.release();
      }
    },
    recvmsg: (fd, into, flags) => {
      const ctl = cmsgSpace(MAX_FDS_PER_MESSAGE * 4);
      const scratch = Scratch.take(libc, MSGHDR_SIZE + IOVEC_SIZE + into.length + ctl);
      try {
        const bufAt = MSGHDR_SIZE + IOVEC_SIZE;
        const ctlAt = bufAt + into.length;
        const v = scratch.view;
        v.setBigUint64(MSGHDR_SIZE, scratch.at(bufAt), true);
        v.setBigUint64(MSGHDR_SIZE + 8, BigInt(into.length), true);
        writeMsghdr(v, scratch.at(MSGHDR_SIZE), scratch.at(ctlAt), ctl);
        const n = libc.recvmsg(fd, scratch.ptr, flags);
        if (n < 0) return { n, cmsgs: [] };
        into.set(scratch.bytes.subarray(bufAt, bufAt + n));
        const ctlLen = Math.min(Number(v.getBigUint64(40, true)), ctl);
        return { n, cmsgs: parseCmsgs(scratch.bytes.subarray(ctlAt, ctlAt + ctlLen)) };
      } finally {
        scratch.release();
      }
    },
    poll: (fd, events, timeoutMs) => {
      // One struct for every blocking poll (a new one is an ArrayBuffer koffi must pin).
      const pfd = pollfd(fd, events, SYNC_POLLFD);
      const rc = libc.poll(pfd, 1, timeoutMs);
      return rc <= 0 ? rc : pfd.readInt16LE(6);
    },
    pollAsync: async (fd, events, timeoutMs) => {
      const pfd = pollfd(fd, events);
      const rc = await libc.pollAsync(pfd, 1, timeoutMs);
      return rc <= 0 ? rc : pfd.readInt16LE(6);
    },
    errno: () => libc.errno(),
  };
  return procLibc;
}

const SYNC_POLLFD = Buffer.alloc(8);

/** One struct pollfd, in `pfd` or a new buffer. */
function pollfd(fd: number, events: number, pfd = Buffer.alloc(8)): Buffer {
  pfd.fill(0);
  pfd.writeInt32LE(fd, 0);
  pfd.writeInt16LE(events, 4);
  return pfd;
}

/**
 * A block of C memory with its address, for structures that hold pointers.
 * One block of up to KEPT_SCRATCH bytes is kept and reused: each new one is
 * an external ArrayBuffer (koffi.view), and V8 may collect garbage before
 * making one (profiles of a preloaded takeover showed the successor's first
 * frame after its boot spending several ms there, inside the downtime).
 */
class Scratch {
  readonly ptr: unknown;
  readonly base: bigint;
  readonly bytes: Uint8Array;
  readonly view: DataView;
  #inUse = false;
  static #kept: Scratch | null = null;

  /** A zeroed block of at least `size` bytes; release() it after the call. */
  static take(libc: Libc, size: number): Scratch {
    const kept = Scratch.#kept;
    if (kept !== null && !kept.#inUse && size <= kept.bytes.length) {
      kept.bytes.fill(0, 0, size);
      kept.#inUse = true;
      return kept;
    }
    // The first block that fits is made full size and kept; any other is freed at release.
    const keep = kept === null && size <= KEPT_SCRATCH;
    const s = new Scratch(libc, keep ? KEPT_SCRATCH : size);
    if (keep) Scratch.#kept = s;
    s.#inUse = true;
    return s;
  }

  private constructor(
    private readonly libc: Libc,
    size: number,
  ) {
    this.ptr = libc.alloc(size);
    this.base = libc.address(this.ptr);
    const ab = libc.view(this.ptr, size);
    this.bytes = new Uint8Array(ab);
    this.bytes.fill(0);
    this.view = new DataView(ab);
  }

  at(offset: number): bigint {
    return this.base + BigInt(offset);
  }

  release(): void {
    this.#inUse = false;
    if (Scratch.#kept !== this) this.libc.free(this.ptr);
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

/**
 * struct sockaddr_un for `path`; a leading '@' names the abstract namespace.
 * @throws LivekexecError EINVAL a path that is empty or longer than sun_path
 */
function sockaddrUn(path: string): Buffer {
  const name = Buffer.from(path, 'utf8');
  if (name.length === 0 || name.length >= SUN_PATH_MAX) {
    throw new LivekexecError('EINVAL', `socket path must be 1..${SUN_PATH_MAX - 1} bytes: ${path}`);
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
