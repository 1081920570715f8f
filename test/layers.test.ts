import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from './_helpers/paths.js';

/**
 * DESIGN.md's layers: each uses only the ones above it. Preservation
 * subsystems may use KHO (they are its users); KHO may not use them.
 */
const LAYER: Record<string, number> = {
  base: 0,
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

test('imports only go up the layer list of DESIGN.md', () => {
  const wrong: string[] = [];
  for (const file of sources(SRC)) {
    const from = layerOf(file);
    assert.ok(from !== undefined, `${relative(SRC, file)} is in no layer`);
    for (const m of readFileSync(file, 'utf8').matchAll(/from '(\.[^']+)'/g)) {
      const target = resolve(dirname(file), m[1]).replace(/\.js$/, '.ts');
      if (!target.startsWith(SRC)) {
        // The demo command runs the example service (examples/kv-cache), a program built on the package.
        if (relative(SRC, file) === 'cli/demo.ts') continue;
        wrong.push(`${relative(SRC, file)} imports ${m[1]}, outside src/`);
        continue;
      }
      const to = layerOf(target);
      if (to === undefined || to > from)
        wrong.push(
          `${relative(SRC, file)} (layer ${from}) imports ${relative(SRC, target)} (layer ${to})`,
        );
    }
  }
  assert.deepEqual(wrong, []);
});
