/**
 * The CLI faults a hostile tester found: verbs that allocated a sparse file
 * before recognising it, readers that skipped the ownership rule every owner
 * applies, errors that ignored --json, a --pool that is no pool, and a
 * pending handover removed without a word.
 */
import assert from 'node:assert/strict';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runCli } from '../_helpers/cli.js';
import { pendingPkramDevice } from '../_helpers/pending-device.js';

const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'lkx-faults-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A 1 MiB sparse file that is no device: a few bytes of text, then a hole. */
function sparseFile(name: string): string {
  const path = join(dir, name);
  const fd = openSync(path, 'w', 0o600);
  writeSync(fd, 'not a device\n');
  closeSync(fd);
  const big = openSync(path, 'r+');
  // Extend to 1 MiB without writing: the rest is a hole.
  writeSync(big, Buffer.from([0]), 0, 1, 1024 * 1024 - 1);
  closeSync(big);
  return path;
}

function allocatedBytes(path: string): number {
  return statSync(path).blocks * 512;
}

test('pkram rm, device rm and kexec refuse a sparse file that is no device without allocating it', () => {
  const path = sparseFile('sparse');
  const before = allocatedBytes(path);
  assert.ok(before < 64 * 1024, `the file starts sparse (${before} bytes allocated)`);
  for (const args of [
    ['pkram', 'rm', 'x', '--device', path],
    ['device', 'rm', path],
    ['kexec', '--device', path, 'true'],
  ]) {
    const r = runCli(args);
    assert.notEqual(r.status, 0, `${args.join(' ')} refused it`);
    assert.match(r.stderr, /not a valid livekexec device/, args.join(' '));
    assert.equal(allocatedBytes(path), before, `${args.join(' ')} allocated nothing`);
  }
  const forced = runCli(['device', 'rm', '--force', path]);
  assert.equal(forced.status, 0, forced.stderr);
  assert.equal(existsSync(path), false);
});

test("every verb that reads a device refuses one that is world-writable or another user's (EPERM)", () => {
  const { path } = pendingPkramDevice(join(dir, 'perm'));
  const readers = [
    ['device', 'info', path],
    ['device', 'check', path],
    ['kho', 'status', '--device', path],
    ['kho', 'check', '--device', path],
    ['pkram', 'ls', '--device', path],
    ['pmpool', 'status', '--device', path],
  ];
  chmodSync(path, 0o666);
  for (const args of readers) {
    const r = runCli(args);
    assert.equal(r.status, 1, `${args.join(' ')} on a 0666 device: ${r.stdout}`);
    assert.match(r.stderr, /EPERM: .* is group- or world-writable/, args.join(' '));
  }
  chmodSync(path, 0o600);
  if (process.getuid?.() === 0) {
    chownSync(path, 65534, 65534);
    for (const args of readers) {
      const r = runCli(args);
      assert.equal(r.status, 1, `${args.join(' ')} on another user's device`);
      assert.match(r.stderr, /EPERM: .* is owned by uid 65534/, args.join(' '));
    }
    chownSync(path, 0, 0);
  }
  assert.equal(
    runCli(['pkram', 'ls', '--device', path]).status,
    0,
    'the same device, 0600 and ours, is read',
  );
});

test('--json prints errors as JSON on stdout, usage errors too', () => {
  const missing = runCli(['device', 'info', join(dir, 'nope'), '--json']);
  assert.equal(missing.status, 1);
  assert.equal(missing.stderr, '');
  const e = JSON.parse(missing.stdout).error;
  assert.equal(e.code, 'ENOENT');
  assert.equal(e.name, 'DeviceError');
  assert.match(e.message, /no such device file/);
  const { path } = pendingPkramDevice(join(dir, 'json'));
  const none = runCli(['kho', 'check', '--device', join(dir, 'nope'), '--json']);
  assert.equal(JSON.parse(none.stdout).error.code, 'ENOENT');
  const usage = runCli(['pkram', 'ls', '--device', path, '--json', '--bogus']);
  assert.equal(usage.status, 1);
  assert.match(JSON.parse(usage.stdout).error.message, /unknown option '--bogus'/);
});

test('pmpool status refuses a --pool that is no pool: 1,2 is not whole pages', () => {
  const { path } = pendingPkramDevice(join(dir, 'pool'));
  for (const pool of ['1,2', '4096,4096', '4096,8193']) {
    const r = runCli(['pmpool', 'status', '--device', path, '--pool', pool]);
    assert.equal(r.status, 1, `--pool ${pool}: ${r.stdout}`);
    assert.match(r.stderr, /^livekexec: EINVAL: --pool: /);
  }
});

test('device rm of a device with a pending handover needs --force and says what is lost', () => {
  const { path } = pendingPkramDevice(join(dir, 'pending'));
  const r = runCli(['device', 'rm', path]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /EBUSY: .* holds a pending handover; removing it loses:/);
  assert.match(r.stderr, /the handover of generation \d+ to generation \d+/);
  assert.match(r.stderr, /PKRAM nodes: a, b/);
  assert.match(r.stderr, /add --force/);
  assert.equal(existsSync(path), true, 'nothing removed');
  const forced = runCli(['device', 'rm', '--force', path]);
  assert.equal(forced.status, 0, forced.stderr);
  assert.match(forced.stdout, /removed .*\nlost:\n.*PKRAM nodes: a, b/s);
  assert.equal(existsSync(path), false);
});
