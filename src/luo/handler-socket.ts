/**
 * Listening stream sockets, TCP (IPv4, IPv6) and Unix. The socket itself
 * crosses the exec: it never closes, so its backlog keeps queueing
 * connections and none is refused while the successor starts.
 */
import type { FdtWriter } from '../fdt/index.js';
import { fdListener, fdStat, type Listener, S_IFSOCK, sunPathText } from './_fd.js';
import { checkIdentity, type FileIdentity, loadIdentity, saveIdentity } from './_identity.js';
import type { NodeProps } from './_props.js';
import {
  LUO_SUN_PATH_MAX,
  LUO_TCP_LISTENER_COMPATIBLE,
  LUO_UNIX_LISTENER_COMPATIBLE,
  PROP_ADDRESS,
  PROP_FAMILY,
  PROP_PORT,
  PROP_SUN_PATH,
} from './abi.js';
import { LuoError } from './errors.js';
import type { FileHandler } from './handlers.js';

export interface TcpListenerData extends FileIdentity {
  family: 4 | 6;
  address: string;
  port: number;
}

export interface UnixListenerData extends FileIdentity {
  /** sun_path as bound; an abstract name starts with a 0 byte. */
  sunPath: Uint8Array;
}

function tcpText(d: { family: 4 | 6; address: string; port: number }): string {
  return d.family === 6 ? `tcp [${d.address}]:${d.port}` : `tcp ${d.address}:${d.port}`;
}

function sameListener(a: Listener, d: TcpListenerData | UnixListenerData): boolean {
  if (a.family === 'unix') {
    if (!('sunPath' in d) || a.sunPath.length !== d.sunPath.length) return false;
    return a.sunPath.every((b, i) => b === d.sunPath[i]);
  }
  return 'port' in d && a.family === d.family && a.address === d.address && a.port === d.port;
}

/** The socket at `fd` is the one preserved and still listening on the same address. */
function checkListener(fd: number, d: TcpListenerData | UnixListenerData, what: string): void {
  checkIdentity(fd, d, S_IFSOCK, what);
  const now = fdListener(fd);
  if (now === null) throw new LuoError('ESRCH', `fd ${fd} (${what}) is no longer listening`);
  if (!sameListener(now, d)) {
    const at = now.family === 'unix' ? `unix ${sunPathText(now.sunPath)}` : tcpText(now);
    throw new LuoError('ESRCH', `fd ${fd} (${what}) now listens on ${at}`);
  }
}

function identityOf(fd: number): FileIdentity {
  const st = fdStat(fd);
  if (st === null) throw new LuoError('ENOENT', `fd ${fd} closed while being preserved`);
  return { dev: st.dev, ino: st.ino };
}

export const tcpListenerHandler: FileHandler<TcpListenerData> = {
  compatible: LUO_TCP_LISTENER_COMPATIBLE,
  canPreserve(fd) {
    const l = fdListener(fd);
    return l !== null && l.family !== 'unix';
  },
  preserve(fd) {
    const l = fdListener(fd);
    if (l === null || l.family === 'unix') {
      throw new LuoError('ENOENT', `fd ${fd} is not a listening TCP socket`);
    }
    return { ...identityOf(fd), family: l.family, address: l.address, port: l.port };
  },
  unpreserve() {},
  freeze(fd, d) {
    checkListener(fd, d, tcpText(d));
    return d;
  },
  unfreeze() {},
  retrieve(fd, d) {
    checkListener(fd, d, tcpText(d));
    return d;
  },
  finish() {},
  save(w: FdtWriter, d) {
    saveIdentity(w, d);
    w.propertyU32(PROP_FAMILY, d.family);
    w.propertyString(PROP_ADDRESS, d.address);
    w.propertyU32(PROP_PORT, d.port);
  },
  load(p: NodeProps) {
    const family = p.u32(PROP_FAMILY);
    if (family !== 4 && family !== 6) {
      throw new LuoError('EFAULT', `corrupt handover: ${p.where}: family ${family} is not 4 or 6`);
    }
    return {
      ...loadIdentity(p),
      family,
      address: p.string(PROP_ADDRESS, 64),
      port: p.u32(PROP_PORT, 0xffff),
    };
  },
  describe: tcpText,
};

export const unixListenerHandler: FileHandler<UnixListenerData> = {
  compatible: LUO_UNIX_LISTENER_COMPATIBLE,
  canPreserve(fd) {
    return fdListener(fd)?.family === 'unix';
  },
  preserve(fd) {
    const l = fdListener(fd);
    if (l === null || l.family !== 'unix') {
      throw new LuoError('ENOENT', `fd ${fd} is not a listening Unix socket`);
    }
    return { ...identityOf(fd), sunPath: l.sunPath };
  },
  unpreserve() {},
  freeze(fd, d) {
    checkListener(fd, d, `unix ${sunPathText(d.sunPath)}`);
    return d;
  },
  unfreeze() {},
  retrieve(fd, d) {
    checkListener(fd, d, `unix ${sunPathText(d.sunPath)}`);
    return d;
  },
  finish() {},
  save(w: FdtWriter, d) {
    saveIdentity(w, d);
    w.property(PROP_SUN_PATH, d.sunPath);
  },
  load(p: NodeProps) {
    const raw = p.bytes(PROP_SUN_PATH);
    if (raw.length > LUO_SUN_PATH_MAX) {
      throw new LuoError(
        'EFAULT',
        `corrupt handover: ${p.where}: sun-path is ${raw.length} bytes, more than ${LUO_SUN_PATH_MAX}`,
      );
    }
    return { ...loadIdentity(p), sunPath: raw.slice() };
  },
  describe: (d) => `unix ${sunPathText(d.sunPath)}`,
};
