#!/usr/bin/env node
import { messageOf } from '../base/errors.js';
import { CliError, ExitCode, errorJson } from './cli-exit.js';
import { buildProgram, wantsJson } from './program.js';

async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const json = wantsJson(argv);
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof ExitCode) return err.exitCode;
    const e = err as { code?: string; exitCode?: number };
    // Commander has printed usage errors itself (as JSON under --json, see program.ts).
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) return e.exitCode ?? 1;
    if (json) process.stdout.write(errorJson(err));
    else process.stderr.write(`livekexec: ${messageOf(err)}\n`);
    return err instanceof CliError ? err.exitCode : 1;
  }
}

process.exitCode = await main(process.argv);
