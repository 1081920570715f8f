import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SETUP } from '../../src/boot/abi.js';
import { decodeKexecMetadata, encodeKexecMetadata } from '../../src/boot/kexec-metadata.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { tryFailed } from '../../src/kexec/boot-counting.js';
import { Machine } from '../../src/machine.js';
import { PAGE_SIZE } from '../../src/memory/device.js';
import { readDeviceHeader, writeDeviceHeader } from '../../src/memory/header.js';

const MiB = 1024 * 1024;

test('kexec metadata: each successor learns the release that kexec’d into it and the kexec count since the cold boot', () => {
  const machine = Machine.create({ size: 8 * MiB, release: 'app@1.0.0' });
  let k = machine.boot();
  assert.equal(k.boot.kexecCount, 0);
  assert.equal(k.boot.previousRelease, undefined);
  for (let n = 1; n <= 3; n++) {
    k.kexec.load();
    k = k.kexec.exec();
    assert.equal(k.boot.kexecCount, n);
    assert.equal(k.boot.previousRelease, 'app@1.0.0');
    assert.equal(k.status().upgrade.kexecCount, n);
    assert.ok(k.log.includes(`kexec from: app@1.0.0 (count ${n})`), k.log.join('\n'));
  }
  // The device at rest says which release booted last and its count.
  assert.deepEqual(
    {
      release: readDeviceHeader(machine.device).record?.release,
      count: readDeviceHeader(machine.device).record?.kexecCount,
    },
    { release: 'app@1.0.0', count: 3 },
  );
  // A cold boot starts the count again.
  assert.equal(machine.boot().boot.kexecCount, 0);
});

test('kexec metadata decoding refuses each bad input with a typed error', () => {
  const good = encodeKexecMetadata({
    kexecCount: 4,
    previousRelease: 'svc@2',
    counting: {
      tries: 2,
      deadlineMs: 100,
      requireGood: true,
      successor: { cwd: '/srv', file: '/usr/bin/node', argv: ['node', 'new.js'] },
      fallback: { cwd: '/srv', file: '/usr/bin/node', argv: ['node', 'old.js'] },
    },
  });
  assert.equal(decodeKexecMetadata(good).counting?.fallback.argv[1], 'old.js');
  const setU32 = (at: number, x: number) => (b: Uint8Array) => {
    new DataView(b.buffer).setUint32(at, x, true);
    return b;
  };
  const cases: [string, (b: Uint8Array) => Uint8Array][] = [
    ['short', (b) => b.subarray(0, 10)],
    ['version', setU32(0, 9)],
    ['release not terminated', (b) => b.fill(0x41, 8, 8 + 65)],
    ['command outside', setU32(0x5c, 1e6)],
    ['zero tries', setU32(0x50, 0)],
    ['command not terminated', (b) => b.subarray(0, b.length - 1)],
  ];
  for (const [what, corrupt] of cases) {
    assert.throws(
      () => decodeKexecMetadata(corrupt(good.slice())),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'EFAULT', what);
        return true;
      },
    );
  }
});

test('a successor on trial leaves the handover pending and untouched until it is marked good', () => {
  const machine = Machine.create({ size: 8 * MiB, release: 'v1' });
  const k1 = machine.boot();
  const folio = k1.allocPages(0)!;
  k1.folioBytes(folio).fill(0xab);
  k1.kho.preserveFolio(folio);
  k1.kexec.load({ trial: { tries: 3, deadlineMs: 1000 } });
  const k2 = k1.kexec.exec();
  const pending = readDeviceHeader(machine.device);
  assert.notEqual(pending.bootBlock, 0, 'the boot block stays pending');
  assert.equal(pending.generation, 2, 'the header names the successor on trial');
  assert.equal(
    pending.record?.trial?.baseGeneration,
    1,
    'and the trial, the generation that wrote the block',
  );
  assert.equal(pending.record?.trial?.state, 'on-trial');
  assert.equal(pending.record?.trial?.tries, 1);
  assert.deepEqual(k2.trial && { tries: k2.trial.tries, max: k2.trial.maxTries }, {
    tries: 1,
    max: 3,
  });
  assert.equal(k2.status().upgrade.trial?.maxTries, 3);
  // Freed by the trial successor, the preserved page is held, not handed out again.
  const restored = k2.kho.restoreFolio(folio.pfn * PAGE_SIZE);
  k2.freePages(restored);
  const seen = new Set<number>();
  for (let f = k2.allocPages(0); f !== null; f = k2.allocPages(0)) seen.add(f.pfn);
  assert.equal(
    seen.has(folio.pfn),
    false,
    'a page of the handover was handed out during the trial',
  );
  // That page, and the KHO tree's pages the boot gave back, are held.
  assert.ok(k2.pages.heldPages >= 1);
  // A retry boots the very same block and finds the page as it was.
  const retry = Kernel.boot({
    device: machine.device,
    bootBlock: pending.bootBlock,
    platform: machine,
  });
  assert.equal(retry.boot.kind, 'kexec', retry.log.join('\n'));
  assert.equal(retry.folioBytes(retry.kho.restoreFolio(folio.pfn * PAGE_SIZE))[0], 0xab);
  retry.markGood();
  const after = readDeviceHeader(machine.device);
  assert.equal(after.bootBlock, 0, 'marked good: the block is consumed');
  assert.equal(after.generation, 2);
  assert.equal(after.record?.trial, null);
  assert.equal(after.record?.last?.outcome, 'good');
  assert.equal(retry.trial, null);
  assert.equal(retry.status().upgrade.last?.outcome, 'good');
});

