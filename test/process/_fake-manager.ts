/**
 * A small service manager for tests, speaking the sd_notify protocol as
 * systemd does: it reads datagrams on its NOTIFY_SOCKET (READY=1, FDSTORE=1
 * with FDNAME= and the descriptors by SCM_RIGHTS, FDSTOREREMOVE=1), keeps the
 * stored descriptors, and starts the service again with them as LISTEN_FDS,
 * LISTEN_FDNAMES and LISTEN_PID, from fd 3 on.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { AF_UNIX } from '../../src/sys/libc.js';
import {
  getProcLibc,
  MSG_CMSG_CLOEXEC,
  MSG_DONTWAIT,
  POLLIN,
  rightsOf,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
} from '../../src/sys/socket.js';
import { tempDevice } from './_fixture.js';

export class FakeServiceManager {
  readonly path = tempDevice('notify');
  readonly fd: number;
  /** Stored descriptors by name (in this process), in storing order. */
  readonly store = new Map<string, number>();
  readonly notifications: string[] = [];
  #closed = false;

  constructor() {
    const libc = getProcLibc();
    this.fd = libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (this.fd < 0 || libc.bind(this.fd, this.path) !== 0) throw new Error('fake manager: bind');
    void this.#loop();
  }

  async #loop(): Promise<void> {
    const libc = getProcLibc();
    while (!this.#closed) {
      const rev = await libc.pollAsync(this.fd, POLLIN, 200);
      if (rev <= 0 || this.#closed) continue;
      const buf = new Uint8Array(4096);
      const { n, cmsgs } = libc.recvmsg(this.fd, buf, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
      if (n < 0) continue;
      const text = Buffer.from(buf.subarray(0, n)).toString('utf8');
      this.notifications.push(text);
      const fields = new Map(
        text.split('\n').map((l) => [l.split('=')[0], l.slice(l.indexOf('=') + 1)]),
      );
      const fds = rightsOf(cmsgs);
      const name = fields.get('FDNAME') ?? 'stored';
      if (fields.get('FDSTORE') === '1') {
        for (const fd of fds) {
          const old = this.store.get(name);
          if (old !== undefined) libc.close(old);
          this.store.set(name, fd);
        }
      } else {
        for (const fd of fds) libc.close(fd);
        if (fields.get('FDSTOREREMOVE') === '1') {
          const old = this.store.get(name);
          if (old !== undefined) libc.close(old);
          this.store.delete(name);
        }
      }
    }
  }

  /** Waits until a notification matches. */
  async waitFor(match: (text: string) => boolean, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.notifications.find(match);
      if (found !== undefined) return found;
      if (Date.now() > deadline)
        throw new Error(
          `fake manager: no notification matched; got ${JSON.stringify(this.notifications)}`,
        );
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /**
   * Starts `node args` as the service: NOTIFY_SOCKET, and the stored
   * descriptors from fd 3 on with LISTEN_FDS, LISTEN_FDNAMES and (through a
   * shell that execs node, so the PID is known) LISTEN_PID.
   */
  start(args: readonly string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
    const names = [...this.store.keys()];
    const fds = [...this.store.values()];
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env, NOTIFY_SOCKET: this.path };
    if (fds.length > 0) {
      childEnv.LISTEN_FDS = String(fds.length);
      childEnv.LISTEN_FDNAMES = names.join(':');
    }
    const quoted = [process.execPath, ...args]
      .map((a) => `'${a.replaceAll("'", "'\\''")}'`)
      .join(' ');
    const script = fds.length > 0 ? `LISTEN_PID=$$ exec ${quoted}` : `exec ${quoted}`;
    return spawn('/bin/sh', ['-c', script], {
      stdio: ['pipe', 'pipe', 'pipe', ...fds],
      env: childEnv,
    });
  }

  close(): void {
    this.#closed = true;
    const libc = getProcLibc();
    for (const fd of this.store.values()) libc.close(fd);
    this.store.clear();
    libc.close(this.fd);
  }
}
