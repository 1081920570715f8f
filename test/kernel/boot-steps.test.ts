/**
 * The steps of Kernel.boot that decide something (kernel/boot-steps.ts),
 * each alone: which handover a boot takes or why it boots cold, and how
 * boot counting goes on (a try, a fallback).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeBootBlock } from '../../src/boot/bootblock.js';
import type { BootCounting, KexecMetadata } from '../../src/boot/kexec-metadata.js';
import {
  bootMemory,
  decideTrial,
  nextGeneration,
  takeHandover,
  triedHeader,
} from '../../src/kernel/boot-steps.js';
import { Kernel } from '../../src/kernel/kernel.js';
import type { LoadedImage } from '../../src/kexec/kexec.js';
import { Machine } from '../../src/machine.js';
import { EMPTY_BOOT_RECORD, type TrialRecord } from '../../src/memory/boot-record.js';
import { readDeviceHeader } from '../../src/memory/header.js';

const MiB = 1024 * 1024;

/** A device with a handover committed and never booted: the device, its header, the block's address. */
function pending(cmdline = 'kho=on') {
  const m = Machine.create({ size: 16 * MiB });
  let image: LoadedImage | null = null;
  const k = Kernel.boot({
    device: m.device,
    platform: {
      execute(img) {
        image = img;
        return null as unknown as Kernel;
      },
    },
  });
  k.kexec.load({ cmdline });
  k.kexec.exec();
  assert.ok(image);
  const header = readDeviceHeader(m.device);
  return { device: m.device, header, at: header.bootBlock };
}

test('takeHandover: the pending block with its command line, or a cold boot that says why', () => {
  const { device, header, at } = pending('kho=on -- --port=1');
  const taken = takeHandover({ device, bootBlock: at, cmdline: 'cold' }, header);
  assert.ok(taken.block);
  assert.equal(taken.cmdlineText, 'kho=on -- --port=1');
  assert.equal(taken.coldReason, undefined);

  const wrong = takeHandover({ device, bootBlock: at + 8, cmdline: 'kho=off' }, header);
  assert.equal(wrong.block, null);
  assert.equal(wrong.cmdlineText, 'kho=off', 'the request command line');
  assert.match(wrong.coldReason ?? '', /not the pending one/);

  const cold = takeHandover({ device, cmdline: 'kho=off' }, header);
  assert.equal(cold.block, null);
  assert.equal(cold.coldReason, undefined, 'a cold boot asked for is not a refusal');
});

test('takeHandover: a pending block whose command line does not parse is refused like a corrupt one', () => {
  const { device, header, at } = pending();
  const bad = encodeBootBlock({
    generation: header.generation + 1,
    bootId: new Uint8Array(16).fill(7),
    predecessorBootId: Uint8Array.from(Buffer.from(header.bootId, 'hex')),
    cmdline: 'memmap=junk',
    memoryMap: header.memmap,
  });
  device.bytes(at, bad.length).set(bad);
  const taken = takeHandover({ device, bootBlock: at }, header);
  assert.equal(taken.block, null);
  assert.match(taken.coldReason ?? '', /^boot block command line: /);
  assert.equal(taken.cmdlineText, '');
});

const here = { cwd: '/', file: 'node', argv: ['node', 'app.js'] };
const counting: BootCounting = {
  tries: 3,
  deadlineMs: 1000,
  requireGood: false,
  successor: here,
  fallback: here,
};
const meta = (c: BootCounting | null): KexecMetadata => ({
  kexecCount: 1,
  previousRelease: 'v1',
  counting: c,
});
const base = { generation: 4, bootId: '00'.repeat(16) };
const trial = (state: TrialRecord['state']): TrialRecord => ({
  state,
  bootBlock: 0x5000,
  baseGeneration: 4,
  baseBootId: base.bootId,
  tries: 2,
  maxTries: 3,
  pid: 1,
  deadlineMs: 1000,
  started: 10,
  release: 'v2',
  reason: 'exit 1',
});

test('decideTrial: boot counting starts a try, goes on with the recorded one, or falls back', () => {
  const ask = { device: null as never, bootBlock: 0x5000 };
  const first = decideTrial(ask, EMPTY_BOOT_RECORD, true, meta(counting), base, 20);
  assert.equal(first.trial?.record.tries, 1, 'no trial recorded: this is try 1');
  assert.equal(first.trial?.record.bootBlock, 0x5000);
  assert.equal(first.fellBackFrom, undefined);

  const recorded = { ...EMPTY_BOOT_RECORD, trial: trial('on-trial') };
  assert.equal(decideTrial(ask, recorded, true, meta(counting), base, 20).trial?.record.tries, 2);

  const spent = { ...EMPTY_BOOT_RECORD, trial: trial('falling-back') };
  const back = decideTrial(ask, spent, true, meta(counting), base, 20);
  assert.equal(back.trial, null, 'the fallback is not on trial');
  assert.equal(back.fellBackFrom?.outcome, 'fell-back');
  assert.equal(back.fellBackFrom?.successor, 'v2');

  assert.equal(decideTrial(ask, EMPTY_BOOT_RECORD, true, meta(null), base, 20).trial, null);
  assert.equal(decideTrial(ask, recorded, false, meta(counting), base, 20).trial, null, 'cold');
});

test('nextGeneration and triedHeader: a try keeps the block pending and the map as it was', () => {
  const { device, header, at } = pending();
  const ask = { device, bootBlock: at };
  const handover = takeHandover(ask, header);
  const mem = bootMemory(ask, header, handover, null);
  const next = nextGeneration(ask, header, handover, mem, base);
  assert.equal(next.header.bootBlock, 0, 'consumed');
  assert.equal(next.boot.kind, 'kexec');
  const tried = triedHeader(header, next, { record: trial('on-trial'), counting });
  assert.equal(tried.bootBlock, at, 'still pending while on trial');
  assert.deepEqual(tried.memmap, header.memmap);
  assert.equal(tried.record?.trial?.pid, process.pid);
});
