/**
 * The NODE_OPTIONS word that makes a successor on trial load trial-boot.cjs
 * first, and the edits of NODE_OPTIONS that add or remove it (the program's
 * own children, and the fallback, must not load it).
 */
import { fileURLToPath } from 'node:url';

/**
 * The descriptors an in-place successor on trial inherits beyond stdio, as
 * `fd:dev:ino,...`: written by the predecessor, which knows them, so that
 * trial-boot.cjs need not look for them before the main module.
 */
export const ENV_TRIAL_FDS = 'LIVEKEXEC_TRIAL_FDS';

/**
 * trial-boot.cjs, from the URL of a module of the package: it sits in
 * dist/pkg, beside the bundle and one level from dist/src.
 */
export function trialBootPath(moduleUrl: string): string {
  return fileURLToPath(new URL('../pkg/trial-boot.cjs', moduleUrl));
}

/**
 * The NODE_OPTIONS word that preloads trial-boot.cjs (`path`, a file path):
 * `--require`, which loads one small CommonJS file before the main module
 * without starting node's ES module loader early, quoted as node's
 * NODE_OPTIONS parser reads it when the path has a space, quote or backslash.
 */
export function trialPreloadOption(path: string): string {
  return /[ "\\]/.test(path)
    ? `--require="${path.replace(/["\\]/g, '\\$&')}"`
    : `--require=${path}`;
}

/**
 * NODE_OPTIONS with `word` (one option, as trialPreloadOption makes it)
 * added at the end or removed, every other word kept as written.
 */
export function withNodeOption(options: string | undefined, word: string, add: boolean): string {
  const [target] = splitNodeOptions(word).map((w) => w.value);
  const kept = withoutNodeOptions(options, (value) => value === target);
  return add ? (kept === '' ? word : `${kept} ${word}`) : kept;
}

/** NODE_OPTIONS without the words whose value (as node reads it) `drop` picks. */
export function withoutNodeOptions(
  options: string | undefined,
  drop: (value: string) => boolean,
): string {
  return splitNodeOptions(options ?? '')
    .filter((w) => !drop(w.value))
    .map((w) => w.text)
    .join(' ');
}

/**
 * NODE_OPTIONS split as node splits it (src/node_options.cc): words are
 * separated by spaces outside double quotes; quotes group and are dropped;
 * inside them a backslash takes the next character as is. `text` is the
 * word as written, `value` what node reads.
 */
export function splitNodeOptions(options: string): { text: string; value: string }[] {
  const out: { text: string; value: string }[] = [];
  let text = '';
  let value = '';
  let quoted = false;
  let started = false;
  for (let i = 0; i < options.length; i++) {
    const c = options[i]!;
    if (c === ' ' && !quoted) {
      if (started) out.push({ text, value });
      text = '';
      value = '';
      started = false;
      continue;
    }
    started = true;
    text += c;
    if (c === '"') quoted = !quoted;
    else if (c === '\\' && quoted && i + 1 < options.length) {
      i++;
      text += options[i];
      value += options[i];
    } else value += c;
  }
  if (started) out.push({ text, value });
  return out;
}
