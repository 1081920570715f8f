import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Kernel, type KernelPlatform } from '../../src/kernel/kernel.js';
import { MappedDevice } from '../../src/memory/mapped.js';
import { HDR_CRC } from '../../src/pmpool/abi.js';
import { runCli } from '../_helpers/cli.js';

const DIR = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'livekexec-pmpool-'));
after(() => rmSync(DIR, { recursive: true, force: true }));

const MiB = 1024 * 1024;
const CMDLINE = 'pmpool=2M,2M pmpool=io:4M,1M';

/** A device whose pools went through one kexec, so the device map marks them; left open. */
function preparedDevice(name: string): { path: string; device: MappedDevice } {
  const path = join(DIR, name);
  assert.equal(runCli(['device', 'create', path, '--size', '16M']).status, 0);
  const device = MappedDevice.open(path);
  const platform: KernelPlatform = {
    execute: (image) =>
      Kernel.boot({ device, cmdline: image.cmdline, bootBlock: image.segment.base, platform }),
  };
  const k1 = Kernel.boot({ device, cmdline: CMDLINE, platform });
  assert.ok(k1.pmpool?.alloc(10));
  assert.ok(k1.pmpools.get('io')?.alloc(3, 2));
  k1.kexec.load({ cmdline: CMDLINE });
  const k2 = k1.kexec.exec();
  assert.equal(k2.pmpool?.origin, 'v2');
  return { path, device };
}

test('pmpool status reads the pools in place, while the owner holds the device', () => {
  const { path, device } = preparedDevice('a');
  try {
    const before = readFileSync(path);
    const r = runCli(['pmpool', 'status', '--device', path]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^device: +${path}$`, 'm'));
    assert.match(r.stdout, /^generation: +2$/m);
    assert.match(
      r.stdout,
      /^\[mem 0x0000000000200000-0x00000000003fffff\] 512 pages, 12 used \(2 metadata\), 500 free, largest free run 500$/m,
    );
    assert.match(
      r.stdout,
      /^\[mem 0x0000000000400000-0x00000000004fffff\] 256 pages, 5 used \(2 metadata\), 251 free, largest free run 251$/m,
    );
    assert.ok(readFileSync(path).equals(before), 'status writes nothing');
  } finally {
    device.close();
  }
});

test('pmpool status --json', () => {
  const { path, device } = preparedDevice('b');
  device.close();
  const r = runCli(['pmpool', 'status', '--device', path, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.path, path);
  assert.equal(out.owner, null);
  assert.deepEqual(
    out.pools.map((p: { ok: boolean; base: number; size: number }) => [p.ok, p.base, p.size]),
    [
      [true, 2 * MiB, 2 * MiB],
      [true, 4 * MiB, 1 * MiB],
    ],
  );
  assert.deepEqual(out.pools[0].stats, {
    totalPages: 512,
    usedPages: 12,
    freePages: 500,
    largestFreeRun: 500,
    metadataPages: 2,
  });
  assert.deepEqual(out.pools[0].pending, []);
});

test('pmpool status reports a corrupt header and a range without a pool', () => {
  const { path, device } = preparedDevice('c');
  const crc = device.view(2 * MiB + HDR_CRC * 4, 4);
  crc.setUint32(0, crc.getUint32(0, true) ^ 1, true);
  device.close();
  const r = runCli(['pmpool', 'status', '--device', path, '--pool', '8M,1M']);
  assert.equal(r.status, 0, r.stderr);
  // The header of the first pool is corrupt, so how far it reaches is unknown: the rest of the range is reported.
  assert.match(
    r.stdout,
    /^\[mem 0x0000000000200000-0x00000000004fffff\] no pool: EFAULT: .*header crc/m,
  );
  assert.match(r.stdout, /^\[mem 0x0000000000800000-0x00000000008fffff\] no pool: ENODEV: /m);
});

test('pmpool status on a device with no pools, and bad arguments', () => {
  const path = join(DIR, 'd');
  assert.equal(runCli(['device', 'create', path, '--size', '1M']).status, 0);
  const r = runCli(['pmpool', 'status', '--device', path]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^no pools$/m);
  const bad = runCli(['pmpool', 'status', '--device', path, '--pool', '4K']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^livekexec: EINVAL: --pool: /);
  const past = runCli(['pmpool', 'status', '--device', path, '--pool', '2M,1M']);
  assert.equal(past.status, 1);
  assert.match(
    past.stderr,
    /^livekexec: EINVAL: --pool: 2M,1M ends past the 1048576-byte device$/m,
  );
  const missing = runCli(['pmpool', 'status', '--device', join(DIR, 'nope')]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /no such device file/);
});
