/**
 * The trial loader: a program a failed try execs in its place when it
 * cannot decide what follows by itself (trial.ts), and boot() when it finds
 * a try that died: counts the failure and execs the next try or the
 * fallback (trial-decide.ts), as a bootloader counting tries does. When
 * anything is wrong it says so and exits 1: the handover stays pending, and
 * the next boot() of the device takes it.
 */
import { messageOf } from './base/errors.js';
import { getProcLibc } from './sys/socket.js';
import { decideNext } from './trial-decide.js';
import { ENV_TRIAL_FAILED, keepStdio } from './trial-fail.js';
import { trialBootPath, trialPreloadOption } from './trial-options.js';

try {
  const reason = process.env[ENV_TRIAL_FAILED] ?? 'unknown failure';
  delete process.env[ENV_TRIAL_FAILED];
  const trialBoot = trialPreloadOption(trialBootPath(import.meta.url));
  const next = decideNext(process.env, reason, trialBoot);
  process.stderr.write(`${next.message}\n`);
  if (next.command.cwd !== '') process.chdir(next.command.cwd);
  const libc = getProcLibc();
  keepStdio();
  const lines = Object.entries(next.env).map(([k, v]) => `${k}=${v}`);
  libc.execve(next.command.file, next.command.argv, lines);
  throw new Error(`execve(${next.command.file}) failed (errno ${libc.errno()})`);
} catch (err) {
  process.stderr.write(
    `livekexec trial loader: ${messageOf(err)}; the handover stays pending for the next boot of the device\n`,
  );
  process.exitCode = 1;
}
