/**
 * File-lifecycle-bound state and can_finish, with upstream's semantics:
 * created with the first linked file, released with the last (unpreserve
 * before the exec, finish after it), counted across sessions; a handler may
 * refuse a session's finish while it still needs its files.
 */
import assert from 'node:assert/strict';
import { closeSync } from 'node:fs';
import { describe, test } from 'node:test';
import { Fdt, FdtWriter } from '../../src/fdt/index.js';
import {
  buildHandover,
  createMemfd,
  defaultHandlers,
  LiveUpdate,
  LUO_COMPATIBLE,
  LUO_COMPATIBLE_V2,
  LUO_FLB_MAX,
  memfdHandler,
  parseLiveUpdateHandover,
} from '../../src/luo/index.js';
import { Machine } from '../../src/machine.js';
import { gatedMemfdHandler, recordingFlb } from './_flb.js';
import { isCloexec, luoError } from './_support.js';

const MiB = 1024 * 1024;

describe('file-lifecycle-bound state, outgoing', () => {
  test('preserved with the first linked file, unpreserved with the last, across sessions', () => {
    const calls: string[] = [];
    const flb = recordingFlb(calls);
    const fds = [createMemfd('a', 0), createMemfd('b', 0), createMemfd('c', 0)];
    const lu = new LiveUpdate();
    try {
      lu.registerFlb(memfdHandler, flb);
      assert.equal(lu.flbGetOutgoing(flb), undefined);
      const s1 = lu.createSession('one');
      const s2 = lu.createSession('two');
      s1.preserveFd(fds[0]!, 1);
      lu.flbGetOutgoing(flb)!.names.push('a');
      s2.preserveFd(fds[1]!, 1);
      s2.preserveFd(fds[2]!, 2);
      assert.deepEqual(calls, ['preserve'], 'one object for every file');
      s1.unpreserveFd(1);
      s2.unpreserveFd(1);
      assert.deepEqual(calls, ['preserve']);
      s2.close();
      assert.deepEqual(calls, ['preserve', 'unpreserve a']);
      assert.equal(lu.flbGetOutgoing(flb), undefined);
      // Unlinked, its files no longer count.
      lu.unregisterFlb(memfdHandler, flb);
      lu.createSession('other').preserveFd(fds[0]!, 1);
      assert.deepEqual(calls, ['preserve', 'unpreserve a']);
    } finally {
      lu.close();
      for (const fd of fds) closeSync(fd);
    }
  });

  test('an FLB whose preserve throws refuses the file, which stays the caller’s', () => {
    const flb = {
      ...recordingFlb([]),
      preserve: () => {
        throw new Error('no keys');
      },
    };
    const fd = createMemfd('a', 0);
    const lu = new LiveUpdate();
    try {
      lu.registerFlb(memfdHandler, flb);
      const s = lu.createSession('s');
      assert.throws(() => s.preserveFd(fd, 1), /no keys/);
      assert.deepEqual(s.files(), []);
      lu.unregisterFlb(memfdHandler, flb);
      s.preserveFd(fd, 1); // not held by the failed attempt
    } finally {
      lu.close();
      closeSync(fd);
    }
  });

  test('registration is checked: handler, ops, duplicates, held files, the limit', () => {
    const lu = new LiveUpdate();
    const fd = createMemfd('a', 0);
    try {
      const flb = recordingFlb([]);
      assert.throws(
        () =>
          lu.registerFlb(
            gatedMemfdHandler(() => true),
            flb,
          ),
        luoError('EINVAL'),
      );
      assert.throws(
        () => lu.registerFlb(memfdHandler, { ...flb, finish: undefined } as never),
        luoError('EINVAL'),
      );
      assert.throws(
        () => lu.registerFlb(memfdHandler, { ...flb, compatible: 'a b' }),
        luoError('EINVAL'),
      );
      lu.registerFlb(memfdHandler, flb);
      assert.throws(() => lu.registerFlb(memfdHandler, flb), luoError('EEXIST'));
      assert.throws(() => lu.registerFlb(memfdHandler, recordingFlb([])), luoError('EEXIST'));
      // One FLB may serve several handlers.
      const file = defaultHandlers().find((h) => h.compatible.endsWith('file-v1'))!;
      lu.registerFlb(lu.handlers.find((h) => h.compatible === file.compatible)!, flb);
      lu.createSession('s').preserveFd(fd, 1);
      assert.throws(() => lu.unregisterFlb(memfdHandler, flb), luoError('EBUSY'));
      assert.throws(() => lu.registerFlb(memfdHandler, recordingFlb([], 'x')), luoError('EBUSY'));
      assert.throws(() => lu.flbGetIncoming(flb), luoError('ENODATA'));
      const tcp = lu.handlers[0]!;
      for (let i = 1; i < LUO_FLB_MAX; i++) lu.registerFlb(tcp, recordingFlb([], `t${i}`));
      assert.throws(
        () => lu.registerFlb(tcp, recordingFlb([], 'one-too-many')),
        luoError('ENOSPC'),
      );
    } finally {
      lu.close();
      closeSync(fd);
    }
  });
});

