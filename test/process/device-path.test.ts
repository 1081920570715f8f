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

test("under pm2 the default device path is the program's, not pm2's container script's (it imports pm_exec_path)", () => {
  const processJs = pathToFileURL(join(REPO_ROOT, 'dist', 'src', 'process.js')).href;
  const body = `import { defaultDevicePath, defaultRelease } from '${processJs}';\nconsole.log(defaultDevicePath(), defaultRelease());\nprocess.exit(0);\n`;
  for (const app of ['p', 'q']) {
    mkdirSync(join(dir, app));
    writeFileSync(join(dir, app, 'server.mjs'), body);
  }
  const container = join(REPO_ROOT, 'node_modules', 'pm2', 'lib', 'ProcessContainerFork.js');
  // pm2's fork mode: node <container> <args>, the program named by pm_exec_path (pmx off: no metrics timers).
  const underPm2 = (app: string) =>
    execFileSync(process.execPath, [container], {
      encoding: 'utf8',
      env: { ...process.env, pm_exec_path: join(dir, app, 'server.mjs'), pmx: 'false' },
    }).trim();
  const p = underPm2('p');
  assert.equal(
    p,
    devicePathOf(join(dir, 'p', 'server.mjs')),
    'the same device as run by node itself',
  );
  assert.match(
    p,
    /\/livekexec-server-[0-9a-f]{8} server\.mjs$/,
    'named after the program, released as it',
  );
  assert.notEqual(p, underPm2('q'), 'two programs under pm2, two devices');
});
