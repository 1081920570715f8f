import {
  closeSync,
  constants as fsConstants,
  fstatSync,
  lstatSync,
  openSync,
  readSync,
} from 'node:fs';
import { hex } from '../base/hex.js';
import { checkDeviceFile } from './_owner-rule.js';
import { type MemoryDevice, PAGE_SIZE } from './device.js';
import { DeviceError } from './errors.js';

/**
 * A device file opened for inspection by tools (`kho status`, `pkram ls`):
 * read with pread, never mapped, never locked, so it works while the owner
 * runs. Views are copies: writing to them changes nothing. What it shows is
 * a snapshot of each range at the moment it is read.
 */
export class ReadonlyDevice implements MemoryDevice {
  readonly pageSize = PAGE_SIZE;
  readonly pages: number;
  #fd: number | null;

  private constructor(
    fd: number,
    readonly size: number,
    readonly name: string,
  ) {
    this.#fd = fd;
    this.pages = Math.floor(size / PAGE_SIZE);
  }

  /**
   * @throws DeviceError ENOENT, ELOOP (symlink), EACCES; EINVAL not a regular
   *   file (a directory would fail every read, a FIFO would block the open);
   *   EPERM another user's or writable by others, as every owner refuses it.
   */
  static open(path: string): ReadonlyDevice {
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(path);
    } catch {
      throw new DeviceError('ENOENT', `${path}: no such device file`);
    }
    if (st.isSymbolicLink()) throw new DeviceError('ELOOP', `${path} is a symlink; refusing it`);
    if (!st.isFile()) throw new DeviceError('EINVAL', `${path} is not a regular file`);
    let fd: number;
    try {
      // O_NONBLOCK: should the path be swapped for a FIFO after the check, open does not hang.
      fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
    } catch (err) {
      throw new DeviceError(
        'EACCES',
        `open(${path}): ${(err as NodeJS.ErrnoException).code ?? err}`,
      );
    }
    const fst = fstatSync(fd);
    try {
      checkDeviceFile(path, fst);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    const size = fst.size;
    return new ReadonlyDevice(fd, size - (size % PAGE_SIZE), path);
  }

  bytes(phys: number, length: number): Uint8Array {
    const fd = this.#fd;
    if (fd === null) throw new DeviceError('EBADF', `${this.name} is closed`);
    if (
      !Number.isSafeInteger(phys) ||
      !Number.isSafeInteger(length) ||
      phys < 0 ||
      length < 0 ||
      phys + length > this.size
    ) {
      throw new DeviceError(
        'EFAULT',
        `${this.name}: [${hex(phys)}, +${hex(length)}) is outside the device`,
      );
    }
    const out = new Uint8Array(length);
    for (let got = 0; got < length; ) {
      const n = readSync(fd, out, got, length - got, phys + got);
      if (n === 0) break;
      got += n;
    }
    return out;
  }

  view(phys: number, length: number): DataView {
    const b = this.bytes(phys, length);
    return new DataView(b.buffer);
  }

  flush(): void {
    throw new DeviceError('EINVAL', `${this.name} is opened read-only`);
  }

  close(): void {
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
  }
}