describe('file-lifecycle-bound state, across the exec', () => {
  test('the saved state comes back once, and finishes with the last file of any session', () => {
    const before: string[] = [];
    const after: string[] = [];
    const fds = [createMemfd('a', 0), createMemfd('b', 0)];
    const lu = new LiveUpdate();
    const flb0 = recordingFlb(before);
    lu.registerFlb(memfdHandler, flb0);
    lu.createSession('one').preserveFd(fds[0]!, 1);
    lu.createSession('two').preserveFd(fds[1]!, 7);
    // Changed after the first preserve: the handover has it as of the exec.
    lu.flbGetOutgoing(flb0)!.names.push('k0');
    lu.freeze();
    const blob = lu.serialize();
    lu.handOver();
    assert.deepEqual(before, ['preserve', 'save']);
    assert.equal(Fdt.from(blob).getString(0, 'compatible'), LUO_COMPATIBLE_V2);

    const next = LiveUpdate.fromHandover(blob);
    try {
      const flb = recordingFlb(after);
      next.registerFlb(memfdHandler, flb);
      assert.deepEqual(after, [], 'retrieved on first use only');
      const obj = next.flbGetIncoming(flb);
      assert.deepEqual(obj.names, ['k0']);
      assert.equal(next.flbGetIncoming(flb), obj, 'the same object after');
      obj.names.push('k1');
      next.retrieveSession('one').retrieveFd(1);
      next.retrieveSession('one').finish();
      assert.deepEqual(after, ['retrieve'], 'one file of two finished');
      next.retrieveSession('two').finish(); // not retrieved: closed, and still counted
      assert.deepEqual(after, ['retrieve', 'finish k0,k1']);
      assert.throws(() => next.flbGetIncoming(flb), luoError('ENODATA'));
      assert.throws(() => next.flbGetIncoming(recordingFlb([], 'other')), luoError('ENOENT'));
    } finally {
      next.close();
      closeSync(fds[0]!);
    }
  });

  test('a finish that would end an FLB whose retrieve fails is refused, and nothing is closed', () => {
    const fd = createMemfd('a', 0);
    const lu = new LiveUpdate();
    lu.registerFlb(memfdHandler, recordingFlb([]));
    lu.createSession('s').preserveFd(fd, 1);
    lu.freeze();
    const blob = lu.serialize();
    lu.handOver();
    const next = LiveUpdate.fromHandover(blob);
    try {
      let refuse = true;
      const calls: string[] = [];
      next.registerFlb(
        memfdHandler,
        recordingFlb(calls, 'test,keys-v1', () => refuse),
      );
      const s = next.retrieveSession('s');
      assert.throws(() => s.finish(), /retrieve refused/);
      assert.equal(s.done, false);
      assert.ok(isCloexec(fd), 'still open, still held');
      refuse = false;
      s.finish();
      assert.deepEqual(calls, ['retrieve', 'retrieve', 'finish ']);
    } finally {
      next.close();
    }
  });

  test('without FLBs the handover is v1, as before; FLB nodes are checked like the rest', () => {
    const fd = createMemfd('a', 0);
    const lu = new LiveUpdate();
    try {
      lu.createSession('s').preserveFd(fd, 1);
      lu.freeze();
      assert.equal(Fdt.from(lu.serialize()).getString(0, 'compatible'), LUO_COMPATIBLE);
      lu.unfreeze();
    } finally {
      lu.close();
      closeSync(fd);
    }
    const flbNode = (compatible: string, count: bigint, name = 'flb@0') => {
      const w = new FdtWriter();
      w.finishReservations();
      w.beginNode('');
      w.propertyString('compatible', compatible);
      w.beginNode(name);
      w.propertyString('compatible', 'test,keys-v1');
      w.property('data', new Uint8Array([1]));
      w.propertyU64('count', count);
      w.endNode();
      w.endNode();
      return w.finish();
    };
    const parse = (b: Uint8Array) => parseLiveUpdateHandover(b, defaultHandlers());
    assert.throws(() => parse(flbNode(LUO_COMPATIBLE, 0n)), luoError('EFAULT'), 'v1 has no FLBs');
    assert.throws(() => parse(flbNode(LUO_COMPATIBLE_V2, 1n)), luoError('EFAULT'), 'no file');
    assert.throws(() => parse(flbNode(LUO_COMPATIBLE_V2, 0n)), luoError('EFAULT'));
    const ok = buildHandover([], []);
    assert.deepEqual(parse(ok), { sessions: [], flbs: [] });
  });

  test('emulated kexec: kernel.liveupdate hands an FLB of memfds to the successor', () => {
    const m = Machine.create({ size: 16 * MiB });
    const k1 = m.boot();
    const calls: string[] = [];
    const lu1 = k1.liveupdate;
    lu1.registerFlb(memfdHandler, recordingFlb(calls));
    const s = lu1.createSession('state');
    s.preserveMemfd('a', 1, 16);
    s.preserveMemfd('b', 2, 16);
    k1.kexec.load();
    const k2 = k1.kexec.exec();
    assert.deepEqual(calls, ['preserve', 'save']);
    const lu2 = k2.liveupdate;
    const flb = recordingFlb(calls);
    lu2.registerFlb(memfdHandler, flb);
    assert.deepEqual(lu2.flbGetIncoming(flb).names, []);
    const incoming = lu2.retrieveSession('state');
    closeSync(incoming.retrieveFd(1));
    closeSync(incoming.retrieveFd(2));
    incoming.finish();
    assert.deepEqual(calls, ['preserve', 'save', 'retrieve', 'finish ']);
    lu2.close();
  });
});

