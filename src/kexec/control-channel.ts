/**
 * The control channel between a running generation and its preloaded
 * successor: a Unix stream socketpair carrying length-prefixed JSON frames,
 * with descriptors passed as SCM_RIGHTS alongside an `fds` frame.
 */
import { AF_UNIX, errnoName, F_GETFD, F_SETFD, FD_CLOEXEC, SOCK_STREAM } from '../sys/libc.js';
import {
  getProcLibc,
  MAX_FDS_PER_MESSAGE,
  MSG_CMSG_CLOEXEC,
  MSG_DONTWAIT,
  MSG_NOSIGNAL,
  POLLERR,
  POLLHUP,
  POLLIN,
  rightsOf,
  SOCK_CLOEXEC,
} from '../sys/socket.js';
import { KexecError } from './errors.js';

/** What the two generations say to each other. */
export type ControlMessage =
  /** successor -> predecessor: start-up done, waiting for go. */
  | { t: 'ready'; pid: number }
  /** predecessor -> successor: descriptors follow as SCM_RIGHTS, to be placed at these numbers. */
  | { t: 'fds'; numbers: number[] }
  /** predecessor -> successor: exec has begun; "go" (or "cancel") follows within the takeover timeout. */
  | { t: 'prepare' }
  /** successor -> predecessor: waits for "go" blocking from now on. */
  | { t: 'prepared' }
  /** predecessor -> successor: the exec failed before "go"; wait for the next one. */
  | { t: 'cancel' }
  /** predecessor -> successor: boot from `boot` ("<device path>@<boot block hex>"). */
  | { t: 'go'; boot: string }
  /** successor -> predecessor: booted; the predecessor must exit without touching the device. */
  | { t: 'took-over'; pid: number; generation: number }
  /** successor -> predecessor: could not boot. */
  | { t: 'failed'; message: string };

export interface Received {
  readonly msg: ControlMessage;
  /** Descriptors that came with an `fds` frame, in order. */
  readonly fds: readonly number[];
}

/** Frames larger than this are refused (the peer is not trusted to be sane). */
const MAX_FRAME = 64 * 1024;
/**
 * Frames decoded by a decoder of the channel's own: Buffer's toString is
 * everyone's, and its optimized code, made for the program's calls, was
 * thrown away at the first frame of a handover ("go", in the downtime).
 */
const UTF8 = new TextDecoder();
const READ_CHUNK = 64 * 1024;

export class ControlChannel {
  #fd: number | null;
  #pending = new Uint8Array(0);
  #fds: number[] = [];

  constructor(fd: number) {
    this.#fd = fd;
  }

