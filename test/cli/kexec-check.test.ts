import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Kernel } from '../../src/kernel/kernel.js';
import { formatDevice } from '../../src/memory/header.js';
import { MappedDevice } from '../../src/memory/mapped.js';
import { runCli } from '../_helpers/cli.js';
import { CLI, fixture } from '../_helpers/paths.js';

const MiB = 1024 * 1024;

function tempDir(): string {
  return mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'lkx-cli-'));
}

/** Leaves a committed handover on a fresh device, as a generation whose successor never ran. */
function pendingHandover(
  path: string,
  damage?: (d: MappedDevice, bootBlock: number) => void,
): void {
  const device = MappedDevice.open(path, { create: true, size: 16 * MiB });
  formatDevice(device);
  const k = Kernel.boot({
    device,
    cmdline: '',
    platform: {
      execute(img) {
        damage?.(device, img.segment.base);
        device.close();
        return k;
      },
    },
  });
  k.kho.preserveFolio(k.allocPages(1)!);
  k.kexec.load();
  k.kexec.exec();
}

function events(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('device check passes a sound device with a pending handover, and fails a damaged one', () => {
  const dir = tempDir();
  try {
    const good = join(dir, 'good');
    pendingHandover(good);
    const ok = runCli(['device', 'check', good]);
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /^ok {6}header: generation 1/m);
    assert.match(ok.stdout, /^ok {6}boot block: pending at 0x[0-9a-f]+ for generation 2/m);
    assert.match(ok.stdout, /^ok {6}kho: 8192 bytes preserved/m);
    const bad = join(dir, 'bad');
    pendingHandover(bad, (d, bb) => {
      d.bytes(bb + 0x40, 1)[0] ^= 0xff;
    });
    const r = runCli(['device', 'check', bad, '--json']);
    assert.equal(r.status, 1);
    const j = JSON.parse(r.stdout) as { ok: boolean; findings: { level: string; part: string }[] };
    assert.equal(j.ok, false);
    assert.ok(j.findings.some((f) => f.level === 'error' && f.part === 'boot block'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('livekexec kexec execs a program in place as the next generation', () => {
  const dir = tempDir();
  try {
    const dev = join(dir, 'dev');
    const r = spawnSync(
      process.execPath,
      [
        CLI,
        'kexec',
        '--device',
        dev,
        '--size',
        '8M',
        '--cmdline',
        'quiet',
        fixture('process', 'report.mjs'),
        dev,
        'hello',
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    const [boot] = events(r.stdout);
    assert.equal(boot.kind, 'kexec');
    assert.equal(
      boot.generation,
      2,
      'the command booted generation 1, the program is generation 2',
    );
    assert.equal(boot.pid, r.pid, 'same PID: the command became the program');
    assert.deepEqual(boot.argv, ['hello']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('livekexec kexec resumes a handover whose successor never booted', () => {
  const dir = tempDir();
  try {
    const dev = join(dir, 'dev');
    pendingHandover(dev);
    const r = spawnSync(
      process.execPath,
      [CLI, 'kexec', '--device', dev, fixture('process', 'report.mjs'), dev],
      { encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /resuming the handover pending at 0x/);
    const [boot] = events(r.stdout);
    assert.equal(boot.kind, 'kexec');
    assert.equal(boot.generation, 2);
    assert.equal(boot.coldReason, null);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('livekexec kexec creates an absent device without --size (64 MiB), as its --help says', () => {
  const help = runCli(['kexec', '--help']);
  assert.equal(help.status, 0);
  const text = help.stdout.replace(/\s+/g, ' ');
  assert.doesNotMatch(text, /created when --size is given/);
  assert.match(text, /created and formatted when it does not exist/);
  assert.match(text, /default 64M/);
  const dir = tempDir();
  try {
    const dev = join(dir, 'dev');
    const r = spawnSync(
      process.execPath,
      [CLI, 'kexec', '--device', dev, '--', process.execPath, '-e', ''],
      {
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(statSync(dev).size, 64 * MiB);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
