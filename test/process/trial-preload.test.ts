import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { trialPreloadOption, withNodeOption, withoutNodeOptions } from '../../src/trial-options.js';
import { Fixture, removeDevice, tempDevice } from './_fixture.js';

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups) c();
});

test('an in-place successor on trial loads trial-boot.cjs alone before its main module (not the libc binding), and neither its environment nor its children keep the preload or the descriptor list', {
  timeout: 30_000,
}, async () => {
  const device = tempDevice('trial-env');
  // The service's own NODE_OPTIONS, a quoted word among them, comes back as it was.
  const own = '--max-old-space-size=256 --title="trial env"';
  const fx = new Fixture('trial-env.mjs', [device], { env: { NODE_OPTIONS: own } });
  cleanups.push(() => {
    fx.cleanup();
    removeDevice(device);
  });
  const s = await fx.waitFor('successor', 20_000);
  assert.equal(s.generation, 2);
  assert.equal(s.onTrial, true, 'boot counting is on by default');
  const before = s.before as string[];
  assert.ok(
    before.some((f) => f.endsWith('/dist/pkg/trial-boot.cjs')),
    `trial-boot.cjs was preloaded: ${before.join(', ')}`,
  );
  assert.deepEqual(
    before.filter((f) => !f.endsWith('/dist/pkg/trial-boot.cjs')),
    [],
    'nothing else (koffi, trial-fail.cjs) is loaded before the main module',
  );
  assert.deepEqual(
    s.env,
    { NODE_OPTIONS: own },
    'the preload word and the descriptor list are gone',
  );
  assert.ok(
    (s.inherited as number[]).includes(s.deviceFd as number),
    'the trial knows the device descriptor from its predecessor',
  );
  assert.deepEqual(s.child, { NODE_OPTIONS: own, armed: false });
  await fx.exited;
});

test('the preload word survives the paths node reads in NODE_OPTIONS (space, quote, backslash) and is removed as node read it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'livekexec trial "q" \\b '));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'pre.cjs');
  writeFileSync(file, 'globalThis.preloaded = __filename;\n');
  const word = trialPreloadOption(file);
  const options = withNodeOption('--title="a b" --no-warnings', word, true);
  const seen = execFileSync(
    process.execPath,
    ['-p', 'globalThis.preloaded + "|" + process.title'],
    {
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: options },
    },
  ).trim();
  assert.equal(seen, `${file}|a b`);
  assert.equal(withNodeOption(options, word, false), '--title="a b" --no-warnings');
  assert.equal(
    withoutNodeOptions(options, (v) => v === `--require=${file}`),
    '--title="a b" --no-warnings',
  );
});
