/**
 * examples/systemd/livekexec-app.service as systemd reads it: systemd-analyze
 * verify (Debian's systemd package, scripts/install-test-deps.sh) must find
 * nothing to say, and the unit must set what README "Operations" says it
 * does. No systemd runs as PID 1 here, so the protocol itself (READY=1,
 * RELOADING=1, the fd store) is tested against a fake service manager
 * (test/process/restart.test.ts, ready.test.ts, sd-notify.test.ts).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../_helpers/paths.js';

const UNIT = join(REPO_ROOT, 'examples', 'systemd', 'livekexec-app.service');
const ANALYZE = '/usr/bin/systemd-analyze';

/** The unit's [Service] settings, each key's values in order. */
function settings(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('[')) section = line;
    else if (section === '[Service]') {
      const eq = line.indexOf('=');
      const key = line.slice(0, eq);
      out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)]);
    }
  }
  return out;
}

test('the systemd unit example passes systemd-analyze verify without a warning', () => {
  assert.ok(
    existsSync(ANALYZE),
    "systemd-analyze is missing: install Debian's systemd package (scripts/install-test-deps.sh)",
  );
  const text = readFileSync(UNIT, 'utf8');
  // verify checks that ExecStart='s program exists: node is wherever this one is.
  const dir = mkdtempSync(join(tmpdir(), 'livekexec-unit-'));
  try {
    const unit = join(dir, 'livekexec-app.service');
    const node = existsSync('/usr/bin/node') ? '/usr/bin/node' : process.execPath;
    writeFileSync(unit, text.replaceAll('/usr/bin/node ', `${node} `));
    const r = spawnSync(ANALYZE, ['verify', unit], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(`${r.stdout}${r.stderr}`, '', 'systemd-analyze verify says nothing');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the systemd unit sets what README "Operations" says: READY=1 from the program, SIGHUP to reload, notifications from a preloaded successor, an fd store, SIGTERM to the main process only', () => {
  const s = settings(readFileSync(UNIT, 'utf8'));
  assert.deepEqual(s.get('Type'), ['notify']);
  assert.deepEqual(s.get('ExecReload'), ['/bin/kill -HUP $MAINPID']);
  assert.deepEqual(s.get('NotifyAccess'), ['all']);
  assert.ok(Number(s.get('FileDescriptorStoreMax')?.[0]) > 0);
  assert.deepEqual(s.get('KillMode'), ['mixed']);
  assert.match(s.get('ExecStart')?.[0] ?? '', /\/current\/service\.mjs /);
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  for (const said of [
    'Type=notify',
    'ExecReload=',
    'NotifyAccess=all',
    'FileDescriptorStoreMax=',
    'KillMode=mixed',
  ]) {
    assert.ok(readme.includes(said), `README says ${said}`);
  }
});