describe('can_finish', () => {
  test('a handler that still needs its files refuses finish with EBUSY; nothing changes', () => {
    let ready = false;
    const asked: boolean[] = [];
    const handler = gatedMemfdHandler(() => ready, asked);
    const handlers = [handler, ...defaultHandlers()];
    const fds = [createMemfd('gated', 0), createMemfd('gated', 0)];
    const lu = new LiveUpdate({ handlers });
    const s0 = lu.createSession('s');
    s0.preserveFd(fds[0]!, 1);
    s0.preserveFd(fds[1]!, 2);
    lu.freeze();
    const blob = lu.serialize();
    lu.handOver();
    const next = LiveUpdate.fromHandover(blob, { handlers });
    try {
      const s = next.retrieveSession('s');
      s.retrieveFd(1);
      assert.throws(() => s.finish(), luoError('EBUSY'));
      assert.deepEqual(asked, [true], 'asked in order, stopped at the first refusal');
      assert.equal(s.done, false);
      assert.ok(isCloexec(fds[1]!), 'the file not retrieved is still held, open');
      assert.equal(s.retrieveFd(2), fds[1]);
      ready = true;
      s.finish();
      assert.deepEqual(asked, [true, true, true]);
      assert.throws(() => next.retrieveSession('s'), luoError('ENOENT'));
    } finally {
      next.close();
      for (const fd of fds) closeSync(fd);
    }
  });
});

