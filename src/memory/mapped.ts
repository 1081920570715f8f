import {
  closeSync,
  constants as fsConstants,
  fstatSync,
  lstatSync,
  openSync,
  readFileSync,
  readSync,
  type Stats,
  statfsSync,
  unlinkSync,
} from 'node:fs';
import { show } from '../base/errors.js';
import {
  errnoName,
  F_GETFD,
  F_SETFD,
  FD_CLOEXEC,
  getLibc,
  LOCK_EX,
  LOCK_NB,
  MFD_CLOEXEC,
  MS_SYNC,
  O_CREAT,
  O_EXCL,
  O_NOFOLLOW,
  O_RDONLY,
  O_RDWR,
} from '../sys/libc.js';
import { checkDeviceFile } from './_owner-rule.js';
import { checkRange } from './_range.js';
import {
  type DeviceShrink,
  markIdle,
  markOwned,
  reclaimAbandoned,
  TruncationGuard,
} from './_truncation.js';
import { type Window as Mapping, mapWindow, unmapWindow } from './_window.js';
import { type MemoryDevice, PAGE_SIZE } from './device.js';
import { DeviceError, type DeviceErrorCode } from './errors.js';
import { growDeviceFile } from './hotplug.js';

const HUGETLBFS_MAGIC = 0x958458f6;
/** Devices up to this size are mapped as one window. */
const SINGLE_WINDOW_MAX = 2 ** 32;
/** madvise: fault pages in, writable (Linux 5.14). */
const MADV_POPULATE_WRITE = 23;
/** madvise: drop the range's page-table entries (a shared mapping keeps its pages in the file). */
const MADV_DONTNEED = 4;
/** Bytes one zap call drops at most: an exec that comes meanwhile waits for one call at most. */
const ZAP_STEP = 64 * 2 ** 20;
/** Above it, overlapping windows of 2 * WINDOW start every WINDOW bytes, so any access up to WINDOW fits one. */
const WINDOW = 2 ** 30;
/** Preallocation step, so create can report real progress. */
const DEFAULT_CHUNK = 64 * 2 ** 20;

export interface MappedOpenOptions {
  /** Create the file (mode 0600) when it does not exist. Needs `size`. */
  create?: boolean;
  /** With create: fail with EEXIST when the file exists. */
  exclusive?: boolean;
  /**
   * Device size in bytes (a multiple of 4096; rounded up to the huge page size
   * on hugetlbfs). An existing file must have exactly this size.
   */
  size?: number;
  /** Called after each preallocated chunk while a new file is filled. */
  onProgress?: (done: number, total: number) => void;
  /** Preallocation chunk in bytes (default 64 MiB). */
  chunkSize?: number;
  /**
   * An existing file with holes is filled before it is mapped (default true).
   * With false it is refused instead (EINVAL), and nothing is allocated: for
   * tools that must not grow a file they have not recognised as a device.
   */
  fillHoles?: boolean;
}

/** What `MappedDevice.peek` reads without taking ownership. */
export interface DevicePeek {
  readonly size: number;
  /** The first min(size, 4096) bytes: the device header. */
  readonly page0: Uint8Array;
  /** PID holding the device, when it is held and /proc/locks says by whom. */
  readonly ownerPid: number | undefined;
}

/**
 * A real memory device: a file mapped MAP_SHARED (tmpfs such as /dev/shm,
 * hugetlbfs, DAX or any file system). The whole file is preallocated, so a
 * page of the mapping can never SIGBUS for lack of backing. One live owner:
 * the descriptor holds flock(LOCK_EX), and it is opened without O_CLOEXEC so
 * the lock survives execve into the successor (see openFd).
 *
 * A view must not be used after close(): the device is no longer behind it
 * (its pages are inaccessible, or unmapped).
 */
export class MappedDevice implements MemoryDevice {
  readonly pageSize = PAGE_SIZE;
  readonly size: number;
  readonly pages: number;
  readonly name: string;
  readonly ownedForLife = true;
  private fdOrNull: number | null;
  private readonly windows: (Mapping | undefined)[] = [];
  /** Mappings for accesses longer than WINDOW, keyed by "offset:length". */
  private readonly extra = new Map<string, Mapping>();
  /** The one window of a device up to 4 GiB, while open; null otherwise. */
  private single: Mapping | null = null;
  private guard: TruncationGuard | null = null;
  /** A memfd (anonymous()): nothing to mark idle at close. */
  private anonymous = false;

