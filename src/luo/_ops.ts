/** Checks of the objects a program gives LUO: FLBs and file handlers. */
import { LuoError } from './errors.js';

/**
 * `obj` has a compatible of 1..max printable ASCII bytes and a function for
 * each of `ops`; `what` names it in messages ("FLB", "file handler").
 * @throws LuoError EINVAL
 */
export function checkOps<T extends { compatible: string }>(
  obj: T,
  what: string,
  max: number,
  ops: readonly (keyof T)[],
): void {
  const c = (obj as Partial<T> | undefined)?.compatible;
  if (typeof c !== 'string' || c.length > max || !/^[\x21-\x7e]+$/.test(c)) {
    throw new LuoError(
      'EINVAL',
      `${what} compatible ${JSON.stringify(c)} is not 1..${max} printable ASCII characters`,
    );
  }
  for (const op of ops) {
    if (typeof obj[op] !== 'function') {
      throw new LuoError('EINVAL', `${what} "${c}" has no ${String(op)}()`);
    }
  }
}
