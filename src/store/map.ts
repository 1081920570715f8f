/**
 * PreservedMap<K, V>: a typed Map over a preserved store. Keys are strings
 * (by default) or go through a key codec; values go through a value codec,
 * v8.serialize by default. Nothing is kept in the JS heap: every get decodes
 * from preserved memory.
 */
import type { Kernel } from '../kernel/kernel.js';
import { type Codec, type CodecName, codecOf } from './codec.js';
import { StoreError } from './errors.js';
import { type OpenStoreOptions, openStore } from './open.js';
import type { PreservedStore, PutOptions } from './store.js';

export interface PreservedMapOptions<K, V> {
  /** Key codec: 'string' (default: strings as UTF-8, no copy), 'bytes', 'json', 'v8' or your own. */
  key?: Codec<K> | CodecName;
  /** Value codec: 'v8' (default), 'json', 'string', 'bytes' or your own. */
  value?: Codec<V> | CodecName;
}

export class PreservedMap<K = string, V = unknown> {
  /** The store underneath (stats, close, byte access). */
  readonly store: PreservedStore;
  readonly #key: Codec<K> | null;
  readonly #value: Codec<V>;

  constructor(store: PreservedStore, options: PreservedMapOptions<K, V> = {}) {
    this.store = store;
    this.#key =
      options.key === undefined || options.key === 'string' ? null : codecOf(options.key, 'string');
    this.#value = codecOf(options.value, 'v8');
  }

  /**
   * Opens (or creates) the store `name` and wraps it.
   * @throws StoreError as openStore.
   */
  static open<K = string, V = unknown>(
    kernel: Kernel,
    options: OpenStoreOptions & PreservedMapOptions<K, V>,
  ): PreservedMap<K, V> {
    return new PreservedMap<K, V>(openStore(kernel, options), options);
  }

  get size(): number {
    return this.store.size;
  }

  /** @throws StoreError EINVAL (key), EFAULT (damaged); the codec's errors. */
  get(key: K): V | undefined {
    const bytes = this.store.getView(this.#k(key));
    return bytes === undefined ? undefined : this.#value.decode(bytes);
  }

  /** @throws StoreError as PreservedStore.put; the codec's errors. */
  set(key: K, value: V, options?: PutOptions): this {
    this.store.put(this.#k(key), this.#value.encode(value), options);
    return this;
  }

  has(key: K): boolean {
    return this.store.has(this.#k(key));
  }

  delete(key: K): boolean {
    return this.store.delete(this.#k(key));
  }

  clear(): void {
    this.store.clear();
  }

  *keys(): IterableIterator<K> {
    for (const k of this.store.keys()) yield this.#kd(k);
  }

  *values(): IterableIterator<V> {
    for (const [, v] of this.store.entries()) yield this.#value.decode(v);
  }

  *entries(): IterableIterator<[K, V]> {
    for (const [k, v] of this.store.entries()) yield [this.#kd(k), this.#value.decode(v)];
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }

  forEach(fn: (value: V, key: K, map: this) => void): void {
    for (const [k, v] of this.entries()) fn(v, k, this);
  }

  #k(key: K): string | Uint8Array {
    if (this.#key === null) {
      if (typeof key !== 'string') throw new StoreError('EINVAL', 'this map takes string keys');
      return key;
    }
    return this.#key.encode(key);
  }

  #kd(bytes: Uint8Array): K {
    return this.#key === null
      ? (Buffer.from(bytes).toString('utf8') as K)
      : this.#key.decode(bytes);
  }
}
