import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { ENV_REAP, parseReapList } from '../../src/kexec/reap.js';
import { Fixture, removeDevice, tempDevice } from './_fixture.js';

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups) c();
});

/** Runs reap.mjs to its last generation; returns that generation's children ([pid, state, comm]). */
async function lastChildren(name: string, last: number, marker?: string) {
  const device = tempDevice(name);
  const fx = new Fixture('reap.mjs', [device, String(last), ...(marker ? [marker] : [])]);
  cleanups.push(() => {
    fx.cleanup();
    removeDevice(device);
    if (marker) removeDevice(marker);
  });
  const end = await fx.waitFor('children', 40_000);
  assert.equal(end.generation, last, fx.report());
  const children = end.children as [number, string, string][];
  assert.deepEqual(
    children.filter(([, state]) => state === 'Z'),
    [],
    `zombies among ${JSON.stringify(children)}`,
  );
  fx.finish();
  assert.equal((await fx.exited).code, 0, fx.report());
  return { children, fails: fx.all('fail').length };
}

test('in-place generations that served leave no zombie: each reaps the sentinel its predecessor left running at execve', {
  timeout: 60_000,
}, async () => {
  const { children } = await lastChildren('reap', 4);
  // This generation's own sentinel only: the three before it are gone.
  assert.ok(children.length <= 1, JSON.stringify(children));
});

test('a try that failed after serving leaves no zombie either: the next try reaps its sentinel', {
  timeout: 60_000,
}, async () => {
  const device = tempDevice('reap-trial-marker');
  const { children, fails } = await lastChildren('reap-trial', 3, `${device}.failed`);
  assert.equal(fails, 1, 'the first try of generation 2 failed');
  assert.ok(children.length <= 1, JSON.stringify(children));
});

test(`${ENV_REAP} is untrusted: only decimal PIDs of other processes are taken, once each`, () => {
  const self = String(process.pid);
  const cases: [string | undefined, number[]][] = [
    [undefined, []],
    ['', []],
    ['123', [123]],
    ['123,456,123', [123, 456]],
    [`7,${self},8`, [7, 8]],
    ['0,-1,1e3,0x10, 42,42 ,abc,9999999999,4194305', []],
    ['12;rm -rf /,13', [13]],
  ];
  for (const [text, want] of cases) assert.deepEqual(parseReapList(text), want, String(text));
});
