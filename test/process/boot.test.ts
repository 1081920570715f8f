import assert from 'node:assert/strict';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { KexecError } from '../../src/kexec/errors.js';
import { DeviceError } from '../../src/memory/errors.js';
import type { MappedDevice } from '../../src/memory/mapped.js';
import { boot, defaultDevicePath } from '../../src/process.js';
import { removeDevice, tempDevice } from './_fixture.js';

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups) c();
});

test('a cold boot creates, formats and owns a device of a memparse size; the next boot counts on', async () => {
  const path = tempDevice('cold');
  cleanups.push(() => removeDevice(path));
  const k1 = await boot({ device: path, size: '2M', cmdline: 'quiet' });
  try {
    assert.equal(k1.boot.kind, 'cold');
    assert.equal(k1.generation, 1);
    assert.equal(k1.device.size, 2 * 1024 * 1024);
    assert.equal(k1.boot.cmdline, 'quiet');
    assert.equal(statSync(path).mode & 0o777, 0o400, 'read-only while owned');
    await assert.rejects(
      boot({ device: path }),
      (e: unknown) =>
        e instanceof DeviceError && e.code === 'EBUSY' && e.message.includes(`PID ${process.pid}`),
    );
  } finally {
    (k1.device as MappedDevice).close();
  }
  assert.equal(statSync(path).mode & 0o777, 0o600, 'writable by its user again at rest');
  const k2 = await boot({ device: path });
  (k2.device as MappedDevice).close();
  assert.equal(k2.generation, 2);
  assert.equal(k2.boot.kind, 'cold');
});

test('a file that holds something else is refused, not formatted over', async () => {
  const path = tempDevice('junk');
  cleanups.push(() => removeDevice(path));
  writeFileSync(path, Buffer.alloc(8192, 0x5a), { mode: 0o600 });
  await assert.rejects(
    boot({ device: path }),
    (e: unknown) => e instanceof DeviceError && e.code === 'ENODEV',
  );
  assert.ok(existsSync(path));
});

test('malformed handover variables are EINVAL and are not left in the environment', async () => {
  for (const [boot0, fd] of [
    ['/dev/shm/nothing@zz', '3'],
    ['/dev/shm/nothing@0x1000', 'x'],
  ]) {
    process.env.LIVEKEXEC_BOOT = boot0;
    process.env.LIVEKEXEC_DEVICE_FD = fd;
    try {
      await assert.rejects(boot(), (e: unknown) => e instanceof KexecError && e.code === 'EINVAL');
      assert.equal(process.env.LIVEKEXEC_DEVICE_FD, undefined);
    } finally {
      delete process.env.LIVEKEXEC_BOOT;
      delete process.env.LIVEKEXEC_DEVICE_FD;
    }
  }
});

test('the default device is named after the main script, under /dev/shm when it exists', () => {
  const p = defaultDevicePath();
  assert.match(p, /livekexec-[A-Za-z0-9._-]+$/);
  if (existsSync('/dev/shm')) assert.ok(p.startsWith('/dev/shm/'));
});