describe('handlers of the program through kernel.liveupdate', () => {
  test('a registered handler serves outgoing and incoming files: its FLB and canFinish work across an emulated kexec', () => {
    const m = Machine.create({ size: 16 * MiB, status: true });
    const k1 = m.boot();
    const calls: string[] = [];
    const gated1 = gatedMemfdHandler(() => true);
    k1.registerLiveUpdateHandler(gated1);
    const lu1 = k1.liveupdate;
    lu1.registerFlb(gated1, recordingFlb(calls));
    const fd = createMemfd('gated', 0);
    try {
      lu1.createSession('s').preserveFd(fd, 1);
      assert.equal(lu1.sessions()[0]?.files()[0]?.compatible, 'test,luo-gated-memfd-v1');
      k1.kexec.load();
      const k2 = k1.kexec.exec();
      assert.deepEqual(calls, ['preserve', 'save']);
      assert.ok(isCloexec(fd), 'close-on-exec from boot, before any handler is registered');
      // Status shows the file before the handler is known.
      assert.deepEqual(
        k2.publishedStatus().luo?.sessions.map((s) => s.files.map((f) => f.kind)),
        [['test,luo-gated-memfd-v1']],
      );
      // Opened before the handler is registered: refused, and nothing is lost.
      assert.throws(
        () => k2.liveupdate,
        (e) => luoError('EFAULT')(e) && /no handler for "test,luo-gated-memfd-v1"/.test(String(e)),
      );
      let ready = false;
      const gated2 = gatedMemfdHandler(() => ready);
      k2.registerLiveUpdateHandler(gated2);
      const lu2 = k2.liveupdate;
      const flb = recordingFlb(calls);
      lu2.registerFlb(gated2, flb);
      assert.deepEqual(lu2.flbGetIncoming(flb).names, []);
      const s = lu2.retrieveSession('s');
      assert.equal(s.retrieveFd(1), fd);
      assert.throws(() => s.finish(), luoError('EBUSY'), 'canFinish holds the session');
      assert.deepEqual(calls, ['preserve', 'save', 'retrieve']);
      ready = true;
      s.finish();
      assert.deepEqual(calls, ['preserve', 'save', 'retrieve', 'finish ']);
      assert.throws(
        () => k2.registerLiveUpdateHandler(gatedMemfdHandler(() => true)),
        luoError('EBUSY'),
      );
      lu2.close();
    } finally {
      closeSync(fd);
    }
  });

  test('registration refuses a taken compatible and a malformed handler', () => {
    const k = Machine.create({ size: 16 * MiB }).boot();
    assert.throws(() => k.registerLiveUpdateHandler(memfdHandler), luoError('EEXIST'));
    assert.throws(
      () => k.registerLiveUpdateHandler({ ...memfdHandler, compatible: 'bad compatible' }),
      luoError('EINVAL'),
    );
    assert.throws(
      () =>
        k.registerLiveUpdateHandler({
          ...memfdHandler,
          compatible: 'x,y',
          retrieve: undefined,
        } as never),
      luoError('EINVAL'),
    );
    const h = gatedMemfdHandler(() => true);
    k.registerLiveUpdateHandler(h);
    assert.throws(() => k.registerLiveUpdateHandler({ ...h }), luoError('EEXIST'));
    assert.equal(k.liveupdate.handlers[0], h, 'asked before the default handlers');
    k.liveupdate.close();
  });
});
