import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { getProcLibc } from '../../src/kexec/_libc.js';
import { getLuoLibc } from '../../src/luo/_libc.js';
import { getLibc } from '../../src/memory/_libc.js';
import { REPO_ROOT } from '../_helpers/paths.js';

const SRC = join(REPO_ROOT, 'src');

function* sources(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* sources(p);
    else if (name.endsWith('.ts')) yield p;
  }
}

test('libc is bound once: only src/memory/_libc.ts loads it and declares functions', () => {
  const binders: string[] = [];
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    if (/koffi\.load\(|\.func\(/.test(text)) binders.push(relative(SRC, file));
  }
  assert.deepEqual(binders, ['memory/_libc.ts']);
});

test('luo and kexec use the shared binding', () => {
  assert.equal(getLuoLibc(), getLibc());
  const proc = getProcLibc();
  assert.equal(proc, getProcLibc(), 'one object, so a probe patched on it is the one exec calls');
  // The same descriptor table through either view.
  const pair = proc.socketpair(1, 1);
  assert.ok(pair);
  try {
    assert.equal(getLibc().fcntl(pair[0], 1, 0) >= 0, true);
  } finally {
    proc.close(pair[0]);
    proc.close(pair[1]);
  }
});
