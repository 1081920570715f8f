import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { PAGE_SIZE } from '../../src/memory/device.js';
import { DeviceError, GeneralProtectionFault } from '../../src/memory/errors.js';
import { HeapDevice } from '../../src/memory/heap.js';

function code(c: string) {
  return (err: unknown) => err instanceof DeviceError && err.code === c;
}

test('heap device: size, pages and zero-copy views', () => {
  const d = new HeapDevice(16 * PAGE_SIZE);
  assert.equal(d.size, 16 * PAGE_SIZE);
  assert.equal(d.pages, 16);
  assert.equal(d.pageSize, PAGE_SIZE);
  assert.equal(d.name, 'heap 64 KiB');
  d.bytes(5000, 4).set([1, 2, 3, 4]);
  assert.deepEqual([...d.bytes(5000, 4)], [1, 2, 3, 4]);
  d.view(8192, 8).setBigUint64(0, 0x1122334455667788n, true);
  assert.equal(d.bytes(8192, 1)[0], 0x88);
  assert.equal(d.bytes(d.size, 0).length, 0);
});

test('heap device: bad sizes are EINVAL', () => {
  for (const s of [0, -4096, 4095, 4097, 1.5, Number.NaN]) {
    assert.throws(() => new HeapDevice(s), code('EINVAL'));
  }
});

test('heap device: every out-of-range access is EFAULT, never a RangeError', () => {
  const d = new HeapDevice(4 * PAGE_SIZE);
  fc.assert(
    fc.property(
      fc.oneof(fc.integer({ min: -10, max: 5 * PAGE_SIZE }), fc.double(), fc.constant(2 ** 60)),
      fc.oneof(fc.integer({ min: -10, max: 5 * PAGE_SIZE }), fc.double()),
      (phys, len) => {
        const ok =
          Number.isSafeInteger(phys) &&
          Number.isSafeInteger(len) &&
          phys >= 0 &&
          len >= 0 &&
          phys + len <= d.size;
        for (const f of [
          () => d.bytes(phys, len),
          () => d.view(phys, len),
          () => d.flush(phys, len),
        ]) {
          if (ok) f();
          else assert.throws(f, code('EFAULT'));
        }
      },
    ),
  );
});

test('heap device: closed device is EBADF', () => {
  const d = new HeapDevice(PAGE_SIZE);
  d.close();
  assert.throws(() => d.bytes(0, 1), code('EBADF'));
  assert.throws(() => d.view(0, 1), code('EBADF'));
  assert.throws(() => d.flush(0, 1), code('EBADF'));
});

test('guard: any read or write view touching a guarded page faults, none after unguard', () => {
  const d = new HeapDevice(8 * PAGE_SIZE);
  d.guard(2 * PAGE_SIZE, 2 * PAGE_SIZE, 'sidecar');
  assert.equal(d.isGuarded(1), false);
  assert.equal(d.isGuarded(2), true);
  assert.equal(d.isGuarded(3), true);
  assert.equal(d.isGuarded(4), false);
  const faults = (phys: number, len: number) => {
    assert.throws(
      () => d.bytes(phys, len),
      (e: unknown) => e instanceof GeneralProtectionFault && e.owner === 'sidecar',
    );
    assert.throws(() => d.view(phys, len), GeneralProtectionFault);
  };
  faults(2 * PAGE_SIZE, 1);
  faults(4 * PAGE_SIZE - 1, 1);
  faults(2 * PAGE_SIZE - 1, 2); // partial overlap from below
  faults(4 * PAGE_SIZE - 1, 2); // partial overlap from above
  faults(0, 8 * PAGE_SIZE); // spans the whole range
  assert.throws(
    () => d.bytes(PAGE_SIZE, 2 * PAGE_SIZE),
    (e: unknown) => e instanceof GeneralProtectionFault && e.phys === 2 * PAGE_SIZE,
  );
  // Neighbours are fine.
  d.bytes(0, 2 * PAGE_SIZE);
  d.bytes(4 * PAGE_SIZE, 4 * PAGE_SIZE);
  d.bytes(2 * PAGE_SIZE, 0);
  assert.deepEqual(d.guardedRanges(), [
    { base: 2 * PAGE_SIZE, size: 2 * PAGE_SIZE, owner: 'sidecar' },
  ]);
  d.unguard(2 * PAGE_SIZE, PAGE_SIZE);
  d.bytes(2 * PAGE_SIZE, PAGE_SIZE);
  faults(3 * PAGE_SIZE, 1);
  d.unguard(3 * PAGE_SIZE, PAGE_SIZE);
  d.bytes(0, 8 * PAGE_SIZE).fill(1);
  assert.deepEqual(d.guardedRanges(), []);
});

