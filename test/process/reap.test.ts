import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { ENV_REAP, parseReapList } from '../../src/kexec/reap.js';
import { Fixture, removeDevice, tempDevice } from './_fixture.js';

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups) c();
});

test('in-place generations that served leave no zombie: each reaps the sentinel its predecessor left running at execve', {
  timeout: 60_000,
}, async () => {
  const device = tempDevice('reap');
  const fx = new Fixture('reap.mjs', [device, '4']);
  cleanups.push(() => {
    fx.cleanup();
    removeDevice(device);
  });
  const last = await fx.waitFor('children', 30_000);
  assert.equal(last.generation, 4, fx.report());
  const children = last.children as [number, string, string][];
  assert.deepEqual(
    children.filter(([, state]) => state === 'Z'),
    [],
    `zombies among ${JSON.stringify(children)}`,
  );
  // This generation's own sentinel only: the three before it are gone.
  assert.ok(children.length <= 1, JSON.stringify(children));
  fx.finish();
  assert.equal((await fx.exited).code, 0, fx.report());
});

test('a try that failed after serving leaves no zombie either: the next try reaps its sentinel', {
  timeout: 60_000,
}, async () => {
  const device = tempDevice('reap-trial');
  const marker = `${device}.failed`;
  const fx = new Fixture('reap.mjs', [device, '3', marker]);
  cleanups.push(() => {
    fx.cleanup();
    removeDevice(device);
    removeDevice(marker);
  });
  const last = await fx.waitFor('children', 40_000);
  assert.equal(fx.all('fail').length, 1, fx.report());
  assert.equal(last.generation, 3, fx.report());
  const children = last.children as [number, string, string][];
  assert.deepEqual(
    children.filter(([, state]) => state === 'Z'),
    [],
    `zombies among ${JSON.stringify(children)}`,
  );
  assert.ok(children.length <= 1, JSON.stringify(children));
  fx.finish();
  assert.equal((await fx.exited).code, 0, fx.report());
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
