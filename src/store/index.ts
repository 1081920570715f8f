/**
 * Preserved state: `livekexec/store`. A hash map whose table, keys and
 * values live in preserved memory (kernel pages handed over with KHO, or a
 * pmpool), attached by a successor through one root in O(1) of its entries.
 */
export { CLASS_SIZES, SMALL_MAX } from './classes.js';
export {
  bytesCodec,
  type Codec,
  type CodecName,
  jsonCodec,
  stringCodec,
  v8Codec,
} from './codec.js';
export { StoreError, type StoreErrorCode } from './errors.js';
export { PreservedMap, type PreservedMapOptions } from './map.js';
export { type OpenStoreOptions, openStore, openStores } from './open.js';
export { PreservedStore, type PutOptions, type StoreKey, type StoreStats } from './store.js';
