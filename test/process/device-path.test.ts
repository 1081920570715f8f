import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from '../_helpers/paths.js';

const dir = mkdtempSync(join(tmpdir(), 'livekexec-path-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function devicePathOf(script: string): string {
  return execFileSync(process.execPath, [script], { encoding: 'utf8' }).trim();
}

test('the default device path is unique per program: two index.mjs in two directories differ, one reached through a symlink is the same', () => {
  const processJs = pathToFileURL(join(REPO_ROOT, 'dist', 'src', 'process.js')).href;
  const body = `import { defaultDevicePath } from '${processJs}';\nconsole.log(defaultDevicePath());\n`;
  for (const app of ['a', 'b']) {
    mkdirSync(join(dir, app));
    writeFileSync(join(dir, app, 'index.mjs'), body);
  }
  symlinkSync(join(dir, 'a'), join(dir, 'current'));
  const a = devicePathOf(join(dir, 'a', 'index.mjs'));
  const b = devicePathOf(join(dir, 'b', 'index.mjs'));
  const viaLink = devicePathOf(join(dir, 'current', 'index.mjs'));
  assert.match(a, /\/livekexec-index-[0-9a-f]{8}$/);
  assert.notEqual(a, b, 'two programs, two devices');
  assert.equal(viaLink, a, 'the real path decides');
});
