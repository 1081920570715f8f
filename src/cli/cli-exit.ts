/** Thrown by a verb that has printed its own message and wants a given exit code. */
export class ExitCode extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}
