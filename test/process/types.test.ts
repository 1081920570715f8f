import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ProcessKernel } from '../../src/process.js';

test("a real process's kexec exec and upgrade do not return on success: their types say so (never)", () => {
  // Compiles only while exec() is typed `never` and upgrade() `Promise<never>` for a booted process.
  const execNever = (k: ProcessKernel): never => k.kexec.exec();
  const upgradeNever = (k: ProcessKernel): Promise<never> => k.upgrade();
  assert.equal(typeof execNever, 'function');
  assert.equal(typeof upgradeNever, 'function');
});
