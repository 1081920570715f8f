/**
 * Regular files (not memfds): the open file description crosses the exec
 * with its position and open flags; freeze records the position, the
 * successor checks identity and position. The path is kept for messages only.
 */
import type { FdtWriter } from '../fdt/index.js';
import { fdLink, fdPosition, fdStat, S_IFREG } from './_fd.js';
import { checkIdentity, type FileIdentity, loadIdentity, saveIdentity } from './_identity.js';
import type { NodeProps } from './_props.js';
import { LUO_FILE_COMPATIBLE, PROP_PATH, PROP_POSITION } from './abi.js';
import { LuoError } from './errors.js';
import { memfdName } from './handler-memfd.js';
import type { FileHandler } from './handlers.js';

export interface FileData extends FileIdentity {
  /** Where it was opened, as /proc/self/fd says; may be stale (renamed, deleted). */
  path: string;
  position: bigint;
}

/** Longest path kept (PATH_MAX). */
const PATH_MAX = 4096;

function snapshot(fd: number, code: 'ENOENT' | 'ESRCH'): FileData {
  const st = fdStat(fd);
  const position = fdPosition(fd);
  if (st === null || st.type !== S_IFREG || position === null || memfdName(fd) !== null) {
    throw new LuoError(code, `fd ${fd} is not an open regular file`);
  }
  let path = fdLink(fd) ?? '?';
  if (Buffer.byteLength(path) > PATH_MAX) path = '?';
  return { dev: st.dev, ino: st.ino, path: path === '' ? '?' : path, position };
}

function text(d: FileData): string {
  return `file ${d.path} at ${d.position}`;
}

export const fileHandler: FileHandler<FileData> = {
  compatible: LUO_FILE_COMPATIBLE,
  canPreserve(fd) {
    return fdStat(fd)?.type === S_IFREG && memfdName(fd) === null;
  },
  preserve(fd) {
    return snapshot(fd, 'ENOENT');
  },
  unpreserve() {},
  freeze(fd, d) {
    checkIdentity(fd, d, S_IFREG, text(d));
    return { ...snapshot(fd, 'ESRCH'), path: d.path };
  },
  unfreeze() {},
  retrieve(fd, d) {
    checkIdentity(fd, d, S_IFREG, text(d));
    const position = fdPosition(fd);
    if (position !== d.position) {
      throw new LuoError('ESRCH', `fd ${fd} (${text(d)}) is now at position ${position}`);
    }
    return d;
  },
  finish() {},
  save(w: FdtWriter, d) {
    saveIdentity(w, d);
    w.propertyString(PROP_PATH, d.path);
    w.propertyU64(PROP_POSITION, d.position);
  },
  load(p: NodeProps) {
    return {
      ...loadIdentity(p),
      path: p.string(PROP_PATH, PATH_MAX),
      position: p.u64(PROP_POSITION),
    };
  },
  describe: text,
};
