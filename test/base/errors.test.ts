import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import * as livekexec from 'livekexec';

/** Every error class of the root export, built as each layer builds it. */
const samples: [string, Error][] = [
  ['BootError', new livekexec.BootError('EINVAL', "expected a size, got 'zz'", 'memmap')],
  ['DeviceError', new livekexec.DeviceError('EBUSY', 'device busy: /d is owned by PID 7')],
  ['FdtError', new livekexec.FdtError('TRUNCATED')],
  ['KexecError', new livekexec.KexecError('ENOENT', 'kexec exec: no image is loaded')],
  ['KhoError', new livekexec.KhoError('EBUSY')],
  ['LuoError', new livekexec.LuoError('EEXIST', "session 'a' exists")],
  ['PageAllocError', new livekexec.PageAllocError('ENOENT', 'pfn 3 is already free', 3)],
  ['PkramError', new livekexec.PkramError('ENOENT', "no node 'x'")],
  ['PmpoolError', new livekexec.PmpoolError('EFAULT', 'header crc')],
  ['GeneralProtectionFault', new livekexec.GeneralProtectionFault(0x5000, 'sidecar')],
];

test('every error class extends LivekexecError, is named after itself and reads "CODE: detail"', () => {
  for (const [name, err] of samples) {
    assert.ok(err instanceof livekexec.LivekexecError, name);
    assert.equal(err.name, name);
    const { code } = err as livekexec.LivekexecError;
    assert.match(code, /^E[A-Z]+$|^[A-Z]+$/, name);
    const label = name === 'FdtError' ? `FDT_ERR_${code}` : code;
    assert.ok(err.message.startsWith(`${label}: `), `${name}: ${err.message}`);
    assert.ok(err.message.length > label.length + 2, name);
  }
  assert.equal(samples[0]![1].message, "EINVAL: memmap: expected a size, got 'zz'");
  assert.equal(
    samples[2]![1].message,
    'FDT_ERR_TRUNCATED: blob is truncated or a name is unterminated',
  );
});

test('a wrapped cause stays reachable, whatever the class', () => {
  const inner = new Error('ENOSPC from fallocate');
  const errors = [
    new livekexec.KexecError('EIO', 'kexec exec: failed', { cause: inner }),
    new livekexec.KhoError('ENOMEM', 'no page', { cause: inner }),
    new livekexec.PkramError('ENOMEM', 'no page', undefined, { cause: inner }),
    new livekexec.BootError('ENOMEM', 'no room', 'crashkernel', { cause: inner }),
    new livekexec.PageAllocError('EINVAL', 'bad', undefined, { cause: inner }),
    new livekexec.LuoError('EAGAIN', 'freeze failed', { cause: inner }),
    new livekexec.DeviceError('EIO', 'mmap failed', { cause: inner }),
    new livekexec.PmpoolError('EFAULT', 'bad', { cause: inner }),
    new livekexec.FdtError('INTERNAL', 'bug', { cause: inner }),
  ];
  for (const e of errors) assert.equal(e.cause, inner, e.name);
});

test('an uncaught livekexec error prints its class, code and message on the first line', () => {
  const r = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      "import { KhoError } from 'livekexec'; throw new KhoError('EINVAL', 'pfn 0x12 is not aligned to order 3');",
    ],
    { encoding: 'utf8' },
  );
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /^KhoError: EINVAL: pfn 0x12 is not aligned to order 3$/m);
  assert.match(r.stderr, /code: 'EINVAL'/);
});
