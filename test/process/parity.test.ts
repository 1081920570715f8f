/**
 * Issue 18 in a real process: a raw KHO subtree, a transient folio in KHO
 * scratch and an FLB of two memfds cross one in-place execve (same PID).
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Fixture, removeDevice, tempDevice } from './_fixture.js';

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups) c();
});

test('a raw subtree, a transient scratch folio and an FLB cross an in-place exec', {
  timeout: 60_000,
}, async () => {
  const device = tempDevice('parity');
  const fx = new Fixture('parity.mjs', [device]);
  cleanups.push(() => {
    fx.cleanup();
    removeDevice(device);
  });
  const loaded = await fx.waitFor('loaded');
  const boot = await fx.waitFor('boot');
  fx.finish();
  assert.equal(boot.pid, fx.child.pid, fx.report());
  assert.equal(boot.kind, 'kexec');
  // Raw subtree: the bytes and the version the successor asked for.
  assert.equal(boot.blob, `release 1.2.3 pid ${fx.child.pid}`);
  assert.equal(boot.compatible, 'app,meta-v1');
  // Transient folio: in scratch, and the boot block's segment kept clear of it.
  assert.deepEqual(loaded.transient, {
    pfn: (loaded.transient as { pfn: number }).pfn,
    inScratch: true,
  });
  assert.equal(loaded.overlap, false);
  const before = loaded.scratchPages as { transientPages: number; freePages: number };
  assert.equal(before.freePages, before.transientPages - 4);
  const afterExec = boot.scratchPages as { transientPages: number; freePages: number };
  assert.equal(afterExec.freePages, afterExec.transientPages, 'all of scratch free again');
  // FLB: preserved once in generation 1, retrieved once and finished with the last memfd.
  assert.deepEqual(loaded.calls, ['preserve']);
  assert.deepEqual(boot.keys, ['k1', 'k2']);
  // (The successor's call list starts empty: a new program image.)
  assert.deepEqual(boot.afterA, ['retrieve']);
  assert.deepEqual(boot.calls, ['retrieve', 'finish k1,k2']);
});

test('live update stays on with kho=off: a memfd crosses an in-place exec by token', {
  timeout: 60_000,
}, async () => {
  const device = tempDevice('luo-kho-off');
  const fx = new Fixture('luo-kho-off.mjs', [device]);
  cleanups.push(() => {
    fx.cleanup();
    removeDevice(device);
  });
  const boot = await fx.waitFor('boot');
  fx.finish();
  assert.equal(boot.pid, fx.child.pid, fx.report());
  assert.equal(boot.kind, 'kexec');
  assert.equal(boot.khoEnabled, false);
  assert.equal(boot.text, `from ${boot.predecessorBootId}`);
});

test('a file handler registered through the kernel serves both sides of an in-place exec, with its FLB and canFinish', {
  timeout: 60_000,
}, async () => {
  const device = tempDevice('luo-handler');
  const fx = new Fixture('luo-handler.mjs', [device]);
  cleanups.push(() => {
    fx.cleanup();
    removeDevice(device);
  });
  const preserved = await fx.waitFor('preserved');
  const boot = await fx.waitFor('boot');
  fx.finish();
  assert.equal(boot.pid, fx.child.pid, fx.report());
  assert.equal(boot.kind, 'kexec');
  assert.equal(preserved.kind, 'test,luo-app-memfd-v1', 'preserved through the registered handler');
  // Before the successor registers its handler: status names the file, the descriptor is close-on-exec.
  assert.equal(boot.summaryKind, 'test,luo-app-memfd-v1');
  assert.equal(boot.cloexecAtBoot, true);
  assert.equal(boot.early, 'EFAULT', 'the orchestrator waits for the handler');
  assert.equal(boot.sameFd, true);
  assert.equal(boot.text, `from ${fx.child.pid}`);
  assert.deepEqual(boot.keys, ['k1']);
  assert.equal(boot.held, 'EBUSY', 'canFinish held the session');
  assert.deepEqual(boot.beforeReady, ['retrieve']);
  assert.deepEqual(boot.calls, ['retrieve', 'finish k1']);
});
