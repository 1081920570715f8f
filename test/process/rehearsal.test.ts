/**
 * The control channel rehearsal a preloaded handover runs before "ready"
 * (successor, receiving on a worker thread) and at load (predecessor,
 * blocking): it must finish, and leave no descriptor behind, or every
 * kexec load of a long-lived service would leak some.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import { rehearseControlChannel } from '../../src/rehearsal.js';

function openFds(): string[] {
  return readdirSync('/proc/self/fd').sort();
}

for (const waiting of [true, false]) {
  test(`a control channel rehearsal (${waiting ? 'waiting on a worker thread' : 'blocking'}) leaves no descriptor open`, async () => {
    await rehearseControlChannel(waiting); // libuv and koffi open theirs on first use
    const before = openFds();
    for (let i = 0; i < 5; i++) await rehearseControlChannel(waiting);
    assert.deepEqual(openFds(), before);
  });
}
