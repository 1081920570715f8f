import { FdtWriter } from '../../src/fdt/write.js';
import { KhoError } from '../../src/kho/errors.js';

export const MiB = 1024 * 1024;

/** A predicate for assert.throws: a KhoError with `c` as its code. */
export const code = (c: string) => (e: unknown) => e instanceof KhoError && e.code === c;

/** The smallest valid sub-FDT: a root with one compatible. */
export function smallFdt(compatible: string): Uint8Array {
  const w = new FdtWriter();
  w.finishReservations();
  w.beginNode('');
  w.propertyString('compatible', compatible);
  w.endNode();
  return w.finish();
}
