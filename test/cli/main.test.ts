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

test('usage errors exit 1 with a "livekexec:" message, then the usage', () => {
  for (const [argv, message] of [
    [['no-such-verb'], "livekexec: unknown command 'no-such-verb'"],
    [['fdt', 'dump'], "livekexec: missing required argument 'file'"],
    [['device', 'create', 'x', '--size'], "livekexec: option '-s, --size <size>' argument missing"],
  ] as const) {
    const r = runCli([...argv]);
    assert.equal(r.status, 1, argv.join(' '));
    assert.equal(r.stderr.split('\n')[0], message);
    assert.match(r.stderr, /^Usage: livekexec/m);
  }
});
