import { LivekexecError } from '../base/errors.js';

/** Thrown by a verb that has printed its own message and wants a given exit code. */
export class ExitCode extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}

/**
 * A refusal of the command itself (no handover to look at, no such node):
 * main.ts prints it like any other error, as JSON under --json.
 */
export class CliError extends LivekexecError<string> {
  override name = 'CliError';

  constructor(
    code: string,
    detail: string,
    readonly exitCode = 1,
  ) {
    super(code, detail);
  }
}

/** An error as `--json` prints it: `{ "error": { "name", "code", "message" } }`. */
export function errorJson(err: unknown): string {
  const e = err instanceof Error ? err : new Error(String(err));
  const code = (e as { code?: unknown }).code;
  return `${JSON.stringify(
    { error: { name: e.name, code: typeof code === 'string' ? code : null, message: e.message } },
    null,
    2,
  )}\n`;
}
