import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { MappedDevice } from '../../src/memory/mapped.js';
import { boot, processPlatform } from '../../src/process.js';
import { fixture } from '../_helpers/paths.js';
import { removeDevice, tempDevice } from './_fixture.js';

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups.reverse()) c();
});

test('a preloading kexec load readies this side of the handover; a hook that throws does not fail the load', {
  timeout: 30_000,
}, async () => {
  const path = tempDevice('ready-handover');
  cleanups.push(() => removeDevice(path));
  let calls = 0;
  let fail = false;
  const kernel = await boot({
    device: path,
    size: '8M',
    platform: {
      readyHandover: () => {
        calls++;
        if (fail) throw new Error('hook failed');
      },
    },
  });
  cleanups.push(() => (kernel.device as MappedDevice).close());
  const program = fixture('process', 'preload-wait.mjs');
  kernel.kexec.load({ preload: true, program, argv: ['10000'] });
  assert.equal(calls, 1);
  assert.ok(processPlatform(kernel)?.preloadedPid);
  fail = true;
  kernel.kexec.load({ preload: true, program, argv: ['10000'] });
  assert.equal(calls, 2);
  assert.ok(processPlatform(kernel)?.preloadedPid, 'the successor was preloaded all the same');
  kernel.kexec.load({ program });
  assert.equal(calls, 2, 'a load without preload readies nothing');
  kernel.kexec.unload();
});
