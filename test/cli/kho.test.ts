import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FdtWriter } from '../../src/fdt/write.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { formatDevice } from '../../src/memory/header.js';
import { MappedDevice } from '../../src/memory/mapped.js';
import { runCli } from '../_helpers/cli.js';

const MiB = 1024 * 1024;

/** A device file on which a generation committed a KHO handover that no successor has booted yet. */
function deviceWithPendingHandover(): { path: string; dir: string } {
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'lkx-kho-'));
  const path = join(dir, 'dev');
  const device = MappedDevice.open(path, { create: true, size: 16 * MiB });
  formatDevice(device);
  const k = Kernel.boot({
    device,
    cmdline: '',
    platform: {
      execute() {
        // The successor never starts: the handover stays pending on the device.
        device.close();
        return k;
      },
    },
  });
  const f = k.allocPages(2)!;
  k.kho.preserveFolio(f);
  const w = new FdtWriter();
  w.finishReservations();
  w.beginNode('');
  w.propertyString('compatible', 'vendor,cache-v2');
  w.propertyU32('entries', 42);
  w.endNode();
  k.kho.addSubtree('cache', w.finish());
  k.kexec.load();
  k.kexec.exec();
  return { path, dir };
}

test('kho status prints the pending handover like debugfs kho/out, and --json the same facts', () => {
  const { path, dir } = deviceWithPendingHandover();
  try {
    const r = runCli(['kho', 'status', '--device', path]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /kho\/out\/fdt:\n\/dts-v1\/;/);
    assert.match(r.stdout, /compatible = "livekexec,kho-v1";/);
    assert.match(
      r.stdout,
      /kho\/out\/sub_fdts\/cache:\n\/dts-v1\/;[\s\S]*compatible = "vendor,cache-v2";[\s\S]*entries = <0x2a>;/,
    );
    assert.match(r.stdout, /kho\/out\/scratch: lowmem phys 0x[0-9a-f]{16} len 0x/);
    assert.match(r.stdout, /order 2: 1 blocks, 16384 bytes/);
    const j = JSON.parse(runCli(['kho', 'status', '--device', path, '--json']).stdout);
    assert.equal(j.handover.checksumOk, true);
    const cache = j.handover.subtrees.find((s: { name: string }) => s.name === 'cache');
    assert.match(cache.dts, /vendor,cache-v2/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('kho check says whether a successor understands the handover', () => {
  const { path, dir } = deviceWithPendingHandover();
  try {
    const ok = runCli(['kho', 'check', '--device', path, '--cmdline', 'quiet']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /^understood/);
    assert.match(
      ok.stdout,
      /subtree 'cache' \(vendor,cache-v2\) is unknown to the successor: it stays preserved/,
    );
    const off = runCli(['kho', 'check', '--device', path, '--cmdline', 'kho=off']);
    assert.equal(off.status, 1);
    assert.match(off.stdout, /NOT understood\n.*kho=off/);
    const bad = runCli(['kho', 'check', '--device', path, '--cmdline', 'memmap=zz']);
    assert.equal(bad.status, 1);
    assert.match(bad.stdout, /command line is refused: EINVAL: memmap/);
    const newer = runCli(['kho', 'check', '--device', path, '--compatible', 'livekexec,kho-v2']);
    assert.equal(newer.status, 1);
    assert.match(newer.stdout, /does not read livekexec,kho-v1/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('kho check reads every kho_scratch= form with its meaning, and refuses sizes past the device', () => {
  const { path, dir } = deviceWithPendingHandover();
  try {
    for (const [form, meaning] of [
      ['512M,256M', /a 512 MiB global area, 256 MiB per node \(the global,pernode form\)/],
      ['512M', /a 512 MiB global area \(the global form\)/],
      ['16M,512M,256M', /a 16 MiB lowmem area, a 512 MiB global area, 256 MiB per node/],
      ['50%', /each scratch area 50% of the memory the kernel reserved/],
    ] as const) {
      const r = runCli(['kho', 'check', '--device', path, '--cmdline', `kho_scratch=${form}`]);
      assert.equal(r.status, 0, `${form}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /^understood/);
      assert.match(r.stdout, meaning);
      assert.match(r.stdout, /ignored while the successor revives this handover/);
    }
    const huge = runCli(['kho', 'check', '--device', path, '--cmdline', 'crashkernel=999G']);
    assert.equal(huge.status, 1);
    assert.match(
      huge.stdout,
      /NOT understood\n.*cannot boot: crashkernel= asks for 1022976 MiB, more than the 16 MiB device/,
    );
    const pool = runCli(['kho', 'check', '--device', path, '--cmdline', 'pmpool=12M,8M']);
    assert.equal(pool.status, 1);
    assert.match(pool.stdout, /pmpool= \[12 MiB, \+8 MiB\) ends past the 16 MiB device/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('kho status on a fresh device says no handover is pending', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lkx-kho-'));
  try {
    const path = join(dir, 'dev');
    assert.equal(runCli(['device', 'create', path, '--size', '4M']).status, 0);
    const r = runCli(['kho', 'status', '--device', path]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /no handover pending/);
    assert.equal(runCli(['kho', 'check', '--device', path]).status, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
