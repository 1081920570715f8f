import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Fixture, removeDevice, tempDevice } from './_fixture.js';

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups) c();
});

for (const profiled of [false, true]) {
  test(`a failed execve leaves the generation usable and no pending boot block; a later exec works${profiled ? ' (under node --cpu-prof)' : ''}`, {
    timeout: 30_000,
  }, async () => {
    const device = tempDevice('execfail');
    const profiles = mkdtempSync(join(tmpdir(), 'livekexec-prof-'));
    const fx = new Fixture('fail-exec.mjs', [device], {
      nodeArgs: profiled ? ['--cpu-prof', `--cpu-prof-dir=${profiles}`] : [],
    });
    cleanups.push(() => {
      fx.cleanup();
      removeDevice(device);
      rmSync(profiles, { recursive: true, force: true });
    });
    const failed = await fx.waitFor('exec-failed');
    assert.equal(failed.code, 'EIO');
    assert.equal(failed.name, 'KexecError');
    assert.match(failed.message as string, /execve\(\/nonexistent\/livekexec-successor\): ENOENT/);
    assert.equal(failed.pendingBootBlock, 0, 'the pending boot block was cancelled');
    assert.equal(failed.headerGeneration, 1);
    assert.equal(failed.alive, true);
    assert.equal(failed.allocated, true);
    assert.equal(failed.loaded, true, 'the image stays loaded after a failed exec');
    // SIGPROF, ignored across the execve, has its handler back as it was: flags
    // (a profiler's SA_SIGINFO: without it, on arm64, its handler gets no context) and mask.
    assert.equal(failed.sigprofAfter, failed.sigprofBefore);
    await fx.waitFor('done');
    const boots = fx.all('boot');
    assert.equal(boots.length, 2, fx.report());
    assert.equal(boots[1].kind, 'kexec');
    assert.equal(boots[1].generation, 2);
    assert.equal(boots[1].pid, fx.child.pid);
    assert.equal(boots[1].predecessorBootId, boots[0].bootId);
    fx.finish();
    assert.equal((await fx.exited).code, 0, fx.report());
  });
}
