/**
 * memfds for programs that keep state across the exec: anonymous files in
 * memory whose descriptor a LUO session preserves. Read and write them with
 * node:fs (readSync/writeSync) or these helpers.
 */
import { closeSync, fstatSync, readSync, writeSync } from 'node:fs';
import { show } from '../base/errors.js';
import { getLibc, MFD_CLOEXEC } from '../sys/libc.js';
import { LuoError } from './errors.js';

/** memfd_create's limit on the name, in bytes (249 = 255 minus "memfd:"). */
export const MEMFD_NAME_MAX = 249;

/**
 * A new memfd of `size` bytes (zeros), close-on-exec like everything Node opens.
 * @throws LuoError EINVAL bad name or size, or memfd_create/ftruncate refused
 */
export function createMemfd(name: string, size = 0): number {
  if (typeof name !== 'string' || name.includes('\0') || Buffer.byteLength(name) > MEMFD_NAME_MAX) {
    throw new LuoError('EINVAL', `memfd name must be at most ${MEMFD_NAME_MAX} bytes, no NUL`);
  }
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new LuoError('EINVAL', `memfd size ${show(size)} is not a non-negative integer`);
  }
  const libc = getLibc();
  const fd = libc.memfdCreate(name, MFD_CLOEXEC);
  if (fd < 0) throw new LuoError('EINVAL', `memfd_create failed (errno ${libc.errno()})`);
  if (size > 0 && libc.ftruncate(fd, size) !== 0) {
    const errno = libc.errno();
    closeSync(fd);
    throw new LuoError('EINVAL', `ftruncate of memfd to ${size} bytes failed (errno ${errno})`);
  }
  return fd;
}

/**
 * Write all of `data` at `position`, or at the file position (advancing it) when null.
 * @returns bytes written (all of them)
 */
export function memfdWrite(fd: number, data: Uint8Array, position: number | null = null): number {
  let done = 0;
  while (done < data.length) {
    const at = position === null ? null : position + done;
    done += writeSync(fd, data, done, data.length - done, at);
  }
  return done;
}

/**
 * Read up to `length` bytes at `position`, or at the file position (advancing
 * it) when null; fewer at the end of the file.
 */
export function memfdRead(fd: number, length: number, position: number | null = null): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const at = position === null ? null : position + done;
    const n = readSync(fd, out, done, length - done, at);
    if (n === 0) break;
    done += n;
  }
  return out.subarray(0, done);
}

/** Its size in bytes. */
export function memfdSize(fd: number): number {
  return fstatSync(fd).size;
}
