/** Shared by the FLB tests: an FLB that records its calls, and a handler that can hold its finish. */
import {
  type FileHandler,
  type FileLifecycleBound,
  type MemfdData,
  memfdHandler,
  memfdName,
} from '../../src/luo/index.js';

/** The shared object: a list of names, saved as one comma-separated string. */
export interface Keys {
  names: string[];
}

/** An FLB whose calls land in `calls`, in order. */
export function recordingFlb(
  calls: string[],
  compatible = 'test,keys-v1',
  failRetrieve?: () => boolean,
): FileLifecycleBound<Keys> {
  return {
    compatible,
    preserve() {
      calls.push('preserve');
      return { names: [] };
    },
    unpreserve(obj) {
      calls.push(`unpreserve ${obj.names.join(',')}`);
    },
    save(obj) {
      calls.push('save');
      return new TextEncoder().encode(obj.names.join(','));
    },
    retrieve(data) {
      calls.push('retrieve');
      if (failRetrieve?.()) throw new Error('retrieve refused');
      const text = new TextDecoder().decode(data);
      return { names: text === '' ? [] : text.split(',') };
    },
    finish(obj) {
      calls.push(`finish ${obj.names.join(',')}`);
    },
  };
}

/**
 * A handler of the memfds named "gated", under its own compatible, whose
 * finish waits until `ready()` says so.
 */
export function gatedMemfdHandler(
  ready: () => boolean,
  asked: boolean[] = [],
): FileHandler<MemfdData> {
  return {
    ...memfdHandler,
    compatible: 'test,luo-gated-memfd-v1',
    canPreserve: (fd) => memfdName(fd) === 'gated' && memfdHandler.canPreserve(fd),
    canFinish(_fd, _d, retrieved) {
      asked.push(retrieved);
      return ready();
    },
  };
}