  /**
   * A connected pair: this side's channel and the other end's descriptor,
   * both close-on-exec (spawn places the child's end without the flag).
   * @throws KexecError EIO when socketpair fails.
   */
  static pair(): { channel: ControlChannel; peerFd: number } {
    const libc = getProcLibc();
    const sv = libc.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC);
    if (sv === null) throw new KexecError('EIO', `socketpair: ${errnoName(libc.errno())}`);
    return { channel: new ControlChannel(sv[0]), peerFd: sv[1] };
  }

  /**
   * Adopts an inherited channel descriptor and marks it close-on-exec, so it
   * leaks neither into this process's children nor through a later execve.
   * @throws KexecError EINVAL when `fd` is not an open descriptor.
   */
  static adopt(fd: number): ControlChannel {
    const libc = getProcLibc();
    const fl = Number.isSafeInteger(fd) && fd >= 0 ? libc.fcntl(fd, F_GETFD, 0) : -1;
    if (fl < 0) throw new KexecError('EINVAL', `control channel descriptor ${fd} is not open`);
    libc.fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
    return new ControlChannel(fd);
  }

  get fd(): number {
    if (this.#fd === null) throw new KexecError('EIO', 'control channel is closed');
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd === null;
  }

  /**
   * Sends one frame, blocking until it is written; `fds` travel with it.
   * @throws KexecError EIO when the peer is gone; EINVAL for too many fds.
   */
  send(msg: ControlMessage, fds: readonly number[] = []): void {
    if (fds.length > MAX_FDS_PER_MESSAGE) {
      throw new KexecError('EINVAL', `at most ${MAX_FDS_PER_MESSAGE} descriptors per message`);
    }
    // UTF-8 by default: naming the encoding sends node through its encoding
    // lookup, whose optimized code a first "go" threw away in the downtime.
    const body = Buffer.from(JSON.stringify(msg));
    const frame = new Uint8Array(4 + body.length);
    new DataView(frame.buffer).setUint32(0, body.length, true);
    frame.set(body, 4);
    const libc = getProcLibc();
    for (let off = 0; off < frame.length; ) {
      const n = libc.sendmsg(this.fd, frame.subarray(off), off === 0 ? fds : [], MSG_NOSIGNAL);
      if (n < 0) {
        const e = errnoName(libc.errno());
        if (e === 'EINTR' || e === 'EAGAIN') continue;
        throw new KexecError('EIO', `control channel: sendmsg: ${e}`);
      }
      off += n;
    }
  }

  /**
   * Waits up to `timeoutMs` for one frame, blocking the thread.
   * @returns null on timeout.
   * @throws KexecError EIO when the peer closed or sent a bad frame.
   */
  receiveSync(timeoutMs: number): Received | null {
    const deadline = Date.now() + timeoutMs;
    const libc = getProcLibc();
    for (;;) {
      const got = this.#parse();
      if (got !== null) return got;
      const left = Math.max(0, deadline - Date.now());
      const rev = libc.poll(this.fd, POLLIN, Math.min(left, 2 ** 31 - 1));
      if (rev < 0 && errnoName(libc.errno()) !== 'EINTR') {
        throw new KexecError('EIO', `control channel: poll: ${errnoName(libc.errno())}`);
      }
      if (rev > 0) this.#read(rev);
      else if (left === 0) return null;
    }
  }

  /**
   * Waits for one frame without blocking the event loop (poll runs on a worker thread).
   * @throws KexecError EIO when the peer closed or sent a bad frame.
   */
  async receive(): Promise<Received> {
    const libc = getProcLibc();
    for (;;) {
      const got = this.#parse();
      if (got !== null) return got;
      const rev = await libc.pollAsync(this.fd, POLLIN, -1);
      if (rev > 0) this.#read(rev);
    }
  }

  /**
   * Waits up to `timeoutMs` for one frame without blocking the event loop:
   * no poll of this channel is left running on a worker thread after it
   * settles, so a blocking receive may follow it.
   * @returns null on timeout.
   * @throws KexecError EIO when the peer closed or sent a bad frame.
   */
  async receiveWithin(timeoutMs: number): Promise<Received | null> {
    const libc = getProcLibc();
    const got = this.#parse();
    if (got !== null) return got;
    const rev = await libc.pollAsync(this.fd, POLLIN, Math.max(0, Math.floor(timeoutMs)));
    if (rev > 0) this.#read(rev);
    return this.#parse();
  }

  /** Closes descriptors a frame handed out that the receiver will not keep. */
  static closeReceived(fds: readonly number[]): void {
    const libc = getProcLibc();
    for (const f of fds) libc.close(f);
  }

  /** Closes this end and any received descriptors not yet handed out. Idempotent. */
  close(): void {
    const fd = this.#fd;
    if (fd === null) return;
    this.#fd = null;
    const libc = getProcLibc();
    for (const f of this.#fds) libc.close(f);
    this.#fds = [];
    libc.close(fd);
  }

  #read(revents: number): void {
    const libc = getProcLibc();
    const buf = new Uint8Array(READ_CHUNK);
    const { n, cmsgs } = libc.recvmsg(this.fd, buf, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) {
      const e = errnoName(libc.errno());
      if (e === 'EAGAIN' || e === 'EINTR') return;
      // A peer that closed with frames of ours unread resets the connection: gone all the same.
      if (e === 'ECONNRESET')
        throw new KexecError('EIO', 'control channel: the peer hung up (connection reset)');
      throw new KexecError('EIO', `control channel: recvmsg: ${e}`);
    }
    this.#fds.push(...rightsOf(cmsgs));
    if (n === 0) {
      const why = revents & (POLLHUP | POLLERR) ? 'hung up' : 'closed it';
      throw new KexecError('EIO', `control channel: the peer ${why}`);
    }
    const next = new Uint8Array(this.#pending.length + n);
    next.set(this.#pending);
    next.set(buf.subarray(0, n), this.#pending.length);
    this.#pending = next;
  }

  #parse(): Received | null {
    const p = this.#pending;
    if (p.length < 4) return null;
    const len = new DataView(p.buffer, p.byteOffset, 4).getUint32(0, true);
    if (len > MAX_FRAME)
      throw new KexecError('EIO', `control channel: frame of ${len} bytes refused`);
    if (p.length < 4 + len) return null;
    const text = UTF8.decode(p.subarray(4, 4 + len));
    this.#pending = p.slice(4 + len);
    const msg = decode(text);
    if (msg.t !== 'fds') return { msg, fds: [] };
    if (msg.numbers.length > this.#fds.length) {
      throw new KexecError(
        'EIO',
        `control channel: ${msg.numbers.length} descriptors announced, ${this.#fds.length} received`,
      );
    }
    return { msg, fds: this.#fds.splice(0, msg.numbers.length) };
  }
}

/** Checks a frame's shape; anything else is a protocol error. */
function decode(text: string): ControlMessage {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new KexecError('EIO', 'control channel: a frame is not JSON');
  }
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  const int = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;
  switch (o.t) {
    case 'ready':
      if (int(o.pid)) return { t: 'ready', pid: o.pid as number };
      break;
    case 'fds':
      if (
        Array.isArray(o.numbers) &&
        o.numbers.length <= MAX_FDS_PER_MESSAGE &&
        o.numbers.every(int)
      ) {
        return { t: 'fds', numbers: o.numbers as number[] };
      }
      break;
    case 'prepare':
    case 'prepared':
    case 'cancel':
      return { t: o.t };
    case 'go':
      if (typeof o.boot === 'string' && o.boot.length <= 4096) return { t: 'go', boot: o.boot };
      break;
    case 'took-over':
      if (int(o.pid) && int(o.generation)) {
        return { t: 'took-over', pid: o.pid as number, generation: o.generation as number };
      }
      break;
    case 'failed':
      if (typeof o.message === 'string') return { t: 'failed', message: o.message.slice(0, 4096) };
      break;
  }
  throw new KexecError('EIO', `control channel: bad frame ${text.slice(0, 80)}`);
}
