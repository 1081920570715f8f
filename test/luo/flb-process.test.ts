/**
 * Real processes: a parent links an FLB to the memfd handler, preserves
 * memfds in two sessions (one through a handler that gates its finish),
 * serializes into the environment and spawns a successor that inherits the
 * descriptors at the same numbers (_flb-child.ts).
 */
import assert from 'node:assert/strict';
import { type StdioOptions, spawn } from 'node:child_process';
import { closeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createMemfd, defaultHandlers, LiveUpdate, memfdHandler } from '../../src/luo/index.js';
import { gatedMemfdHandler, recordingFlb } from './_flb.js';
import { lines } from './_lines.js';

const HERE = dirname(fileURLToPath(import.meta.url));

test('a spawned successor gets the FLB state once and finishes it with the last file; can_finish holds a session', async () => {
  const handlers = [gatedMemfdHandler(() => true), ...defaultHandlers()];
  const fds = [createMemfd('plain', 0), createMemfd('a', 0), createMemfd('gated', 0)];
  const calls: string[] = [];
  const flb = recordingFlb(calls);
  const lu = new LiveUpdate({ handlers });
  let child: ReturnType<typeof spawn> | null = null;
  try {
    lu.registerFlb(memfdHandler, flb);
    const plain = lu.createSession('plain');
    plain.preserveFd(fds[0]!, 1);
    const gated = lu.createSession('gated');
    gated.preserveFd(fds[1]!, 1); // a plain memfd: the FLB's second file
    gated.preserveFd(fds[2]!, 2); // the gated handler's
    lu.flbGetOutgoing(flb)!.names.push('from-parent');
    assert.deepEqual(
      gated.files().map((f) => f.compatible),
      [memfdHandler.compatible, 'test,luo-gated-memfd-v1'],
    );
    lu.freeze();
    const blob = lu.serialize();
    assert.deepEqual(calls, ['preserve', 'save']);
    const stdio: StdioOptions = ['ignore', 'pipe', 'inherit'];
    for (let i = 3; i <= Math.max(...fds); i++) stdio.push(fds.includes(i) ? i : 'ignore');
    child = spawn(process.execPath, [join(HERE, '_flb-child.js')], {
      stdio,
      env: { ...process.env, LIVEKEXEC_LUO: Buffer.from(blob).toString('base64') },
    });
    const report = JSON.parse(await lines(child.stdout!).next());
    assert.equal(report.pid, child.pid);
    assert.deepEqual(report.names, ['from-parent']);
    // Counted across sessions: 'plain' held one of its two files.
    assert.deepEqual(report.afterPlain, ['retrieve']);
    // The gated handler refused: nothing finished, the FLB neither.
    assert.equal(report.refused, 'EBUSY');
    assert.deepEqual(report.afterRefusal, ['retrieve']);
    assert.deepEqual(report.calls, ['retrieve', 'finish from-parent']);
  } finally {
    if (child && child.exitCode === null) await new Promise((r) => child!.once('exit', r));
    lu.close();
    for (const fd of fds) closeSync(fd);
  }
});
