import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from './_helpers/paths.js';

const bench = (...args: string[]) =>
  spawnSync(process.execPath, [join(REPO_ROOT, 'dist', 'bench', 'main.js'), ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  });

test('npm run bench refuses an option no named benchmark reads, before running anything', () => {
  const r = bench('handover', '--sizez=64');
  assert.equal(r.status, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /no benchmark of handover takes --sizez=64/);
  assert.doesNotMatch(r.stdout, /== handover ==/);
  // Another benchmark's option is refused too.
  const other = bench('fdt', '--chains=3');
  assert.equal(other.status, 2, other.stdout + other.stderr);
  assert.match(other.stderr, /no benchmark of fdt takes --chains=3/);
});

test('npm run bench -- --help lists every benchmark with its options', () => {
  const r = bench('--help');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^ {2}handover +--ways --sizes --allocs --rounds --chains$/m);
  assert.match(r.stdout, /^ {2}pkram +--quick --gib --rounds --orders$/m);
  assert.match(r.stdout, /^ {2}kho-radix +\(no options\)$/m);
  assert.match(r.stdout, /^ {2}startup +--rounds$/m);
});
