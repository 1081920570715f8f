import { LivekexecError, text } from '../base/errors.js';

/**
 * Errors of the boot layer: a bad command-line value, a bad boot block. The
 * `param` names the command-line parameter at fault when there is one.
 */
export type BootErrorCode =
  /** A command-line parameter's value does not parse or is out of range. */
  | 'EINVAL'
  /** A boot block is truncated, corrupt or of an unknown format. */
  | 'EFAULT'
  /** A boot block was already consumed, or belongs to another generation. */
  | 'ESTALE'
  /** A boot block needs a newer livekexec than this one. */
  | 'EPROTO'
  /** A range falls outside the device or over memory it may not use. */
  | 'ERANGE'
  /** memblock could not satisfy an allocation. */
  | 'ENOMEM';

export class BootError extends LivekexecError<BootErrorCode> {
  override name = 'BootError';

  /**
   * @param param the command-line parameter at fault, which starts the detail.
   */
  constructor(
    code: BootErrorCode,
    detail: string,
    readonly param?: string,
    options?: { cause?: unknown },
  ) {
    super(code, param ? `${text(param)}: ${text(detail)}` : detail, options);
  }
}
