/**
 * The control channel rehearsal a preloaded handover runs before "ready"
 * (successor) and at load (predecessor): it must finish, and leave no
 * descriptor behind, or every kexec load of a long-lived service would leak some.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import { rehearseControlChannel } from '../../src/rehearsal.js';

function openFds(): string[] {
  return readdirSync('/proc/self/fd').sort();
}

test('a control channel rehearsal leaves no descriptor open', async () => {
  await rehearseControlChannel(); // libuv and koffi open theirs on first use
  const before = openFds();
  for (let i = 0; i < 5; i++) await rehearseControlChannel();
  assert.deepEqual(openFds(), before);
});
