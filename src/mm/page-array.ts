/**
 * Per-page arrays (the memmap, and the like), counted by V8 or not.
 *
 * V8 counts an ArrayBuffer's bytes as external memory, against the same
 * budget as its old generation: a young process that allocates a few MiB of
 * it runs a full, non-incremental mark-compact. The memmap of a 4 GiB
 * device (10 bytes a page) made every successor's boot stop 6 to 8 ms for
 * one. A SharedArrayBuffer is not counted, so arrays that live as long as the
 * process (`shared`) go there; arrays that may become garbage while the
 * process runs (an emulated machine's dead generations) stay counted, so that
 * a collection comes to free them.
 */

/** A zeroed byte per page. */
export function pageBytes(pages: number, shared: boolean): Uint8Array {
  return new Uint8Array(shared ? new SharedArrayBuffer(pages) : new ArrayBuffer(pages));
}

/** A zeroed int32 per page. */
export function pageInts(pages: number, shared: boolean): Int32Array {
  const bytes = pages * Int32Array.BYTES_PER_ELEMENT;
  return new Int32Array(shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
}
