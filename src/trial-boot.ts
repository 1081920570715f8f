/**
 * Preloaded (node --require, through NODE_OPTIONS) by a successor that
 * boots on trial, before its main module: if that module cannot even load
 * (a syntax error, a missing file or export) or throws before boot(), the
 * try fails into the trial loader instead of dropping the handover (see
 * trial.ts). Built as one CommonJS file (dist/pkg/trial-boot.cjs): required,
 * it costs a successor's start-up well under a millisecond, where an ES
 * module preloaded with --import started node's ES module loader before the
 * main module (about 3 ms).
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { armTrial } from './trial.js';
import { ENV_TRIAL_FDS, withoutNodeOptions } from './trial-options.js';

const env = process.env;
if (env.LIVEKEXEC_BOOT !== undefined) {
  // The program's own children are no successors: they do not load this.
  const self = fileURLToPath(import.meta.url);
  const options = withoutNodeOptions(env.NODE_OPTIONS, (value) =>
    value.startsWith('--require=') ? sameFile(value.slice('--require='.length), self) : false,
  );
  if (options === '') delete env.NODE_OPTIONS;
  else env.NODE_OPTIONS = options;
  // The next try gets the descriptor list again (armTrial keeps a copy of env).
  armTrial(new URL('./trial-loader.js', import.meta.url).href, env);
  delete env[ENV_TRIAL_FDS];
}

/** `path` names this file (node required it by its real path). */
function sameFile(path: string, self: string): boolean {
  try {
    return realpathSync(path) === self;
  } catch {
    return false;
  }
}