  private constructor(
    readonly path: string,
    fd: number,
    size: number,
  ) {
    this.fdOrNull = fd;
    // Small integers (Smis) whatever gave them: fstat's sizes come boxed (read from a
    // Float64Array), a rehearsal's device's unboxed, and V8's code optimized on the one
    // deoptimizes on the other inside a downtime. Math.trunc unboxes what fits.
    this.size = Math.trunc(size);
    this.pages = Math.trunc(size / PAGE_SIZE);
    this.name = path;
  }

  /**
   * A device in an anonymous file (a memfd): no path, no lock, no owner, gone
   * with its last mapping. What a handover rehearsal runs on, so that the
   * code it warms up sees what a real boot sees (this class, shared memmap
   * arrays) and V8 has no reason to compile it again inside a downtime.
   * @throws DeviceError EINVAL bad size; EIO memfd_create or ftruncate refused.
   * @internal
   */
  static anonymous(size: number, name = 'livekexec'): MappedDevice {
    if (!Number.isSafeInteger(size) || size <= 0 || size % PAGE_SIZE !== 0) {
      throw new DeviceError(
        'EINVAL',
        `an anonymous device is a positive multiple of ${PAGE_SIZE} bytes, got ${show(size)}`,
      );
    }
    const libc = getLibc();
    const fd = libc.memfdCreate(name, MFD_CLOEXEC);
    if (fd < 0) throw new DeviceError('EIO', `memfd_create: ${errnoName(libc.errno())}`);
    try {
      if (libc.ftruncate(fd, size) !== 0) {
        throw new DeviceError(
          'EIO',
          `ftruncate of a memfd to ${size} bytes: ${errnoName(libc.errno())}`,
        );
      }
      const dev = MappedDevice.adopt(`memfd:${name}`, fd, size);
      dev.anonymous = true;
      return dev;
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** The descriptor holding the mapping's file and its lock (inherited across execve). */
  get fd(): number {
    return this.live();
  }

  /**
   * Opens (or creates) the device at `path` and becomes its owner.
   * @throws DeviceError ELOOP symlink; EPERM owned by another user or group/world
   *   writable; ENOENT missing without create; EEXIST exists with exclusive;
   *   EBUSY another owner holds it (message names the PID when known);
   *   EINVAL bad size or not a regular file; ENOSPC preallocation failed; EIO other.
   */
  static open(path: string, options: MappedOpenOptions = {}): MappedDevice {
    if (typeof options !== 'object' || options === null) {
      throw new DeviceError('EINVAL', `open options must be an object, got ${show(options)}`);
    }
    const existing = lstatOrNull(path);
    if (existing?.isSymbolicLink()) throw refuseSymlink(path);
    if (existing === null && !options.create) {
      throw new DeviceError('ENOENT', `${path}: no such device file`);
    }
    if (existing !== null && options.create && options.exclusive) {
      throw new DeviceError('EEXIST', `${path} already exists`);
    }
    if (existing === null && options.size === undefined) {
      throw new DeviceError('EINVAL', `${path}: a size is needed to create a device`);
    }
    if (options.size !== undefined) checkSize(path, options.size);
    if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
      throw new DeviceError(
        'EINVAL',
        `onProgress must be a function, got ${show(options.onProgress)}`,
      );
    }
    if (
      options.chunkSize !== undefined &&
      (!Number.isSafeInteger(options.chunkSize) || options.chunkSize <= 0)
    ) {
      throw new DeviceError(
        'EINVAL',
        `chunkSize must be a positive integer, got ${show(options.chunkSize)}`,
      );
    }
    const libc = getLibc();
    const flags =
      O_RDWR | O_NOFOLLOW | (options.create ? O_CREAT : 0) | (options.exclusive ? O_EXCL : 0);
    let fd = libc.open(path, flags, 0o600);
    if (fd < 0 && errnoName(libc.errno()) === 'EACCES' && existing !== null) {
      // Left read-only by an owner that died: writable again unless someone holds it.
      if (!reclaimAbandoned(path)) throw busy(path, existing);
      fd = libc.open(path, flags, 0o600);
    }
    if (fd < 0) throw sysError(`open(${path})`, libc.errno(), path);
    const created = existing === null;
    try {
      const st = checkDeviceFile(path, fstatSync(fd));
      lockOrBusy(fd, path, st);
      let size = st.size;
      if (options.size !== undefined) {
        const want = roundForFs(path, options.size);
        if (st.size === 0 || created) {
          preallocate(fd, path, want, options);
          size = want;
        } else if (st.size < want) {
          // Memory hotplug: the next boot brings the new range online (memory/hotplug.ts).
          growDeviceFile(fd, path, want);
          size = want;
        } else if (st.size !== want) {
          throw new DeviceError(
            'EINVAL',
            `${path} is ${st.size} bytes, not ${want}: a device grows but never shrinks`,
          );
        }
      }
      if (!created) ensureBacked(fd, path, fstatSync(fd), options.fillHoles ?? true);
      const dev = MappedDevice.adopt(path, fd, size);
      markOwned(fd);
      return dev;
    } catch (err) {
      libc.close(fd);
      if (created) tryUnlink(path);
      throw err;
    }
  }

  /**
   * Adopts an inherited descriptor that already holds the device's lock: the
   * successor after execve. `path` must name the same file.
   * @throws DeviceError EBADF not an open descriptor; EINVAL path is another
   *   file; ELOOP, EPERM as open(); EBUSY the lock belongs to someone else.
   */
  static openFd(fd: number, path: string): MappedDevice {
    if (!Number.isSafeInteger(fd) || fd < 0)
      throw new DeviceError('EBADF', `bad descriptor ${show(fd)}`);
    if (typeof path !== 'string' || path === '')
      throw new DeviceError('EINVAL', `a device path is a non-empty string, got ${show(path)}`);
    let st: Stats;
    try {
      st = fstatSync(fd);
    } catch {
      throw new DeviceError('EBADF', `descriptor ${fd} (${path}) is not open`);
    }
    const named = lstatOrNull(path);
    if (named?.isSymbolicLink()) throw refuseSymlink(path);
    if (named === null || named.dev !== st.dev || named.ino !== st.ino) {
      throw new DeviceError('EINVAL', `descriptor ${fd} is not ${path}`);
    }
    checkDeviceFile(path, st);
    // flock on a description that already holds the lock succeeds; on any other it fails.
    lockOrBusy(fd, path, st);
    const libc = getLibc();
    const fl = libc.fcntl(fd, F_GETFD, 0);
    if (fl >= 0 && fl & FD_CLOEXEC) libc.fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
    ensureBacked(fd, path, st, true);
    const dev = MappedDevice.adopt(path, fd, st.size);
    markOwned(fd);
    return dev;
  }

  /**
   * Reads the size and page 0 of a device without owning it (for `device info`).
   * @throws DeviceError ELOOP, EPERM, ENOENT, EINVAL as open().
   */
  static peek(path: string): DevicePeek {
    const fd = openReadOnly(path);
    try {
      const st = checkDeviceFile(path, fstatSync(fd));
      const page0 = new Uint8Array(Math.min(st.size, PAGE_SIZE));
      let got = 0;
      while (got < page0.length) {
        const n = readSync(fd, page0, got, page0.length - got, got);
        if (n === 0) break;
        got += n;
      }
      return { size: st.size, page0: page0.subarray(0, got), ownerPid: flockOwner(st) };
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Takes the device's lock without mapping or allocating anything, so it can
   * be removed knowing no process owns it; `release()` lets it go.
   * @throws DeviceError ENOENT, ELOOP, EPERM, EINVAL as open(); EBUSY owned (naming the PID).
   */
  static holdIdle(path: string): { release(): void } {
    const fd = openReadOnly(path);
    try {
      lockOrBusy(fd, path, checkDeviceFile(path, fstatSync(fd)));
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    return { release: () => closeSync(fd) };
  }

  private static adopt(path: string, fd: number, size: number): MappedDevice {
    if (size === 0 || size % PAGE_SIZE !== 0) {
      throw new DeviceError(
        'EINVAL',
        `${path} is ${size} bytes: a device is a positive multiple of ${PAGE_SIZE}`,
      );
    }
    const dev = new MappedDevice(path, fd, size);
    // Map up front what is cheap to map, so a failing mmap shows at open.
    dev.window(0);
    return dev;
  }

  /** @throws DeviceError EBADF after close, EFAULT out of range, EINVAL over 4 GiB. */
  bytes(phys: number, length: number): Uint8Array {
    const single = this.single;
    if (single !== null) {
      // Hot path: one window, so only the bounds need checking.
      checkRange(this.name, this.size, phys, length);
      return new Uint8Array(single.buffer, phys, length);
    }
    const m = this.mappingFor(phys, length);
    return new Uint8Array(m.buffer, phys - m.offset, length);
  }

  /** @throws as bytes(). */
  view(phys: number, length: number): DataView {
    const single = this.single;
    if (single !== null) {
      checkRange(this.name, this.size, phys, length);
      return new DataView(single.buffer, phys, length);
    }
    const m = this.mappingFor(phys, length);
    return new DataView(m.buffer, phys - m.offset, length);
  }

  /**
   * msync(MS_SYNC) of the pages holding [phys, phys + length).
   * @throws DeviceError EBADF, EFAULT; EIO when msync fails.
   */
  flush(phys: number, length: number): void {
    this.live();
    checkRange(this.name, this.size, phys, length, false);
    const libc = getLibc();
    // All mappings share the file's page cache; msync each mapped part of the range.
    this.eachMapped(phys, length, (addr, len) => {
      if (libc.msync(addr, len, MS_SYNC) !== 0) throw sysError(`msync(${this.path})`, libc.errno());
    });
  }

  /**
   * Faults the pages of [phys, phys + length) in for writing, one madvise
   * (MADV_POPULATE_WRITE, Linux 5.14) per mapping: far cheaper than a fault
   * per page at first touch. A hint: a kernel without it changes nothing.
   */
  populate(phys: number, length: number): void {
    if (this.fdOrNull === null) return;
    checkRange(this.name, this.size, phys, length, false);
    const libc = getLibc();
    this.eachMapped(phys, length, (addr, len) => libc.madvise(addr, len, MADV_POPULATE_WRITE));
  }

  /**
   * Drops this process's page-table entries for [phys, phys + length), on a
   * libuv worker, ZAP_STEP at a time (MADV_DONTNEED: the pages stay in the
   * file; the next access maps them again). The kernel tears down every
   * mapped page at an in-place execve, ~45 ms per GiB touched, while nothing
   * serves; zapped ahead, that work is done while the process still serves.
   * Only windows over a WebAssembly memory are zapped: their address range
   * stays reserved until the buffer (held here across each call) is
   * collected, so a call in flight when the device closes hits nothing else.
   */
  async zap(phys: number, length: number): Promise<void> {
    if (this.fdOrNull === null) return;
    checkRange(this.name, this.size, phys, length, false);
    const parts: { addr: number; len: number; m: Mapping }[] = [];
    this.eachMapped(phys, length, (addr, len, m) => {
      if (m.at !== null) parts.push({ addr, len, m });
    });
    const libc = getLibc();
    for (const { addr, len, m } of parts) {
      for (let at = 0; at < len && this.fdOrNull !== null; at += ZAP_STEP) {
        await libc.madviseAsync(addr + at, Math.min(ZAP_STEP, len - at), MADV_DONTNEED);
        void m.buffer;
      }
    }
  }

  /** Calls fn with the address and length of each mapped part of the pages holding [phys, phys + length). */
  private eachMapped(
    phys: number,
    length: number,
    fn: (addr: number, length: number, m: Mapping) => void,
  ): void {
    if (length === 0) return;
    const start = Math.floor(phys / PAGE_SIZE) * PAGE_SIZE;
    const end = Math.ceil((phys + length) / PAGE_SIZE) * PAGE_SIZE;
    const libc = getLibc();
    for (const m of [...this.windows, ...this.extra.values()]) {
      if (m === undefined) continue;
      const a = Math.max(start, m.offset);
      const b = Math.min(end, m.offset + m.length);
      if (a < b) fn(Number(libc.address(m.ptr)) + (a - m.offset), b - a, m);
    }
  }

  /**
   * Guards the file against a shrink by another process (see _truncation.ts):
   * its size is looked at every 100 ms, put back and `onShrink` told; a
   * sentinel explains a SIGBUS death (`onSentinel` is told its PID). Ended
   * by close(). For the owner of a real device.
   */
  guardTruncation(onShrink: (s: DeviceShrink) => void, onSentinel?: (pid: number) => void): void {
    if (this.guard !== null) return;
    this.guard = new TruncationGuard(this.live(), this.path, this.size, onShrink, onSentinel);
    this.guard.start();
  }

  /** The PIDs of the guard's child processes (its sentinel), which outlive an in-place execve. */
  guardChildren(): number[] {
    const pid = this.guard?.sentinelPid ?? null;
    return pid === null ? [] : [pid];
  }

  /** Whether the file shrank since it was mapped (restoring it and reporting as guardTruncation does). */
  checkTruncation(): boolean {
    return this.guard?.check() ?? false;
  }

  /** munmap every window and close the descriptor (releasing the lock). Idempotent. */
  close(): void {
    const fd = this.fdOrNull;
    if (fd === null) return;
    this.guard?.stop();
    this.guard = null;
    this.fdOrNull = null;
    this.single = null;
    for (const m of [...this.windows, ...this.extra.values()]) {
      if (m !== undefined) unmapWindow(m);
    }
    this.windows.length = 0;
    this.extra.clear();
    getLibc().close(fd);
    if (!this.anonymous) markIdle(this.path);
  }

  private live(): number {
    if (this.fdOrNull === null) throw new DeviceError('EBADF', `${this.path}: device is closed`);
    return this.fdOrNull;
  }

  private mappingFor(phys: number, length: number): Mapping {
    this.live();
    checkRange(this.name, this.size, phys, length);
    if (this.size <= SINGLE_WINDOW_MAX) return this.windows[0] ?? this.window(0);
    if (length <= WINDOW) {
      // Clamped so that a zero-length view at the very end still lands in a window.
      const k = Math.min(Math.floor(phys / WINDOW), Math.floor((this.size - 1) / WINDOW));
      return this.windows[k] ?? this.window(k);
    }
    const offset = Math.floor(phys / PAGE_SIZE) * PAGE_SIZE;
    const len = Math.ceil((phys + length) / PAGE_SIZE) * PAGE_SIZE - offset;
    const key = `${offset}:${len}`;
    let m = this.extra.get(key);
    if (m === undefined) {
      if (len > SINGLE_WINDOW_MAX) {
        throw new DeviceError('EINVAL', `${this.path}: a single view may not exceed 4 GiB`);
      }
      m = this.map(offset, len);
      this.extra.set(key, m);
    }
    return m;
  }

  private window(k: number): Mapping {
    const offset = this.size <= SINGLE_WINDOW_MAX ? 0 : k * WINDOW;
    const length =
      this.size <= SINGLE_WINDOW_MAX ? this.size : Math.min(2 * WINDOW, this.size - offset);
    const m = this.map(offset, length);
    this.windows[k] = m;
    if (this.size <= SINGLE_WINDOW_MAX) this.single = m;
    return m;
  }

  private map(offset: number, length: number): Mapping {
    const m = mapWindow(this.live(), offset, length);
    if (typeof m === 'number') throw sysError(`mmap(${this.path})`, m);
    return m;
  }
}

/** Opens an existing regular file read-only, refusing symlinks and anything else. */
function openReadOnly(path: string): number {
  const existing = lstatOrNull(path);
  if (existing === null) throw new DeviceError('ENOENT', `${path}: no such device file`);
  if (existing.isSymbolicLink()) throw refuseSymlink(path);
  // Before the open: opening a FIFO for reading would block until a writer comes.
  if (!existing.isFile()) throw new DeviceError('EINVAL', `${path} is not a regular file`);
  try {
    return openSync(path, O_RDONLY | O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new DeviceError(knownCode(e.code), `open(${path}): ${e.code ?? e.message}`);
  }
}

function lstatOrNull(path: string): Stats | null {
  if (typeof path !== 'string' || path === '' || path.includes('\0')) {
    throw new DeviceError('EINVAL', `a device path is a non-empty string, got ${show(path)}`);
  }
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    const e = err as NodeJS.ErrnoException;
    throw new DeviceError(knownCode(e.code), `lstat(${path}): ${e.code ?? e.message}`);
  }
}

function refuseSymlink(path: string): DeviceError {
  return new DeviceError('ELOOP', `${path} is a symlink; refusing to use it as a device`);
}

function checkSize(path: string, size: number): void {
  if (!Number.isSafeInteger(size) || size <= 0 || size % PAGE_SIZE !== 0) {
    throw new DeviceError(
      'EINVAL',
      `${path}: device size must be a positive multiple of ${PAGE_SIZE}, got ${show(size)}`,
    );
  }
}

function lockOrBusy(fd: number, path: string, st: Stats): void {
  const libc = getLibc();
  if (libc.flock(fd, LOCK_EX | LOCK_NB) === 0) return;
  const errno = libc.errno();
  if (errnoName(errno) !== 'EWOULDBLOCK' && errnoName(errno) !== 'EAGAIN') {
    throw sysError(`flock(${path})`, errno);
  }
  throw busy(path, st);
}

function busy(path: string, st: Stats): DeviceError {
  const pid = flockOwner(st);
  return new DeviceError(
    'EBUSY',
    `device busy: ${path} is owned by ${pid === undefined ? 'another process' : `PID ${pid}`}`,
  );
}

/**
 * The PID holding a write flock on the file, from /proc/locks
 * ("1: FLOCK  ADVISORY  WRITE 1234 00:1a:5678 0 EOF"); undefined when unknown.
 */
export function flockOwner(st: Stats): number | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/locks', 'utf8');
  } catch {
    return undefined;
  }
  const dev = BigInt(st.dev);
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  for (const line of text.split('\n')) {
    const m = /^\d+:\s+FLOCK\s+\S+\s+WRITE\s+(\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s/.exec(line);
    if (m === null) continue;
    if (BigInt(m[4]) !== BigInt(st.ino)) continue;
    if (BigInt(`0x${m[2]}`) !== major || BigInt(`0x${m[3]}`) !== minor) continue;
    return Number(m[1]);
  }
  return undefined;
}

function roundForFs(path: string, size: number): number {
  let st: { type: number; bsize: number };
  try {
    st = statfsSync(path);
  } catch {
    return size;
  }
  if (st.type !== HUGETLBFS_MAGIC || st.bsize <= PAGE_SIZE) return size;
  return Math.ceil(size / st.bsize) * st.bsize;
}

function isHugetlbfs(path: string): boolean {
  try {
    return statfsSync(path).type === HUGETLBFS_MAGIC;
  } catch {
    return false;
  }
}

/**
 * Allocates every block of [0, size) in chunks (real progress for a long create).
 * hugetlbfs may not support fallocate: there ftruncate is enough, because a
 * MAP_SHARED hugetlb mapping reserves its huge pages at mmap time.
 */
function preallocate(fd: number, path: string, size: number, options: MappedOpenOptions): void {
  const libc = getLibc();
  const chunk = Math.max(PAGE_SIZE, options.chunkSize ?? DEFAULT_CHUNK);
  for (let done = 0; done < size; ) {
    const n = Math.min(chunk, size - done);
    const rc = libc.posixFallocate(fd, done, n);
    if (rc !== 0) {
      if (isHugetlbfs(path)) {
        if (libc.ftruncate(fd, size) !== 0) throw sysError(`ftruncate(${path})`, libc.errno());
        options.onProgress?.(size, size);
        return;
      }
      throw sysError(`posix_fallocate(${path})`, rc);
    }
    done += n;
    options.onProgress?.(done, size);
  }
}

/** An existing file with holes (or a shorter allocation) is filled before mapping, or refused. */
function ensureBacked(fd: number, path: string, st: Stats, fill: boolean): void {
  if (st.blocks * 512 >= st.size || isHugetlbfs(path)) return;
  if (!fill) {
    throw new DeviceError(
      'EINVAL',
      `${path} has holes (${st.blocks * 512} of ${st.size} bytes allocated): not a device as livekexec makes them; nothing was allocated`,
    );
  }
  const rc = getLibc().posixFallocate(fd, 0, st.size);
  if (rc !== 0) throw sysError(`posix_fallocate(${path})`, rc);
}

function tryUnlink(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Best effort: the error being reported matters more.
  }
}

const PASSTHROUGH: readonly string[] = [
  'ELOOP',
  'EPERM',
  'EACCES',
  'ENOENT',
  'EEXIST',
  'ENOSPC',
  'EBADF',
  'EINVAL',
];

function knownCode(name: string | undefined): DeviceErrorCode {
  return name !== undefined && PASSTHROUGH.includes(name) ? (name as DeviceErrorCode) : 'EIO';
}

function sysError(call: string, errno: number, path?: string): DeviceError {
  const name = errnoName(errno);
  if (name === 'ELOOP' && path !== undefined) return refuseSymlink(path);
  return new DeviceError(knownCode(name), `${call}: ${name}`);
}
