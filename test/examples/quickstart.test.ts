/**
 * examples/quickstart.mjs, the README's "Using it" sketch, run as a real
 * process through two generations, and the README's sketch kept identical to it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../_helpers/paths.js';
import { removeDevice, tempDevice } from '../process/_fixture.js';

const SCRIPT = join(REPO_ROOT, 'examples', 'quickstart.mjs');

test('quickstart: generation 1 preserves a folio and execs in place; generation 2 restores it in the same PID', {
  timeout: 30_000,
}, async () => {
  const device = tempDevice('quickstart');
  after(() => removeDevice(device));
  const env = { ...process.env };
  delete env.NOTIFY_SOCKET;
  delete env.LIVEKEXEC_BOOT;
  delete env.LIVEKEXEC_PRELOAD;
  const { stdout } = await promisify(execFile)(process.execPath, [SCRIPT, device], {
    cwd: REPO_ROOT,
    env,
  });
  const lines = stdout.trim().split('\n');
  assert.equal(lines.length, 3, stdout);
  const first = /^generation 1, cold boot, PID (\d+)$/.exec(lines[0]);
  const second = /^generation 2, kexec boot, PID (\d+)$/.exec(lines[1]);
  assert.ok(first, lines[0]);
  assert.ok(second, lines[1]);
  assert.equal(second[1], first[1], 'same PID');
  assert.equal(lines[2], 'restored: hello');
});

test('README "Using it" shows examples/quickstart.mjs exactly', () => {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const m = /## Using it\n\n```js\n([\s\S]*?)```/.exec(readme);
  assert.ok(m, 'a js block under "Using it"');
  assert.equal(m[1], readFileSync(SCRIPT, 'utf8'));
});
