/**
 * README "Operations" runs as written: deploy, a broken release that falls
 * back, a restart handover, on examples/ops.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { REPO_ROOT } from '../_helpers/paths.js';
import { removeDevice, tempDevice } from '../process/_fixture.js';
import { freePort } from '../process/_load.js';

const device = tempDevice('ops');
after(() => removeDevice(device));

function commands(): string {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const m = /<!-- operations:begin -->\n```sh\n([\s\S]*?)```\n<!-- operations:end -->/.exec(readme);
  assert.ok(m, 'README has the Operations commands between its markers');
  return m[1]!;
}

test('README "Operations": deploy in place, a broken release falls back to the last good one, the next release deploys, a restart hands over', {
  timeout: 180_000,
}, async () => {
  const port = await freePort();
  const r = spawnSync('bash', ['-euo', 'pipefail', '-c', commands()], {
    cwd: REPO_ROOT,
    env: { ...process.env, DEVICE: device, PORT: String(port), NOTIFY_SOCKET: '' },
    encoding: 'utf8',
    timeout: 170_000,
  });
  const out = `${r.stdout}\n--- stderr\n${r.stderr}`;
  assert.equal(r.status, 0, out);
  assert.match(r.stdout, /^version 1, generation 1, hits 1$/m);
  assert.match(r.stdout, /^version 2, generation 2, hits \d+$/m);
  assert.match(r.stdout, /^version 2, generation 3, hits \d+$/m, 'v2 is back after v3 failed');
  assert.match(r.stdout, /^release: {4}ops-example@2 \(kexec boot 2 since the cold boot\)$/m);
  assert.match(
    r.stdout,
    /^last: {7}fell back: .*service\.mjs.* marked bad after 2 tries: exited with status 1 \(SyntaxError/m,
  );
  assert.match(
    r.stdout,
    /^boot block: pending at 0x[0-9a-f]+$/m,
    'the restart left the handover pending',
  );
  assert.match(
    r.stdout,
    /^version 4, generation 4, hits \d+$/m,
    'a release deployed after the fallback runs',
  );
  assert.match(r.stdout, /^version 4, generation 5, hits \d+$/m, 'the next start took it');
  // The count went across every handover: each answer has one more hit than the last.
  const hits = [...r.stdout.matchAll(/hits (\d+)$/gm)].map((m) => Number(m[1]));
  for (let i = 1; i < hits.length; i++)
    assert.ok(hits[i]! > hits[i - 1]!, `hits ${hits.join(', ')}`);
  assert.match(r.stderr, /try 2 of 2 failed .*falling back to /);
});
