import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, test } from 'node:test';
import { CLI } from '../_helpers/paths.js';
import { Fixture, removeDevice, tempDevice } from './_fixture.js';

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups) c();
});

function start(device: string, tries: number): Fixture {
  const fx = new Fixture('trial-killed.mjs', [device, String(tries)]);
  cleanups.push(() => fx.cleanup());
  return fx;
}

test('a successor killed by a signal during its trial is counted at the next start of the program: the next try boots, then the fallback, with every preserved item and the reason', {
  timeout: 60_000,
}, async () => {
  const device = tempDevice('trial-killed');
  cleanups.push(() => removeDevice(device));
  const first = start(device, 2);
  const try1 = await first.waitFor('bad-booted');
  assert.equal(try1.tries, 1);
  assert.equal(try1.pid, first.child.pid, 'in place');
  process.kill(try1.pid, 'SIGKILL');
  assert.equal((await first.exited).signal, 'SIGKILL');

  // A supervisor starts the program again: it finds the dead try and counts it.
  const second = start(device, 2);
  const try2 = await second.waitFor('bad-booted');
  assert.equal(try2.tries, 2, 'the killed try was counted; this is the second');
  assert.equal(try2.pid, second.child.pid);
  assert.match(
    second.stderr,
    new RegExp(
      `try 1 of 2 failed \\(the try in PID ${try1.pid} ended without exiting \\(killed by a signal, or crashed\\)\\); try 2`,
    ),
  );
  process.kill(try2.pid, 'SIGKILL');
  await second.exited;

  // Both tries spent: the next start boots the last good program on the same handover.
  const third = start(device, 2);
  const back = await third.waitFor('booted');
  assert.equal(back.kind, 'kexec', third.report());
  assert.equal(back.pid, third.child.pid);
  assert.equal(back.kept, true, 'the preserved folio came back whole');
  const from = back.fellBackFrom as { outcome: string; tries: number; reason: string };
  assert.equal(from.outcome, 'fell-back');
  assert.equal(from.tries, 2);
  assert.equal(
    from.reason,
    `the try in PID ${try2.pid} ended without exiting (killed by a signal, or crashed)`,
  );
  assert.equal(
    (back.upgrade as { last: { reason: string } }).last.reason,
    from.reason,
    'the status API says why',
  );
  await third.exited;
  const info = execFileSync(process.execPath, [CLI, 'device', 'info', device], {
    encoding: 'utf8',
  });
  assert.match(
    info,
    /^last: {7}fell back: hanging-successor@2 marked bad after 2 tries: the try in PID \d+ ended without exiting \(killed by a signal, or crashed\)/m,
  );
});
