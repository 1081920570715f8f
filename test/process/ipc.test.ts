import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { after, test } from 'node:test';
import { fixture } from '../_helpers/paths.js';
import { removeDevice, tempDevice } from './_fixture.js';

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups) c();
});

function nextMessage(child: ChildProcess, event: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} message`)), 20_000);
    const on = (m: Record<string, unknown>) => {
      if (m.event !== event) return;
      clearTimeout(timer);
      child.off('message', on);
      resolve(m);
    };
    child.on('message', on);
  });
}

test('the IPC channel of a forked process (pm2, child_process.fork) survives an in-place upgrade: the parent talks to the successor on it', {
  timeout: 30_000,
}, async () => {
  const device = tempDevice('ipc');
  const child = fork(fixture('process', 'ipc.mjs'), [device], { stdio: 'pipe' });
  cleanups.push(() => {
    child.kill('SIGKILL');
    removeDevice(device);
  });
  const first = await nextMessage(child, 'boot');
  assert.equal(first.kind, 'cold');
  child.send('in-place');
  const second = await nextMessage(child, 'boot');
  assert.equal(second.kind, 'kexec');
  assert.equal(second.pid, first.pid, 'the same process');
  child.send('ping');
  assert.equal(
    (await nextMessage(child, 'pong')).generation,
    2,
    'the successor answers on the channel',
  );
  // A preloaded successor is another process: refused, with why.
  child.send('preload');
  const refused = await nextMessage(child, 'refused');
  assert.equal(refused.code, 'EINVAL');
  assert.match(
    refused.message as string,
    /IPC channel to its parent .* cannot follow a preloaded successor/,
  );
  child.send('ping');
  assert.equal((await nextMessage(child, 'pong')).generation, 2, 'and it goes on');
  child.send('exit');
});

test('a cluster worker cannot upgrade in place: refused with a typed error naming why', {
  timeout: 30_000,
}, () => {
  const device = tempDevice('cluster');
  cleanups.push(() => removeDevice(device));
  const out = execFileSync(process.execPath, [fixture('process', 'cluster-worker.mjs'), device], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  const m = JSON.parse(out.trim().split('\n')[0]!) as {
    event: string;
    code: string;
    message: string;
  };
  assert.equal(m.event, 'refused');
  assert.equal(m.code, 'EINVAL');
  assert.match(
    m.message,
    /a cluster worker cannot be replaced in-place: its primary holds the listening sockets/,
  );
});
