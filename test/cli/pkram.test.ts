/**
 * `livekexec pkram ls|rm` on a device file whose kexec was committed but
 * whose successor has not booted yet (a pending boot block).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Kernel } from '../../src/kernel/kernel.js';
import { readDeviceHeader } from '../../src/memory/header.js';
import { MappedDevice } from '../../src/memory/mapped.js';
import { runCli } from '../_helpers/cli.js';
import { pendingPkramDevice } from '../_helpers/pending-device.js';
import { pattern, readAll } from '../pkram/_setup.js';

const dir = mkdtempSync(join(tmpdir(), 'livekexec-pkram-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function pendingDevice(name: string, cmdline = ''): { path: string; aFolio: number } {
  return pendingPkramDevice(join(dir, name), cmdline);
}

function bootSuccessor(path: string): { k: Kernel; dev: MappedDevice } {
  const dev = MappedDevice.open(path);
  const header = readDeviceHeader(dev);
  const k = Kernel.boot({
    device: dev,
    bootBlock: header.bootBlock,
    platform: { execute: () => null as unknown as Kernel },
  });
  return { k, dev };
}

test('pkram ls lists nodes, objects, folios and bytes (text and --json)', () => {
  const { path } = pendingDevice('ls');
  const r = runCli(['pkram', 'ls', '--device', path, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(
    out.nodes.map((n: { name: string; folios: number; bytes: number }) => [
      n.name,
      n.folios,
      n.bytes,
    ]),
    [
      ['a', 1, 5000],
      ['b', 0, 70],
    ],
  );
  const t = runCli(['pkram', 'ls', '--device', path]);
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stdout, /^a\t1\t1\t5000\t/m);
  assert.match(t.stdout, /^b\t1\t0\t70\t/m);
});

test('pkram rm frees a node offline: the successor sees only the others and may use the freed pages', () => {
  const { path, aFolio } = pendingDevice('rm');
  const r = runCli(['pkram', 'rm', 'a', '--device', path]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /removed node "a"/);
  const again = runCli(['pkram', 'rm', 'a', '--device', path]);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /no saved node "a"/);
  const ls = JSON.parse(runCli(['pkram', 'ls', '--device', path, '--json']).stdout);
  assert.deepEqual(
    ls.nodes.map((n: { name: string }) => n.name),
    ['b'],
  );
  const { k, dev } = bootSuccessor(path);
  try {
    assert.ok(
      k.log.some((l) => /PKRAM: attached/.test(l)),
      k.log.join('\n'),
    );
    assert.deepEqual(
      k.pkram.list().map((n) => n.name),
      ['b'],
    );
    const n = k.pkram.prepareLoad('b');
    const o = n.prepareLoadObj();
    assert.ok(o);
    assert.deepEqual(readAll(o, 64), pattern(70, 3));
    n.finishLoad();
    // The removed node's folio was not reserved: it is free memory now.
    for (let i = 0; i < 8; i++) assert.equal(k.pages.pageState(aFolio + i), 'free');
  } finally {
    dev.close();
  }
});

test('pkram ls without a pending boot block says why and exits 1', () => {
  const { path } = pendingDevice('consumed');
  const { dev } = bootSuccessor(path);
  dev.close();
  const r = runCli(['pkram', 'ls', '--device', path]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /no pending boot block/);
});

test('pkram ls reads the device in place: it works while another process owns the device', () => {
  const { path } = pendingDevice('owned');
  const owner = MappedDevice.open(path); // holds the device's flock, as a running owner does
  try {
    const r = runCli(['pkram', 'ls', '--device', path, '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(
      JSON.parse(r.stdout).nodes.map((n: { name: string }) => n.name),
      ['a', 'b'],
    );
  } finally {
    owner.close();
  }
});
