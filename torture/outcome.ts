/**
 * How a case ended. The first four are acceptable; the rest fail the run.
 */
import { LivekexecError } from '../src/base/errors.js';

export const ACCEPTABLE = [
  /** The boot (or the command that boots) refused the device with a LivekexecError. */
  'refused',
  /** Booted cold: the handover was refused, nothing preserved was handed out. */
  'cold',
  /** A kexec boot that restored everything, every byte as preserved. */
  'full',
  /** A kexec boot where some restores failed with typed errors, the rest intact. */
  'partial',
] as const;

export const UNACCEPTABLE = [
  /** An exception that is not a LivekexecError (a TypeError, a RangeError, a crash). */
  'untyped',
  /** The case did not end within its timeout. */
  'hang',
  /** A page handed to two owners, or handed out while it is still preserved or held. */
  'double',
  /** A restore returned as valid what is not what was preserved. */
  'wrong',
] as const;

export type Outcome = (typeof ACCEPTABLE)[number] | (typeof UNACCEPTABLE)[number];
export const OUTCOMES: readonly Outcome[] = [...ACCEPTABLE, ...UNACCEPTABLE];

export function unacceptable(o: Outcome): boolean {
  return (UNACCEPTABLE as readonly string[]).includes(o);
}

/** One case's result. */
export interface CaseResult {
  outcome: Outcome;
  /** What was damaged or when the kill landed. */
  fault: string;
  /** Why: the typed errors seen, or what went wrong. */
  detail: string;
}

/** Raised by a check that found an unacceptable outcome. */
export class Verdict extends Error {
  constructor(
    readonly outcome: Outcome,
    detail: string,
  ) {
    super(detail);
  }
}

/** Typed: one of livekexec's own errors. */
export function typed(err: unknown): err is LivekexecError {
  return err instanceof LivekexecError;
}

/** An error as one line: its class, code and message (a stack's first frames when untyped). */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const frames = typed(err) ? '' : ` @ ${(err.stack ?? '').split('\n').slice(1, 4).join(' <')}`;
    return `${err.name}: ${err.message}${frames}`.replace(/\s+/g, ' ');
  }
  return String(err);
}
