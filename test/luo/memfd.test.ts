/** memfd helpers: creation, sized zero-filled contents, positional and sequential I/O. */
import assert from 'node:assert/strict';
import { closeSync } from 'node:fs';
import { test } from 'node:test';
import {
  createMemfd,
  MEMFD_NAME_MAX,
  memfdName,
  memfdRead,
  memfdSize,
  memfdWrite,
} from '../../src/luo/index.js';
import { getLibc, SEEK_CUR } from '../../src/sys/libc.js';
import { isCloexec, luoError } from './_support.js';

test('createMemfd gives a close-on-exec memfd of the size asked, zero-filled', () => {
  const fd = createMemfd('cache', 10000);
  try {
    assert.equal(memfdName(fd), 'cache');
    assert.equal(isCloexec(fd), true);
    assert.equal(memfdSize(fd), 10000);
    assert.deepEqual(memfdRead(fd, 10000, 0), new Uint8Array(10000));
    // Reading past the end gives what there is.
    assert.equal(memfdRead(fd, 100, 9950).length, 50);
  } finally {
    closeSync(fd);
  }
});

test('positional writes leave the file position; sequential ones advance it', () => {
  const fd = createMemfd('io');
  const pos = () => getLibc().lseek(fd, 0n, SEEK_CUR);
  try {
    assert.equal(memfdWrite(fd, new Uint8Array([1, 2, 3]), 1000), 3);
    assert.equal(pos(), 0n);
    assert.equal(memfdSize(fd), 1003);
    memfdWrite(fd, new Uint8Array([9, 8]));
    assert.equal(pos(), 2n);
    assert.deepEqual(memfdRead(fd, 3), new Uint8Array(3));
    assert.equal(pos(), 5n);
    assert.deepEqual(memfdRead(fd, 2, 0), new Uint8Array([9, 8]));
  } finally {
    closeSync(fd);
  }
});

test('bad names and sizes are EINVAL', () => {
  assert.throws(() => createMemfd('x'.repeat(MEMFD_NAME_MAX + 1)), luoError('EINVAL'));
  assert.throws(() => createMemfd('a\0b'), luoError('EINVAL'));
  assert.throws(() => createMemfd('x', -1), luoError('EINVAL'));
  assert.throws(() => createMemfd('x', 1.5), luoError('EINVAL'));
  closeSync(createMemfd('x'.repeat(MEMFD_NAME_MAX)));
});
