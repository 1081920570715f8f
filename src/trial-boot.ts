/**
 * Loaded first (node --import, through NODE_OPTIONS) by a successor that
 * boots on trial, before its main module: if that module cannot even load
 * (a syntax error, a missing file or export) or throws before boot(), the
 * try fails into the trial loader instead of dropping the handover (see
 * trial.ts). Costs a successor's start-up one small module.
 */
import { armTrial, trialImportOption, withNodeOption } from './trial.js';

const env = process.env;
if (env.LIVEKEXEC_BOOT !== undefined) {
  // The program's own children are no successors: they do not load this.
  const options = withNodeOption(env.NODE_OPTIONS, trialImportOption(import.meta.url), false);
  if (options === '') delete env.NODE_OPTIONS;
  else env.NODE_OPTIONS = options;
  armTrial(new URL('./trial-loader.js', import.meta.url).href, env);
}
