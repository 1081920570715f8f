import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { PAGE_SIZE } from '../../src/memory/device.js';
import { DeviceError } from '../../src/memory/errors.js';
import { ReadonlyDevice } from '../../src/memory/readonly.js';

const dir = mkdtempSync(join(tmpdir(), 'livekexec-readonly-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const notRegular = (e: unknown) =>
  e instanceof DeviceError && e.code === 'EINVAL' && /not a regular file/.test(e.message);

test('readonly device: reads a regular file in place, whole pages only', () => {
  const path = join(dir, 'dev');
  const data = new Uint8Array(2 * PAGE_SIZE + 100).map((_, i) => i & 0xff);
  writeFileSync(path, data);
  const d = ReadonlyDevice.open(path);
  try {
    assert.equal(d.size, 2 * PAGE_SIZE);
    assert.deepEqual(d.bytes(PAGE_SIZE - 2, 4), data.subarray(PAGE_SIZE - 2, PAGE_SIZE + 2));
    assert.throws(() => d.bytes(2 * PAGE_SIZE - 1, 2), DeviceError);
  } finally {
    d.close();
  }
});

test('readonly device: a directory is refused at open, not by a raw EISDIR on the first read', () => {
  const path = join(dir, 'a-dir');
  mkdirSync(path);
  assert.throws(() => ReadonlyDevice.open(path), notRegular);
});

test('readonly device: a FIFO is refused at open instead of blocking it forever', () => {
  const path = join(dir, 'a-fifo');
  execFileSync('mkfifo', [path]);
  assert.throws(() => ReadonlyDevice.open(path), notRegular);
});
