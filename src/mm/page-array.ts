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
  const made = shared ? takeAhead(ahead.bytes, pages) : undefined;
  return made ?? new Uint8Array(shared ? new SharedArrayBuffer(pages) : new ArrayBuffer(pages));
}

/** A zeroed int32 per page. */
export function pageInts(pages: number, shared: boolean): Int32Array {
  const made = shared ? takeAhead(ahead.ints, pages) : undefined;
  if (made !== undefined) return made;
  const bytes = pages * Int32Array.BYTES_PER_ELEMENT;
  return new Int32Array(shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
}

/**
 * Arrays made by makePageArraysAhead and not taken yet. The lists are
 * changed in place, never replaced, and hold objects from the start: a
 * preloaded successor's rehearsals optimize the code that reads them before
 * the arrays are made, and a field written again (V8 had it constant) or a
 * list of another kind (an empty literal's small integers) threw that code
 * away inside the handover's downtime, where it was compiled again.
 */
const ahead = {
  bytes: listOf<Uint8Array>(new Uint8Array(0)),
  ints: listOf<Int32Array>(new Int32Array(0)),
};

/** An empty array of V8's kind for objects: made with one, which is taken out. */
function listOf<T extends object>(kind: T): T[] {
  const list = [kind];
  list.pop();
  return list;
}

/** The per-page arrays a boot makes for the life of the process: mm/buddy.ts's state, order, next and prev; kho/incoming.ts's markers. */
const BOOT_BYTE_ARRAYS = 3;
const BOOT_INT_ARRAYS = 2;

/**
 * Makes, ahead of a boot, the per-page arrays a boot of a `pages`-page device
 * keeps for the life of the process (`shared`), and faults their memory in
 * (a write per page of memory): a preloaded successor knows its device
 * before "go", and allocating ~10 bytes a device page of fresh memory was
 * ~0.3 ms of a 1 GiB handover on one vCPU. pageBytes and pageInts hand
 * them out when the length matches; any left over are garbage. Replaces
 * what an earlier call made.
 */
export function makePageArraysAhead(pages: number): void {
  const touch = (a: Uint8Array | Int32Array): void => {
    const step = 4096 / a.BYTES_PER_ELEMENT;
    for (let i = 0; i < a.length; i += step) a[i] = 0;
  };
  ahead.bytes.length = 0;
  ahead.ints.length = 0;
  for (let i = 0; i < BOOT_BYTE_ARRAYS; i++)
    ahead.bytes.push(new Uint8Array(new SharedArrayBuffer(pages)));
  for (let i = 0; i < BOOT_INT_ARRAYS; i++)
    ahead.ints.push(new Int32Array(new SharedArrayBuffer(pages * Int32Array.BYTES_PER_ELEMENT)));
  for (const a of [...ahead.bytes, ...ahead.ints]) touch(a);
}

/** How many arrays made ahead are still to be handed out. */
export function pageArraysAhead(): number {
  return ahead.bytes.length + ahead.ints.length;
}

function takeAhead<T extends Uint8Array | Int32Array>(list: T[], pages: number): T | undefined {
  const i = list.findIndex((a) => a.length === pages);
  return i < 0 ? undefined : list.splice(i, 1)[0];
}
