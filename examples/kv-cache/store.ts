/**
 * The kv-cache's store: a preserved store (livekexec/store) named
 * `kv-cache`, whose table, keys and values live in kernel pages that KHO
 * hands to the next generation. An upgrade saves nothing: the successor
 * attaches to the same pages through one root, in O(1) of the entries. The
 * one thing besides the values, the listener's LUO token, is an entry of a
 * second, tiny store.
 */
import type { Kernel } from 'livekexec';
import { openStore, type PreservedStore, StoreError } from 'livekexec/store';

export { StoreError };

/** The largest value the cache takes (a PUT body over it is 413). */
export const MAX_VALUE_BYTES = 64 * 1024;
/** Keys are short names, not data. */
export const MAX_KEY_BYTES = 1024;
/** The stores' names (KHO subtrees store_kv-cache and store_kv-cache.meta). */
export const STORE_NAME = 'kv-cache';
const META_NAME = 'kv-cache.meta';
const LISTENER = 'listener-token';

/** What the predecessor left besides the values: the listener's LUO token. */
export interface StoreExtra {
  listenerToken: number;
}

export class CacheStore {
  readonly #values: PreservedStore;
  readonly #meta: PreservedStore;

  private constructor(values: PreservedStore, meta: PreservedStore) {
    this.#values = values;
    this.#meta = meta;
  }

  /**
   * The store this generation serves from: the one its predecessor handed
   * over (with the listener token it left), or a new empty one.
   * A damaged store is reported on stderr and replaced by an empty one.
   * @throws StoreError as openStore (ENOMEM).
   */
  static open(kernel: Kernel): { store: CacheStore; extra: StoreExtra | null } {
    const options = {
      name: STORE_NAME,
      maxKeyBytes: MAX_KEY_BYTES,
      maxValueBytes: MAX_VALUE_BYTES,
    };
    let values: PreservedStore;
    try {
      values = openStore(kernel, options);
    } catch (err) {
      if (!(err instanceof StoreError) || (err.code !== 'EFAULT' && err.code !== 'EPROTO'))
        throw err;
      // Never serve from a damaged store: say why and start empty (its subtree was consumed).
      process.stderr.write(
        `kv-cache: the handed-over store is unusable, starting empty: ${err.message}\n`,
      );
      values = openStore(kernel, options);
    }
    const meta = openStore(kernel, { name: META_NAME, maxKeyBytes: 32, maxValueBytes: 4 });
    const token = meta.getView(LISTENER);
    const extra =
      token?.length === 4 ? { listenerToken: Buffer.from(token).readUInt32LE(0) } : null;
    meta.delete(LISTENER);
    return { store: new CacheStore(values, meta), extra };
  }

  get entries(): number {
    return this.#values.size;
  }

  /** Bytes of keys and values. */
  get bytes(): number {
    return this.#values.stats().liveBytes;
  }

  /** Pages of memory the store holds. */
  get pages(): number {
    return this.#values.stats().pages;
  }

  /** The underlying store (stats, direct access). */
  get values(): PreservedStore {
    return this.#values;
  }

  /** A zero-copy view of the value, or null; valid until the next update of the store. */
  get(key: string): Uint8Array | null {
    return this.#values.getView(key) ?? null;
  }

  /**
   * Stores a copy of `value` under `key`.
   * @throws StoreError EINVAL (key), E2BIG (value over MAX_VALUE_BYTES), ENOMEM (device full).
   */
  put(key: string, value: Uint8Array): void {
    this.#values.put(key, value);
  }

  delete(key: string): boolean {
    return this.#values.delete(key);
  }

  /** Records what the successor needs besides the values: O(1), nothing is copied. */
  save(extra: StoreExtra): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(extra.listenerToken >>> 0, 0);
    this.#meta.put(LISTENER, b);
  }
}
