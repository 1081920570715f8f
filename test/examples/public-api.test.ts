import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../_helpers/paths.js';

function* files(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* files(p);
    else if (/\.(m?js|ts)$/.test(p)) yield p;
  }
}

test('the examples use only the public API: no import reaches into src/ (a failed upgrade needs no private libc binding)', () => {
  const wrong: string[] = [];
  for (const file of files(join(REPO_ROOT, 'examples'))) {
    for (const m of readFileSync(file, 'utf8').matchAll(/from '([^']+)'/g)) {
      if (/(^|\/)src\//.test(m[1]) || m[1].includes('/_'))
        wrong.push(`${relative(REPO_ROOT, file)}: ${m[1]}`);
    }
  }
  assert.deepEqual(wrong, []);
});
