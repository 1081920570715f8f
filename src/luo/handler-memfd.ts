/**
 * memfds: the open file description crosses the exec, so contents, size and
 * position survive as they are; freeze records size and position and the
 * successor checks both. Close-on-exec and seals are not part of the state
 * (as LUO's memfd handler).
 */
import type { FdtWriter } from '../fdt/index.js';
import { fdLink, fdPosition, fdStat, S_IFREG } from './_fd.js';
import { checkIdentity, type FileIdentity, loadIdentity, saveIdentity } from './_identity.js';
import type { NodeProps } from './_props.js';
import { LUO_MEMFD_COMPATIBLE, PROP_NAME, PROP_POSITION, PROP_SIZE } from './abi.js';
import { LuoError } from './errors.js';
import type { FileHandler } from './handlers.js';

export interface MemfdData extends FileIdentity {
  /** The name given to memfd_create (without the "memfd:" prefix). */
  name: string;
  size: bigint;
  position: bigint;
}

const PREFIX = '/memfd:';
const DELETED = ' (deleted)';

/** The memfd name behind `fd`, or null when it is not a memfd. */
export function memfdName(fd: number): string | null {
  const link = fdLink(fd);
  if (link === null || !link.startsWith(PREFIX)) return null;
  const end = link.endsWith(DELETED) ? link.length - DELETED.length : link.length;
  return link.slice(PREFIX.length, end);
}

/** Current identity, size and position. @throws LuoError (code) when `fd` is not a memfd any more */
function snapshot(fd: number, code: 'ENOENT' | 'ESRCH'): MemfdData {
  const name = memfdName(fd);
  const st = fdStat(fd);
  const position = fdPosition(fd);
  if (name === null || st === null || st.type !== S_IFREG || position === null) {
    throw new LuoError(code, `fd ${fd} is not an open memfd`);
  }
  return { dev: st.dev, ino: st.ino, name, size: st.size, position };
}

function text(d: MemfdData): string {
  return `memfd:${d.name} (${d.size} bytes at ${d.position})`;
}

export const memfdHandler: FileHandler<MemfdData> = {
  compatible: LUO_MEMFD_COMPATIBLE,
  canPreserve(fd) {
    return memfdName(fd) !== null && fdStat(fd)?.type === S_IFREG;
  },
  preserve(fd) {
    return snapshot(fd, 'ENOENT');
  },
  unpreserve() {},
  freeze(fd, d) {
    checkIdentity(fd, d, S_IFREG, text(d));
    return snapshot(fd, 'ESRCH');
  },
  unfreeze() {},
  retrieve(fd, d) {
    const st = checkIdentity(fd, d, S_IFREG, text(d));
    if (st.size !== d.size) {
      throw new LuoError('ESRCH', `fd ${fd} (${text(d)}) now holds ${st.size} bytes`);
    }
    const position = fdPosition(fd);
    if (position !== d.position) {
      throw new LuoError('ESRCH', `fd ${fd} (${text(d)}) is now at position ${position}`);
    }
    return d;
  },
  finish() {},
  save(w: FdtWriter, d) {
    saveIdentity(w, d);
    w.propertyString(PROP_NAME, d.name);
    w.propertyU64(PROP_SIZE, d.size);
    w.propertyU64(PROP_POSITION, d.position);
  },
  load(p: NodeProps) {
    return {
      ...loadIdentity(p),
      name: p.string(PROP_NAME, 249),
      size: p.u64(PROP_SIZE),
      position: p.u64(PROP_POSITION),
    };
  },
  describe: text,
};
