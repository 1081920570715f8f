import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from './_helpers/paths.js';

test('package-lock.json lists every platform package, so npm ci works on a fresh clone', () => {
  const r = spawnSync(
    process.execPath,
    [join(REPO_ROOT, 'scripts', 'lockfile-platforms.mjs'), '--check'],
    {
      encoding: 'utf8',
    },
  );
  assert.equal(r.status, 0, r.stderr);
});
