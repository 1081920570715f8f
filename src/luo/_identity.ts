/** The identity every file node carries (st_dev, st_ino) and its check after the exec. */
import type { FdtWriter } from '../fdt/index.js';
import { type FdStat, fdStat } from './_fd.js';
import type { NodeProps } from './_props.js';
import { PROP_DEV, PROP_INO } from './abi.js';
import { LuoError } from './errors.js';

/** The open file behind a descriptor: what must match after the exec. */
export interface FileIdentity {
  dev: bigint;
  ino: bigint;
}

export function saveIdentity(w: FdtWriter, id: FileIdentity): void {
  w.propertyU64(PROP_DEV, id.dev);
  w.propertyU64(PROP_INO, id.ino);
}

export function loadIdentity(p: NodeProps): FileIdentity {
  return { dev: p.u64(PROP_DEV), ino: p.u64(PROP_INO) };
}

/**
 * fstat `fd` and check it is the same open file, of the same type.
 * @throws LuoError ESRCH closed, another type, or another file
 */
export function checkIdentity(fd: number, id: FileIdentity, type: number, what: string): FdStat {
  const st = fdStat(fd);
  if (st === null) throw new LuoError('ESRCH', `fd ${fd} (${what}) is not open`);
  if (st.type !== type) {
    throw new LuoError(
      'ESRCH',
      `fd ${fd} (${what}) is now of type 0o${st.type.toString(8)}, not 0o${type.toString(8)}`,
    );
  }
  if (st.dev !== id.dev || st.ino !== id.ino) {
    throw new LuoError(
      'ESRCH',
      `fd ${fd} (${what}) is now dev ${st.dev} inode ${st.ino}, not dev ${id.dev} inode ${id.ino}`,
    );
  }
  return st;
}
