import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from '../_helpers/cli.js';
import { REPO_ROOT } from '../_helpers/paths.js';

test('--version prints the package version', () => {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
    version: string;
  };
  const r = runCli(['--version']);
  assert.equal(r.status, 0);
  assert.equal(r.stdout.trim(), pkg.version);
});

test('--help names the program and exits 0', () => {
  const r = runCli(['--help']);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^Usage: livekexec/m);
});

test('an unknown verb exits non-zero with a message', () => {
  const r = runCli(['no-such-verb']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /unknown command|too many arguments/);
});
