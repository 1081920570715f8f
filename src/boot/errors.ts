/**
 * Errors of the boot layer: a bad command-line value, a bad boot block. The
 * `param` names the command-line parameter at fault when there is one.
 */
export type BootErrorCode =
  /** A command-line parameter's value does not parse or is out of range. */
  | 'EINVAL'
  /** A boot block is truncated, corrupt or of an unknown format. */
  | 'EBADBOOT'
  /** A boot block was already consumed, or belongs to another generation. */
  | 'ESTALE'
  /** A boot block needs a newer livekexec than this one. */
  | 'EVERSION'
  /** A range falls outside the device or over memory it may not use. */
  | 'ERANGE'
  /** memblock could not satisfy an allocation. */
  | 'ENOMEM';

export class BootError extends Error {
  override readonly name = 'BootError';

  constructor(
    readonly code: BootErrorCode,
    message: string,
    readonly param?: string,
  ) {
    super(param ? `${param}: ${message}` : message);
  }
}
