import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Kernel, type KernelPlatform } from '../../src/kernel/kernel.js';
import { KexecError } from '../../src/kexec/errors.js';
import { Machine } from '../../src/machine.js';

const MiB = 1024 * 1024;
const isKexecError = (code: string) => (e: unknown) => e instanceof KexecError && e.code === code;

for (const cmdline of ['', 'kho=off']) {
  test(`a bad reserveBytes is EINVAL before anything is placed (${cmdline || 'KHO on'})`, () => {
    const k = Machine.create({ size: 16 * MiB }).boot(cmdline);
    const free = k.pages.stats().freePages;
    for (const bad of [-1e6, -1, 0.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
      assert.throws(
        () => k.kexec.load({ cmdline: 'bad', reserveBytes: bad }),
        isKexecError('EINVAL'),
        String(bad),
      );
      assert.equal(k.kexec.loaded, null);
      assert.equal(k.pages.stats().freePages, free);
    }
  });
}

test('reserveBytes 0 is allowed: the block still fits at exec', () => {
  const k = Machine.create({ size: 16 * MiB }).boot('kho=off');
  const free = k.pages.stats().freePages;
  k.kexec.load({ reserveBytes: 0 });
  k.kexec.load({ reserveBytes: 0 });
  k.kexec.unload();
  assert.equal(k.pages.stats().freePages, free);
  k.kexec.load({ reserveBytes: 0 });
  assert.equal(k.kexec.exec().boot.kind, 'kexec');
});

for (const cmdline of ['', 'kho=off']) {
  test(`a load that finds no hole keeps the image loaded before it (${cmdline || 'KHO on'})`, () => {
    const k = Machine.create({ size: 16 * MiB }).boot(cmdline);
    const first = k.kexec.load({ cmdline: 'first' });
    const free = k.pages.stats().freePages;
    assert.throws(
      () => k.kexec.load({ cmdline: 'big', reserveBytes: 1e9 }),
      isKexecError('ENOMEM'),
    );
    assert.equal(k.kexec.loaded, first, 'the first image is still the loaded one');
    assert.equal(k.pages.stats().freePages, free, 'its pages are held exactly once');
    const next = k.kexec.exec();
    assert.equal(next.boot.kind, 'kexec');
    assert.equal(next.boot.cmdline, 'first');
  });
}

test('a preload the platform cannot start leaves nothing loaded or held: EINVAL without preload, EIO wrapping its error', () => {
  const m = Machine.create({ size: 16 * MiB });
  const failure = new Error('no successor today');
  const platform: KernelPlatform = {
    execute: () => null as unknown as Kernel,
  };
  const k = Kernel.boot({ device: m.device, platform });
  const free = k.pages.stats().freePages;
  assert.throws(() => k.kexec.load({ successor: 'preload' }), isKexecError('EINVAL'));
  assert.equal(k.kexec.loaded, null);
  assert.equal(k.pages.stats().freePages, free);
  platform.preload = () => {
    throw failure;
  };
  assert.throws(
    () => k.kexec.load({ successor: 'preload' }),
    (e: unknown) => isKexecError('EIO')(e) && (e as KexecError).cause === failure,
  );
  assert.equal(k.kexec.loaded, null);
  assert.equal(k.pages.stats().freePages, free);
});

test('ready(): ENOENT with nothing loaded, EINVAL for a bad timeout; at once for a successor that is not preloaded', async () => {
  const k = Machine.create({ size: 16 * MiB }).boot('');
  await assert.rejects(k.kexec.ready(), isKexecError('ENOENT'));
  k.kexec.load();
  for (const bad of [-1, Number.NaN, '5', null]) {
    await assert.rejects(k.kexec.ready(bad as number), isKexecError('EINVAL'), String(bad));
  }
  await k.kexec.ready();
  await k.kexec.ready(0);
  assert.equal(k.kexec.exec().generation, 2, 'still loaded, and exec runs after it');
});

test("ready(): a preloaded successor's readiness is the platform's to tell, and its failure is ready()'s", async () => {
  const m = Machine.create({ size: 16 * MiB });
  let asked: number | undefined = -1;
  let outcome: Promise<void> = Promise.resolve();
  const platform: KernelPlatform = {
    execute: (image) => m.execute(image),
    preload: () => {},
    preloadReady: (_image, timeoutMs) => {
      asked = timeoutMs;
      return outcome;
    },
  };
  const k = Kernel.boot({ device: m.device, platform });
  k.kexec.load({ preload: true });
  await k.kexec.ready(1234);
  assert.equal(asked, 1234);
  outcome = Promise.reject(new KexecError('ETIMEDOUT', 'not ready within 1 ms'));
  await assert.rejects(k.kexec.ready(1), isKexecError('ETIMEDOUT'));
  assert.ok(k.kexec.loaded, 'a failed wait leaves the image loaded (unload stops the successor)');
});
