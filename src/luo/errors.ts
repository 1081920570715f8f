import { LivekexecError } from '../base/errors.js';

/**
 * The one error type of the Live Update Orchestrator. `code` is the errno
 * Linux's /dev/liveupdate returns for the same cause.
 */
export type LuoErrorCode =
  /** A session of that name, or a file under that token, already exists. */
  | 'EEXIST'
  /** No handler can preserve this kind of descriptor; no such token or session. */
  | 'ENOENT'
  /** The descriptor is already preserved (in this or another session); a second LiveUpdate; wrong phase. */
  | 'EBUSY'
  /** A bad session name (empty or longer than 64 bytes), token or descriptor; a call in the wrong state. */
  | 'EINVAL'
  /** Freezing a file failed; every file frozen before it was unfrozen again. */
  | 'EAGAIN'
  /** The handed-over state is corrupt. */
  | 'EFAULT'
  /** The inherited descriptor is no longer what was preserved. */
  | 'ESRCH'
  /** Live update is not available in this generation (a crash kernel). */
  | 'ENODEV'
  /** No FLB state was handed over, or it is finished. */
  | 'ENODATA'
  /** Too many FLBs. */
  | 'ENOSPC';

export class LuoError extends LivekexecError<LuoErrorCode> {
  override name = 'LuoError';
}
