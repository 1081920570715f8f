/**
 * The mappings behind a MappedDevice's views.
 *
 * V8 counts an ArrayBuffer over foreign memory (koffi.view) as external
 * memory, and one of 64 MiB or more makes it collect garbage: for a large one
 * at once, a full mark-compact ("external memory pressure", 4 to 8 ms even on
 * a 5 MiB heap, inside a successor's boot). Shared buffers are not counted.
 * So a window is preferably a shared WebAssembly.Memory of its size with the
 * device file mapped over its pages (MAP_FIXED): the memory's
 * SharedArrayBuffer is then the view, and mapping it costs no collection.
 * Where that cannot be had (no WebAssembly, the reservation refused, a window
 * over 4 GiB) the window is a plain mapping seen through koffi.view.
 */
import { getLibc, MAP_FAILED, MAP_SHARED, PROT_READ, PROT_WRITE } from '../sys/libc.js';

const PROT_NONE = 0;
const MAP_PRIVATE = 0x02;
const MAP_FIXED = 0x10;
const MAP_ANONYMOUS = 0x20;
const MAP_NORESERVE = 0x4000;
const WASM_PAGE = 65536;
/** A 32-bit WebAssembly memory's limit. */
const MAX_SHARED = 2 ** 32;

export interface Window {
  /** File offset of the first byte. */
  readonly offset: number;
  readonly length: number;
  /** The mapping's address, as mmap returned it. */
  readonly ptr: unknown;
  readonly buffer: ArrayBufferLike;
  /** A view of the first byte of a shared window's memory; null for a plain mapping. */
  readonly at: Uint8Array | null;
}

interface SharedMemoryCtor {
  new (d: { initial: number; maximum: number; shared: true }): { buffer: SharedArrayBuffer };
}

const SharedMemory = (globalThis as { WebAssembly?: { Memory?: SharedMemoryCtor } }).WebAssembly
  ?.Memory;

/**
 * Maps [offset, offset + length) of `fd` read-write, shared.
 * @returns the window, or the errno of the failed mmap.
 */
export function mapWindow(fd: number, offset: number, length: number): Window | number {
  return sharedWindow(fd, offset, length) ?? plainWindow(fd, offset, length);
}

/** Unmaps a window; a shared one's pages go back to its memory's (inaccessible) reservation. */
export function unmapWindow(w: Window): void {
  const libc = getLibc();
  if (w.at !== null) {
    const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE;
    // Not munmap: the range is V8's, unmapped by it when the memory is collected. Only
    // if that fails, so that the file (and the lock its description holds) is let go.
    if (failed(libc.mmapAt(w.at, w.length, PROT_NONE, flags, -1, 0))) libc.munmap(w.ptr, w.length);
    return;
  }
  libc.munmap(w.ptr, w.length);
}

function sharedWindow(fd: number, offset: number, length: number): Window | null {
  if (SharedMemory === undefined || length > MAX_SHARED) return null;
  const pages = Math.ceil(length / WASM_PAGE);
  let buffer: SharedArrayBuffer;
  try {
    buffer = new SharedMemory({ initial: pages, maximum: pages, shared: true }).buffer;
  } catch {
    // RangeError: no address space for the reservation (ulimit -v, say).
    return null;
  }
  const at = new Uint8Array(buffer, 0, 1);
  const libc = getLibc();
  const ptr = libc.mmapAt(at, length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, offset);
  if (!failed(ptr)) return { offset, length, ptr, buffer, at };
  // A failed MAP_FIXED may have unmapped the range: put anonymous memory back under the buffer.
  const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE;
  libc.mmapAt(at, length, PROT_READ | PROT_WRITE, flags, -1, 0);
  return null;
}

function plainWindow(fd: number, offset: number, length: number): Window | number {
  const libc = getLibc();
  const ptr = libc.mmap(length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);
  if (failed(ptr)) return libc.errno();
  return { offset, length, ptr, buffer: libc.view(ptr, length), at: null };
}

function failed(ptr: unknown): boolean {
  const addr = getLibc().address(ptr);
  return addr === MAP_FAILED || addr === 0n;
}
