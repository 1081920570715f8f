/**
 * The kv-cache's store: a log-structured slab in preserved memory. Values are
 * appended to slab chunks (folios from the kernel's page allocator, never the
 * JS heap); an entry is a chunk number, an offset and a length. At an upgrade
 * the chunks are saved to PKRAM as folios (index = chunk number, zero-copy)
 * and the index as bytes; the successor gets the same pages back.
 */
import { type Folio, type Kernel, PAGE_SIZE } from 'livekexec';

/** Chunks of 2^4 pages: 64 KiB, the largest value the cache takes. */
export const CHUNK_ORDER = 4;
export const CHUNK_BYTES = PAGE_SIZE * 2 ** CHUNK_ORDER;
/** Keys are short names, not data. */
export const MAX_KEY_BYTES = 1024;
/** The PKRAM node the store travels in. */
export const PKRAM_NODE = 'kv-cache';

const INDEX_MAGIC = 0x3143564b; // "KVC1"
const HEADER_BYTES = 24;
const ENTRY_FIXED = 14;

export type StoreErrorCode = 'EINVAL' | 'ENOMEM' | 'EFAULT' | 'E2BIG';

/** A store error: bad input, no memory, or a damaged handover. */
export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = 'StoreError';
  }
}

/** What the predecessor left besides the values: the listener's LUO token. */
export interface StoreExtra {
  listenerToken: number;
}

export class SlabStore {
  readonly #kernel: Kernel;
  #chunks: Folio[] = [];
  #views: Uint8Array[] = [];
  /** Append position in the last chunk. */
  #tail = CHUNK_BYTES;
  readonly #slots = new Map<string, number>();
  // Per-entry state in typed arrays, indexed by slot; freed slots are reused.
  #chunk = new Uint32Array(1024);
  #off = new Uint32Array(1024);
  #len = new Uint32Array(1024);
  #free: number[] = [];
  #nextSlot = 0;
  #liveBytes = 0;

  constructor(kernel: Kernel) {
    this.#kernel = kernel;
  }

  get entries(): number {
    return this.#slots.size;
  }

  /** Bytes of live values. */
  get bytes(): number {
    return this.#liveBytes;
  }

  get chunks(): number {
    return this.#chunks.length;
  }

  /** The keys, in insertion order. */
  keys(): IterableIterator<string> {
    return this.#slots.keys();
  }

  /** The slab chunks (folios of order CHUNK_ORDER), by chunk number. */
  chunkFolios(): readonly Folio[] {
    return this.#chunks;
  }

  /** A zero-copy view of the value, or null. Valid until the store is saved (values are never moved). */
  get(key: string): Uint8Array | null {
    const slot = this.#slots.get(key);
    if (slot === undefined) return null;
    const off = this.#off[slot];
    return this.#views[this.#chunk[slot]].subarray(off, off + this.#len[slot]);
  }

