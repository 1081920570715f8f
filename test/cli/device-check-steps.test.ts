/**
 * `livekexec device check`'s steps (cli/device-check.ts), each alone on a
 * device in memory: the pending boot block, the KHO handover, the pools.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BB_CRC32C } from '../../src/boot/abi.js';
import { checkBootBlock, checkKhoHandover, checkPools } from '../../src/cli/device-check.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { parseRootFdt } from '../../src/kho/root-fdt.js';
import { pendingKhoSetupData } from '../../src/kho/status.js';
import { Machine } from '../../src/machine.js';
import { readDeviceHeader, writeDeviceHeader } from '../../src/memory/header.js';
import { E820 } from '../../src/memory/memmap-types.js';

const MiB = 1024 * 1024;

/** A device whose generation (booted with `cmdline`) preserved a folio and committed a kexec no successor booted. */
function pendingDevice(cmdline = '') {
  const m = Machine.create({ size: 32 * MiB });
  const k = Kernel.boot({
    device: m.device,
    cmdline,
    platform: { execute: () => null as unknown as Kernel },
  });
  k.kho.preserveFolio(k.allocPages(2)!);
  k.kexec.load();
  k.kexec.exec();
  return m.device;
}

test('checkBootBlock: none pending is fine, a sound one is ok, a damaged one is an error', () => {
  const idle = Machine.create({ size: 16 * MiB });
  Kernel.boot({ device: idle.device, platform: { execute: () => null as unknown as Kernel } });
  assert.deepEqual(checkBootBlock(idle.device, readDeviceHeader(idle.device)), {
    level: 'ok',
    part: 'boot block',
    detail: 'none pending',
  });
  const device = pendingDevice();
  const header = readDeviceHeader(device);
  const ok = checkBootBlock(device, header);
  assert.equal(ok.level, 'ok');
  assert.match(ok.detail, /^pending at 0x[0-9a-f]+ for generation 2$/);
  device.bytes(header.bootBlock + BB_CRC32C, 1)[0]! ^= 1;
  const bad = checkBootBlock(device, header);
  assert.equal(bad.level, 'error');
  assert.match(bad.detail, /^a successor would refuse it: EFAULT: boot block: checksum/);
});

test('checkKhoHandover: a tree that fails its checksum is an error', () => {
  const device = pendingDevice();
  const [ok] = checkKhoHandover(device);
  assert.equal(ok?.level, 'ok');
  assert.match(ok?.detail ?? '', /bytes preserved, \d+ subtrees/);
  // One changed byte in a page of the preserved-memory tree.
  const setup = pendingKhoSetupData(device);
  assert.ok(setup);
  const root = parseRootFdt(setup.rootFdt, device.size);
  device.bytes(root.memoryMapPages[0]!, 1)[0]! ^= 1;
  const [bad] = checkKhoHandover(device);
  assert.equal(bad?.level, 'error');
  assert.match(bad?.detail ?? '', /does not match its checksum/);
});

test('checkPools: a kept pool is ok, a kernel-reserved range that holds no pool is a warning', () => {
  const device = pendingDevice('pmpool=4M,4M');
  const header = readDeviceHeader(device);
  const [pool] = checkPools(device, header);
  assert.equal(pool?.level, 'ok');
  assert.match(pool?.part ?? '', /^pmpool at 0x/);
  const at = 24 * MiB;
  const withJunk = {
    ...header,
    memmap: [
      ...header.memmap.filter((r) => r.addr + r.size <= at),
      { addr: at, size: 1 * MiB, type: E820.RESERVED_KERN },
    ],
  };
  writeDeviceHeader(device, withJunk);
  const junk = checkPools(device, withJunk).find((f) => f.part === `range at 0x${at.toString(16)}`);
  assert.equal(junk?.level, 'warning');
  assert.match(junk?.detail ?? '', /not a readable pool/);
});
