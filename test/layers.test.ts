import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from './_helpers/paths.js';

/**
 * The layers of docs/ARCHITECTURE.md: each uses only the ones above it.
 * Preservation subsystems may use KHO (they are its users); KHO may not use
 * them.
 */
const LAYER: Record<string, number> = {
  base: 0,
  sys: 0.5,
  fdt: 1,
  memory: 2,
  boot: 3,
  mm: 4,
  kho: 5,
  pmpool: 5.5,
  pkram: 5.5,
  luo: 5.5,
  status: 5.5,
  kexec: 6,
  kernel: 7,
  'machine.ts': 7,
  'process.ts': 7,
  'rehearsal.ts': 7,
  'trial.ts': 7,
  'service.ts': 7,
  'trial-boot.ts': 7,
  'trial-loader.ts': 7,
  'trial-decide.ts': 7,
  'trial-options.ts': 7,
  'trial-fail.ts': 7,
  store: 7.5,
  cli: 8,
  'index.ts': 9,
};
const SRC = join(REPO_ROOT, 'src');

/**
 * The libc binding (src/sys/) is for the code that must call libc: the
 * mapped device, the live update orchestrator, a real process's handover and
 * the trial's failure path (which execs without the rest of the package).
 */
const SYS_USERS = new Set(['sys', 'memory', 'luo', 'kexec', 'trial-fail.ts', 'trial-loader.ts']);

function* sources(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* sources(p);
    else if (p.endsWith('.ts')) yield p;
  }
}

function layerOf(path: string): number | undefined {
  return LAYER[relative(SRC, path).split('/')[0]];
}

/** Each relative import of a source file: the importing file and the imported one, as .ts paths. */
function* imports(): Generator<{ file: string; spec: string; target: string }> {
  for (const file of sources(SRC)) {
    for (const m of readFileSync(file, 'utf8').matchAll(/from '(\.[^']+)'/g)) {
      yield { file, spec: m[1], target: resolve(dirname(file), m[1]).replace(/\.js$/, '.ts') };
    }
  }
}

test('imports only go up the layer list of docs/ARCHITECTURE.md', () => {
  const wrong: string[] = [];
  for (const file of sources(SRC)) {
    assert.ok(layerOf(file) !== undefined, `${relative(SRC, file)} is in no layer`);
  }
  for (const { file, spec, target } of imports()) {
    const from = layerOf(file) as number;
    if (!target.startsWith(SRC)) {
      // The demo command runs the example service (examples/kv-cache), a program built on the package.
      if (relative(SRC, file) === 'cli/demo.ts') continue;
      wrong.push(`${relative(SRC, file)} imports ${spec}, outside src/`);
      continue;
    }
    const to = layerOf(target);
    if (to === undefined || to > from)
      wrong.push(
        `${relative(SRC, file)} (layer ${from}) imports ${relative(SRC, target)} (layer ${to})`,
      );
  }
  assert.deepEqual(wrong, []);
});

test('only the code that must call libc imports src/sys/', () => {
  const wrong: string[] = [];
  for (const { file, target } of imports()) {
    const from = relative(SRC, file).split('/')[0];
    if (relative(SRC, target).startsWith('sys/') && !SYS_USERS.has(from))
      wrong.push(`${relative(SRC, file)} imports ${relative(SRC, target)}`);
  }
  assert.deepEqual(wrong, []);
});

test("a folder's _*.ts files are its own: no other folder imports them", () => {
  const wrong: string[] = [];
  for (const { file, target } of imports()) {
    if (basename(target).startsWith('_') && dirname(target) !== dirname(file))
      wrong.push(`${relative(SRC, file)} imports ${relative(SRC, target)}`);
  }
  assert.deepEqual(wrong, []);
});