test('guard: misuse is a typed error and changes nothing', () => {
  const d = new HeapDevice(8 * PAGE_SIZE);
  assert.throws(() => d.guard(100, PAGE_SIZE, 'x'), code('EINVAL'));
  assert.throws(() => d.guard(0, 100, 'x'), code('EINVAL'));
  assert.throws(() => d.guard(0, 0, 'x'), code('EINVAL'));
  assert.throws(() => d.guard(8 * PAGE_SIZE, PAGE_SIZE, 'x'), code('EFAULT'));
  assert.throws(() => d.guard(-PAGE_SIZE, PAGE_SIZE, 'x'), code('EFAULT'));
  d.guard(PAGE_SIZE, PAGE_SIZE, 'a');
  assert.throws(() => d.guard(0, 2 * PAGE_SIZE, 'b'), code('EBUSY'));
  assert.equal(d.isGuarded(0), false);
  assert.throws(() => d.unguard(0, 2 * PAGE_SIZE), code('EINVAL'));
  assert.equal(d.isGuarded(1), true);
  d.guard(2 * PAGE_SIZE, PAGE_SIZE, 'b');
  assert.deepEqual(d.guardedRanges(), [
    { base: PAGE_SIZE, size: PAGE_SIZE, owner: 'a' },
    { base: 2 * PAGE_SIZE, size: PAGE_SIZE, owner: 'b' },
  ]);
});

test('guard: random guards and accesses agree with a per-page model', () => {
  const pages = 16;
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          op: fc.constantFrom('guard', 'unguard', 'access'),
          a: fc.integer({ min: 0, max: pages * PAGE_SIZE }),
          b: fc.integer({ min: 0, max: pages * PAGE_SIZE }),
        }),
        { maxLength: 40 },
      ),
      (ops) => {
        const d = new HeapDevice(pages * PAGE_SIZE);
        const model = new Array<boolean>(pages).fill(false);
        for (const { op, a, b } of ops) {
          const lo = Math.min(a, b);
          const hi = Math.max(a, b);
          if (op === 'access') {
            const touched = model.some(
              (g, pfn) => g && hi > lo && pfn * PAGE_SIZE < hi && (pfn + 1) * PAGE_SIZE > lo,
            );
            if (touched) assert.throws(() => d.bytes(lo, hi - lo), GeneralProtectionFault);
            else d.bytes(lo, hi - lo);
            continue;
          }
          const first = Math.floor(lo / PAGE_SIZE);
          const end = Math.min(pages, first + 1 + Math.floor((hi - lo) / PAGE_SIZE / 4));
          const span = model.slice(first, end);
          if (end <= first) continue;
          if (op === 'guard') {
            if (span.some((g) => g))
              assert.throws(
                () => d.guard(first * PAGE_SIZE, (end - first) * PAGE_SIZE, 'o'),
                code('EBUSY'),
              );
            else {
              d.guard(first * PAGE_SIZE, (end - first) * PAGE_SIZE, 'o');
              model.fill(true, first, end);
            }
          } else if (span.every((g) => g)) {
            d.unguard(first * PAGE_SIZE, (end - first) * PAGE_SIZE);
            model.fill(false, first, end);
          } else
            assert.throws(
              () => d.unguard(first * PAGE_SIZE, (end - first) * PAGE_SIZE),
              code('EINVAL'),
            );
          for (let pfn = 0; pfn < pages; pfn++) assert.equal(d.isGuarded(pfn), model[pfn]);
        }
      },
    ),
  );
});