  /**
   * Stores a copy of `value` under `key`, appended to the slab.
   * @throws StoreError EINVAL (key empty or too long), E2BIG (value over a chunk), ENOMEM.
   */
  put(key: string, value: Uint8Array): void {
    checkKey(key);
    if (value.length > CHUNK_BYTES) {
      throw new StoreError('E2BIG', `a value is at most ${CHUNK_BYTES} bytes, got ${value.length}`);
    }
    // An empty value still needs a chunk to name: an empty store has none.
    if (this.#chunks.length === 0 || this.#tail + value.length > CHUNK_BYTES) this.#grow();
    const c = this.#chunks.length - 1;
    const off = this.#tail;
    this.#views[c].set(value, off);
    this.#tail += value.length;
    let slot = this.#slots.get(key);
    if (slot === undefined) {
      slot = this.#newSlot();
      this.#slots.set(key, slot);
    } else {
      this.#liveBytes -= this.#len[slot];
    }
    this.#chunk[slot] = c;
    this.#off[slot] = off;
    this.#len[slot] = value.length;
    this.#liveBytes += value.length;
  }

  /** Forgets `key` (its bytes stay in the log). */
  delete(key: string): boolean {
    const slot = this.#slots.get(key);
    if (slot === undefined) return false;
    this.#slots.delete(key);
    this.#liveBytes -= this.#len[slot];
    this.#free.push(slot);
    return true;
  }

  /**
   * Saves the chunks (as folios, not copied) and the index into PKRAM node
   * `kv-cache`. On failure the partial node is discarded.
   * @throws PkramError as prepareSave, saveFolio, write (EEXIST, ENOMEM, ...).
   */
  save(extra: StoreExtra): void {
    const node = this.#kernel.pkram.prepareSave(PKRAM_NODE);
    try {
      const obj = node.prepareSaveObj();
      for (let i = 0; i < this.#chunks.length; i++) obj.saveFolio(this.#chunks[i], i);
      obj.write(this.#encodeIndex(extra));
      obj.finishSaveObj();
      node.finishSave();
    } catch (err) {
      if (node.state === 'saving') node.discardSave();
      throw err;
    }
  }

  /**
   * The store the predecessor saved, or null when there is none. Its chunks
   * become this generation's folios at the same physical pages.
   * @throws StoreError EFAULT when the saved index does not match its chunks
   *   (the chunks taken back are freed); PkramError as prepareLoad.
   */
  static restore(kernel: Kernel): { store: SlabStore; extra: StoreExtra } | null {
    const pkram = kernel.pkram;
    if (!pkram.enabled || !pkram.list().some((n) => n.name === PKRAM_NODE)) return null;
    const node = pkram.prepareLoad(PKRAM_NODE);
    const loaded: { folio: Folio; index: number }[] = [];
    try {
      const obj = node.prepareLoadObj();
      if (obj === null) throw new StoreError('EFAULT', 'the saved node holds no object');
      for (let f = obj.loadFolio(); f !== null; f = obj.loadFolio()) {
        loaded.push({ folio: pkram.takeFolio(f.folio), index: f.index });
      }
      const size = obj.byteLength;
      if (size > kernel.device.size) throw new StoreError('EFAULT', `index of ${size} bytes`);
      const bytes = new Uint8Array(size);
      if (obj.read(bytes) !== size) throw new StoreError('EFAULT', 'the index ends early');
      obj.finishLoadObj();
      const store = new SlabStore(kernel);
      const extra = store.#adopt(loaded, bytes);
      return { store, extra };
    } catch (err) {
      // The values cannot be found without their index: give their pages back.
      for (const { folio } of loaded) kernel.freePages(folio);
      throw err;
    } finally {
      if (node.state === 'loading') node.finishLoad();
    }
  }

  #grow(): void {
    const folio = this.#kernel.allocPages(CHUNK_ORDER);
    if (folio === null) throw new StoreError('ENOMEM', 'no free chunk in the device');
    this.#chunks.push(folio);
    this.#views.push(this.#kernel.folioBytes(folio));
    this.#tail = 0;
  }

  #newSlot(): number {
    const reused = this.#free.pop();
    if (reused !== undefined) return reused;
    if (this.#nextSlot === this.#chunk.length) {
      const n = this.#chunk.length * 2;
      this.#chunk = grown(this.#chunk, n);
      this.#off = grown(this.#off, n);
      this.#len = grown(this.#len, n);
    }
    return this.#nextSlot++;
  }

  /** Header: magic, chunk order, chunks, tail, entries, listener token; then per entry chunk, off, len, key length, key. */
  #encodeIndex(extra: StoreExtra): Uint8Array {
    const enc = new TextEncoder();
    const keys: [Uint8Array, number][] = [];
    let size = HEADER_BYTES;
    for (const [key, slot] of this.#slots) {
      const k = enc.encode(key);
      keys.push([k, slot]);
      size += ENTRY_FIXED + k.length;
    }
    const out = new Uint8Array(size);
    const v = new DataView(out.buffer);
    v.setUint32(0, INDEX_MAGIC, true);
    v.setUint32(4, CHUNK_ORDER, true);
    v.setUint32(8, this.#chunks.length, true);
    v.setUint32(12, this.#tail, true);
    v.setUint32(16, keys.length, true);
    v.setUint32(20, extra.listenerToken, true);
    let p = HEADER_BYTES;
    for (const [k, slot] of keys) {
      v.setUint32(p, this.#chunk[slot], true);
      v.setUint32(p + 4, this.#off[slot], true);
      v.setUint32(p + 8, this.#len[slot], true);
      v.setUint16(p + 12, k.length, true);
      out.set(k, p + ENTRY_FIXED);
      p += ENTRY_FIXED + k.length;
    }
    return out;
  }

  /** Takes over loaded chunks and decodes the index against them, checking every bound. */
  #adopt(loaded: { folio: Folio; index: number }[], bytes: Uint8Array): StoreExtra {
    if (bytes.length < HEADER_BYTES) throw new StoreError('EFAULT', 'the index has no header');
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (v.getUint32(0, true) !== INDEX_MAGIC) throw new StoreError('EFAULT', 'bad index magic');
    const order = v.getUint32(4, true);
    const nChunks = v.getUint32(8, true);
    const tail = v.getUint32(12, true);
    const nEntries = v.getUint32(16, true);
    const listenerToken = v.getUint32(20, true);
    if (order !== CHUNK_ORDER) throw new StoreError('EFAULT', `chunk order ${order}`);
    if (nChunks !== loaded.length) {
      throw new StoreError('EFAULT', `index names ${nChunks} chunks, ${loaded.length} came back`);
    }
    if (tail > CHUNK_BYTES || (nChunks === 0 && tail !== CHUNK_BYTES)) {
      throw new StoreError('EFAULT', `tail ${tail}`);
    }
    const chunks: (Folio | undefined)[] = new Array(nChunks);
    for (const { folio, index } of loaded) {
      if (folio.order !== CHUNK_ORDER || index >= nChunks || chunks[index] !== undefined) {
        throw new StoreError('EFAULT', `chunk ${index} (order ${folio.order}) does not fit`);
      }
      chunks[index] = folio;
    }
    this.#chunks = chunks as Folio[];
    this.#views = this.#chunks.map((f) => this.#kernel.folioBytes(f));
    this.#tail = tail;
    const dec = new TextDecoder('utf-8', { fatal: true });
    let p = HEADER_BYTES;
    for (let i = 0; i < nEntries; i++) {
      if (p + ENTRY_FIXED > bytes.length) throw new StoreError('EFAULT', `entry ${i} is cut off`);
      const c = v.getUint32(p, true);
      const off = v.getUint32(p + 4, true);
      const len = v.getUint32(p + 8, true);
      const kLen = v.getUint16(p + 12, true);
      const end = p + ENTRY_FIXED + kLen;
      if (c >= nChunks || off > CHUNK_BYTES || len > CHUNK_BYTES - off || end > bytes.length) {
        throw new StoreError('EFAULT', `entry ${i} points outside the slab`);
      }
      let key: string;
      try {
        key = dec.decode(bytes.subarray(p + ENTRY_FIXED, end));
        checkKey(key);
      } catch {
        throw new StoreError('EFAULT', `entry ${i} has a bad key`);
      }
      if (this.#slots.has(key)) throw new StoreError('EFAULT', `entry ${i} repeats a key`);
      const slot = this.#newSlot();
      this.#slots.set(key, slot);
      this.#chunk[slot] = c;
      this.#off[slot] = off;
      this.#len[slot] = len;
      this.#liveBytes += len;
      p = end;
    }
    if (p !== bytes.length) throw new StoreError('EFAULT', 'trailing bytes after the index');
    return { listenerToken };
  }
}

function checkKey(key: string): void {
  const n = Buffer.byteLength(key);
  if (n === 0 || n > MAX_KEY_BYTES) {
    throw new StoreError('EINVAL', `a key is 1..${MAX_KEY_BYTES} bytes, got ${n}`);
  }
}

function grown(a: Uint32Array, n: number): Uint32Array<ArrayBuffer> {
  const b = new Uint32Array(n);
  b.set(a);
  return b;
}
