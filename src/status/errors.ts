import { LivekexecError } from '../base/errors.js';

/**
 * Errors of the status area. The area is read from a device outside the
 * owning process, so everything in it is untrusted: a bad one is an error
 * with the reason, never a wrong figure.
 */
export type StatusErrorCode =
  /** Malformed: bad magic, checksum, length, or a value out of range. */
  | 'EINVAL'
  /** No status area (the device never ran a generation that publishes one). */
  | 'ENOENT'
  /** A layout or payload version this build does not read. */
  | 'EPROTONOSUPPORT';

export class StatusError extends LivekexecError<StatusErrorCode> {
  override name = 'StatusError';
}
