import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { KhoError } from '../../src/kho/errors.js';
import { buildRootFdt, parseRootFdt } from '../../src/kho/root-fdt.js';

const DEVICE = 64 * 2 ** 20;

function root(): Uint8Array {
  return buildRootFdt({
    memoryMapPhys: 0x10000,
    memoryMapPages: [0x10000, 0x11000, 0x20000],
    memoryMapCsum: 0x1234,
    subtrees: new Map([
      ['app', 0x30000],
      ['pkram', 0x31000],
    ]),
  });
}

test('a root FDT whose boot block checksum matched is read without the full check, to the same result', () => {
  const bytes = root();
  assert.deepEqual(parseRootFdt(bytes, DEVICE, { crcChecked: true }), parseRootFdt(bytes, DEVICE));
});

test('a damaged root FDT read without the full check is a KhoError or a valid reading, never another error (property)', () => {
  const good = root();
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 8,
      }),
      fc.nat(good.length),
      (edits, cut) => {
        const bytes = good.slice(0, Math.max(cut, 1));
        for (const [at, v] of edits) if (at < bytes.length) bytes[at] = v;
        try {
          const r = parseRootFdt(bytes, DEVICE, { crcChecked: true });
          for (const phys of [r.memoryMapPhys, ...r.memoryMapPages, ...r.subtrees.values()]) {
            assert.ok(phys % 4096 === 0 && phys < DEVICE);
          }
        } catch (err) {
          assert.ok(err instanceof KhoError, String(err));
        }
      },
    ),
    { numRuns: 2000 },
  );
});
