import { LivekexecError, show, text } from '../base/errors.js';
import { hex } from '../base/hex.js';

/**
 * Errors of the memory layer. `DeviceError.code` is an errno name, so a
 * message reads like the system call that would have failed.
 */
export type DeviceErrorCode =
  /** An access outside the device, or a range that is not a range. */
  | 'EFAULT'
  /** The device has another live owner (flock held elsewhere). */
  | 'EBUSY'
  /** Bad ownership or mode: owned by another user, group- or world-writable. */
  | 'EPERM'
  /** The file cannot be opened or read with our rights. */
  | 'EACCES'
  /** The path is a symlink. */
  | 'ELOOP'
  /** A bad argument: misaligned range, bad size, bad type. */
  | 'EINVAL'
  /** No room: the file system is full, the memory map table is full. */
  | 'ENOSPC'
  /** The device was closed. */
  | 'EBADF'
  /** The device header is missing, corrupt or of an unknown format. */
  | 'ENODEV'
  /** The file already exists. */
  | 'EEXIST'
  /** The file does not exist. */
  | 'ENOENT'
  /** Not enough memory to create the device. */
  | 'ENOMEM'
  /** Another system call failure; the message names the call and errno. */
  | 'EIO';

export class DeviceError extends LivekexecError<DeviceErrorCode> {
  override name = 'DeviceError';
}

/**
 * Raised by the heap device's access guard when the kernel touches a page lent
 * to another owner (the seeds' "pages deposited to the hypervisor").
 */
export class GeneralProtectionFault extends LivekexecError<'EFAULT'> {
  override name = 'GeneralProtectionFault';

  constructor(
    /** Physical address of the first guarded page the access touched. */
    readonly phys: number,
    /** The owner the page was lent to. */
    readonly owner: string,
  ) {
    super(
      'EFAULT',
      `general protection fault: access to ${typeof phys === 'number' ? `${hex(phys)}` : show(phys)} (page lent to ${text(owner)})`,
    );
  }
}