test('a successor on trial that uses all memory, saves into PKRAM and dies leaves the retry every KHO folio, subtree and PKRAM node (the fault suite found KHO tree pages and the PKRAM table reused)', () => {
  const machine = Machine.create({ size: 16 * MiB, release: 'v1' });
  const k1 = machine.boot('kho=on');
  const folios = Array.from({ length: 64 }, (_, i) => {
    const f = k1.allocPages(i % 3)!;
    k1.folioBytes(f).fill(i + 1);
    k1.kho.preserveFolio(f);
    return f;
  });
  k1.kho.addSubtree('app', new Uint8Array(100).fill(7), { compatible: 'app-v1' });
  const node = k1.pkram.prepareSave('state');
  const obj = node.prepareSaveObj();
  const saved = k1.allocPages(0)!;
  k1.folioBytes(saved).fill(0x5a);
  obj.saveFolio(saved, 3);
  obj.write(new Uint8Array(5000).fill(9));
  obj.finishSaveObj();
  node.finishSave();
  k1.kexec.load({ trial: { tries: 3, deadlineMs: 1000 } });
  const k2 = k1.kexec.exec();
  const block = readDeviceHeader(machine.device).bootBlock;
  assert.ok(k2.trial);
  // The try takes what it can and writes over all of it, saves a node of its own, then dies.
  const mine = k2.pkram.prepareSave('mine');
  mine.prepareSaveObj().finishSaveObj();
  mine.finishSave();
  for (let f = k2.allocPages(0); f !== null; f = k2.allocPages(0)) k2.folioBytes(f).fill(0xee);
  const retry = Kernel.boot({ device: machine.device, bootBlock: block, platform: machine });
  assert.equal(retry.boot.kind, 'kexec', retry.log.join('\n'));
  folios.forEach((f, i) => {
    const back = retry.kho.restoreFolio(f.pfn * PAGE_SIZE);
    assert.equal(back.order, f.order);
    assert.ok(
      retry.folioBytes(back).every((b) => b === i + 1),
      `folio ${i} kept its bytes`,
    );
  });
  assert.deepEqual([...retry.kho.retrieveBlob('app').bytes], [...new Uint8Array(100).fill(7)]);
  const loaded = retry.pkram.prepareLoad('state');
  const lobj = loaded.prepareLoadObj()!;
  const got = lobj.loadFolio();
  assert.deepEqual(got && { pfn: got.folio.pfn, index: got.index }, { pfn: saved.pfn, index: 3 });
  assert.ok(retry.folioBytes(got!.folio).every((b) => b === 0x5a));
  assert.equal(lobj.read(new Uint8Array(6000)), 5000);
  retry.markGood();
  assert.equal(readDeviceHeader(machine.device).bootBlock, 0);
});

test('failed tries are counted in the device; once spent, the next boot of the block is the fallback and says why', () => {
  const machine = Machine.create({ size: 8 * MiB, release: 'v1' });
  const k1 = machine.boot();
  k1.kexec.load({ trial: { tries: 2 } });
  const k2 = k1.kexec.exec();
  const block = readDeviceHeader(machine.device).bootBlock;
  const fail = (reason: string) => {
    const h = readDeviceHeader(machine.device);
    const r = tryFailed(h.record!, block, reason, process.pid)!;
    writeDeviceHeader(machine.device, { ...h, record: r.record });
    return r.next;
  };
  assert.ok(k2.trial);
  assert.equal(fail('exited with status 1'), 'retry');
  assert.equal(readDeviceHeader(machine.device).record?.trial?.tries, 2);
  assert.equal(fail('SyntaxError: Unexpected token'), 'fallback');
  // The fallback failing as well is no try: nothing more is counted or started.
  assert.equal(
    tryFailed(readDeviceHeader(machine.device).record!, block, 'fallback crashed', 1),
    null,
  );
  const fb = Kernel.boot({ device: machine.device, bootBlock: block, platform: machine });
  assert.equal(fb.trial, null, 'the fallback is not on trial');
  assert.equal(fb.boot.fellBackFrom?.outcome, 'fell-back');
  assert.equal(fb.boot.fellBackFrom?.tries, 2);
  assert.equal(fb.boot.fellBackFrom?.reason, 'SyntaxError: Unexpected token');
  const h = readDeviceHeader(machine.device);
  assert.equal(h.bootBlock, 0);
  assert.equal(h.record?.last?.outcome, 'fell-back');
  assert.equal(fb.status().upgrade.last?.reason, 'SyntaxError: Unexpected token');
  // The setup_data entry is there for tools.
  assert.ok(fb.boot.setupData.some((d) => d.type === SETUP.KEXEC_METADATA));
});
