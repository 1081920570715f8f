import { show } from '../base/errors.js';
import { hex } from '../base/hex.js';
import { DeviceError } from './errors.js';

/** The longest single view: V8 and koffi both handle 4 GiB, not more. */
export const MAX_VIEW_LENGTH = 2 ** 32;

/**
 * Checks that [phys, phys + length) is a range of integers inside a device of
 * `size` bytes, before any typed array sees it.
 * @throws DeviceError EFAULT when it is not; EINVAL when a view (`isView`) would
 *   be longer than MAX_VIEW_LENGTH.
 */
export function checkRange(
  name: string,
  size: number,
  phys: number,
  length: number,
  isView = true,
): void {
  if (
    !Number.isSafeInteger(phys) ||
    !Number.isSafeInteger(length) ||
    phys < 0 ||
    length < 0 ||
    phys + length > size
  ) {
    throw new DeviceError(
      'EFAULT',
      `${name}: access [${fmt(phys)}, +${fmt(length)}) is outside the device (${hex(size)} bytes)`,
    );
  }
  if (isView && length > MAX_VIEW_LENGTH) {
    throw new DeviceError(
      'EINVAL',
      `${name}: a single view may not exceed 4 GiB (asked ${length})`,
    );
  }
}

function fmt(n: number): string {
  return Number.isSafeInteger(n) && n >= 0 ? hex(n) : show(n);
}
