import { LivekexecError } from '../base/errors.js';

/** Errors of kexec: loading, executing and unloading the next generation. */
export type KexecErrorCode =
  /** exec or unload with nothing loaded. */
  | 'ENOENT'
  /** No hole in free memory fits the segments. */
  | 'ENOMEM'
  /** A bad argument (command line, sizes). */
  | 'EINVAL'
  /** The generation was already replaced, or is a crash kernel that cannot kexec. */
  | 'ESRCH'
  /** A subsystem refused to freeze; the handover was cancelled (LUO's EAGAIN). */
  | 'EAGAIN'
  /** The platform could not start the successor. */
  | 'EIO'
  /** A preloaded successor did not get ready in time (it was stopped; nothing was handed over). */
  | 'ETIMEDOUT';

export class KexecError extends LivekexecError<KexecErrorCode> {
  override name = 'KexecError';
}
