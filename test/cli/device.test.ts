import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readDeviceHeader, writeDeviceHeader } from '../../src/memory/header.js';
import { MappedDevice } from '../../src/memory/mapped.js';
import { runCli } from '../_helpers/cli.js';

const DIR = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'livekexec-cli-'));
after(() => rmSync(DIR, { recursive: true, force: true }));

test('device create makes a formatted 0600 device of the memparse size', () => {
  const p = join(DIR, 'a');
  const r = runCli(['device', 'create', p, '--size', '2M']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stdout,
    new RegExp(`^created ${p}: 2 MiB \\(512 pages\\), uuid [0-9a-f-]{36}\\n$`),
  );
  assert.equal(r.stderr, '', 'no progress bar without a TTY');
  const st = statSync(p);
  assert.equal(st.mode & 0o777, 0o600);
  assert.equal(st.size, 2 << 20);
  const d = MappedDevice.open(p);
  const h = readDeviceHeader(d);
  d.close();
  assert.equal(h.size, 2 << 20);
  assert.equal(h.generation, 0);
  assert.equal(runCli(['device', 'create', join(DIR, 'hex'), '--size', '0x4000']).status, 0);
});

test('device create refuses bad sizes and existing files', () => {
  const p = join(DIR, 'b');
  for (const size of ['1000', '4K', '12Q', 'lots']) {
    const r = runCli(['device', 'create', p, '--size', size]);
    assert.equal(r.status, 1, size);
    assert.match(r.stderr, /^livekexec: EINVAL: --size: /);
    assert.equal(existsSync(p), false);
  }
  assert.equal(runCli(['device', 'create', p, '--size', '64K']).status, 0);
  const again = runCli(['device', 'create', p, '--size', '64K']);
  assert.equal(again.status, 1);
  assert.equal(again.stderr, `livekexec: EEXIST: ${p} already exists\n`);
});

test('device info prints the header and the memory map as the kernel does', () => {
  const p = join(DIR, 'c');
  assert.equal(runCli(['device', 'create', p, '--size', '1M']).status, 0);
  const r = runCli(['device', 'info', p]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^size: +1048576 bytes \(1 MiB\), 256 pages of 4096 bytes$/m);
  assert.match(r.stdout, /^boot block: none pending$/m);
  assert.match(r.stdout, /^owner: +none \(not in use\)/m);
  assert.ok(
    r.stdout.endsWith(
      'BIOS-e820: [mem 0x0000000000000000-0x0000000000000fff] reserved\n' +
        'BIOS-e820: [mem 0x0000000000001000-0x00000000000fffff] usable\n',
    ),
    r.stdout,
  );
  // A pending boot block is shown with its address; a live owner with its PID.
  const d = MappedDevice.open(p);
  writeDeviceHeader(d, { ...readDeviceHeader(d), bootBlock: 0x5000, generation: 3 });
  const live = runCli(['device', 'info', p]);
  const json = runCli(['device', 'info', p, '--json']);
  d.close();
  assert.match(live.stdout, /^boot block: pending at 0x5000$/m);
  assert.match(live.stdout, /^generation: 3$/m);
  assert.match(live.stdout, new RegExp(`^owner: +PID ${process.pid}`, 'm'));
  const o = JSON.parse(json.stdout) as Record<string, unknown>;
  assert.equal(o.bootBlock, 0x5000);
  assert.equal(o.owner, process.pid);
  assert.deepEqual(o.memmap, [
    { addr: 0, size: 4096, type: 2, typeName: 'reserved' },
    { addr: 4096, size: 1048576 - 4096, type: 1, typeName: 'usable' },
  ]);
});

test('device info refuses a file that is not a device, and a missing one', () => {
  const p = join(DIR, 'junk');
  writeFileSync(p, Buffer.alloc(8192, 1), { mode: 0o600 });
  const r = runCli(['device', 'info', p]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^livekexec: .*not a valid livekexec device: bad magic 0x1010101\n$/);
  const missing = runCli(['device', 'info', join(DIR, 'nope')]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /no such device file/);
});

test('device rm refuses a busy device and removes an idle one', () => {
  const p = join(DIR, 'd');
  assert.equal(runCli(['device', 'create', p, '--size', '64K']).status, 0);
  const d = MappedDevice.open(p);
  const busy = runCli(['device', 'rm', p]);
  d.close();
  assert.equal(busy.status, 1);
  assert.equal(busy.stderr, `livekexec: EBUSY: device busy: ${p} is owned by PID ${process.pid}\n`);
  assert.equal(existsSync(p), true);
  const r = runCli(['device', 'rm', p]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(existsSync(p), false);
});

test('device rm refuses a file without a valid header unless forced', () => {
  const p = join(DIR, 'e');
  writeFileSync(p, Buffer.alloc(8192), { mode: 0o600 });
  const r = runCli(['device', 'rm', p]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /not a valid livekexec device/);
  assert.equal(existsSync(p), true);
  assert.equal(runCli(['device', 'rm', '--force', p]).status, 0);
  assert.equal(existsSync(p), false);
});
