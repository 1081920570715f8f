/**
 * Per-page arrays (the memmap, and the like) in SharedArrayBuffers.
 *
 * V8 counts an ArrayBuffer's bytes as external memory, and a young process
 * that allocates a few MiB of it runs a full, non-incremental mark-compact:
 * the memmap of a 4 GiB device (10 bytes a page) made every successor's
 * boot stop 6 to 8 ms for one. Shared buffers are not counted. These arrays
 * live as long as the kernel, so such a collection has nothing to free.
 */

/** A zeroed byte per page. */
export function pageBytes(pages: number): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(pages));
}

/** A zeroed int32 per page. */
export function pageInts(pages: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(pages * Int32Array.BYTES_PER_ELEMENT));
}
