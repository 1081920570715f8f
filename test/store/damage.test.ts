/**
 * Bad input: a damaged table, record header, super block or extent
 * directory is refused with StoreError EFAULT naming the page, never read as
 * a value; no other error escapes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Kernel } from '../../src/kernel/kernel.js';
import { Machine } from '../../src/machine.js';
import { SB_EXT_DIR, SB_TABLE_CUR, TD_DIR } from '../../src/store/abi.js';
import { openStore, StoreError } from '../../src/store/index.js';

const MiB = 1024 * 1024;
const N = 400;

function value(i: number): Buffer {
  return Buffer.alloc(20 + (i % 50), i & 0xff);
}

/** A successor kernel holding a handed-over store of N entries, and where its table and records are. */
function handedOver(): { k2: Kernel; root: number; table: number[]; records: number[] } {
  const k1 = Machine.create({ size: 16 * MiB }).boot();
  const s = openStore(k1, { name: 'kv' });
  for (let i = 0; i < N; i++) s.put(`key-${i}`, value(i));
  const root = s.stats().root;
  const words = new Uint32Array(k1.device.bytes(root, 4096).slice().buffer);
  const dir = words[SB_TABLE_CUR + TD_DIR] * 4096;
  const seg = new Uint32Array(k1.device.bytes(dir, 4).slice().buffer)[0] * 4096;
  const slots = s.stats().tableSlots;
  const table = [seg, slots * 8];
  const records: number[] = [];
  const t = new Uint32Array(k1.device.bytes(seg, slots * 8).slice().buffer);
  for (let i = 1; i < t.length; i += 2) if (t[i] > 1) records.push(t[i] * 16);
  k1.kexec.load();
  return { k2: k1.kexec.exec(), root, table, records };
}

function isEfault(err: unknown): boolean {
  return err instanceof StoreError && err.code === 'EFAULT' && /page \d+/.test(err.message);
}

test('damaged table slots and record headers: each get is the right value, absent, or EFAULT naming the page', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          where: fc.constantFrom('table', 'header'),
          at: fc.nat(),
          bit: fc.integer({ min: 0, max: 7 }),
        }),
        { minLength: 1, maxLength: 8 },
      ),
      (flips) => {
        const { k2, table, records } = handedOver();
        for (const f of flips) {
          const phys =
            f.where === 'table'
              ? table[0] + (f.at % table[1])
              : records[f.at % records.length] + (f.at % 16);
          k2.device.bytes(phys, 1)[0] ^= 1 << f.bit;
        }
        const s = openStore(k2, { name: 'kv' });
        for (let i = 0; i < N; i++) {
          try {
            const v = s.get(`key-${i}`);
            if (v !== undefined) assert.deepEqual(v, value(i), `key-${i}: a wrong value`);
          } catch (err) {
            assert.ok(isEfault(err), String(err));
          }
        }
        try {
          s.check();
        } catch (err) {
          assert.ok(isEfault(err), String(err));
        }
      },
    ),
    { numRuns: 60, seed: 13 },
  );
});

test('a flipped bit in a record header is seen: check() reports it by page, get refuses it', () => {
  const { k2, records } = handedOver();
  k2.device.bytes(records[5] + 4, 1)[0] ^= 1; // the value length of one record
  const s = openStore(k2, { name: 'kv' });
  const report = s.check();
  assert.equal(report.problems.length, 1);
  assert.match(
    report.problems[0],
    /EFAULT: table slot \d+ points at 0x[0-9a-f]+, which holds no record of its hash \(page \d+/,
  );
  let refused = 0;
  for (let i = 0; i < N; i++) {
    try {
      assert.deepEqual(s.get(`key-${i}`), value(i));
    } catch (err) {
      assert.ok(isEfault(err), String(err));
      refused++;
    }
  }
  assert.equal(refused, 1, 'only the damaged record is refused');
});

test('a damaged super block, extent directory or table directory: open refuses it with EFAULT naming the page', () => {
  const cases: [string, (k: Kernel, root: number) => void][] = [
    [
      'super block crc',
      (k, root) => {
        k.device.bytes(root + 0x14, 1)[0] ^= 4;
      },
    ],
    [
      'super block magic',
      (k, root) => {
        k.device.bytes(root, 1)[0] ^= 1;
      },
    ],
    [
      'extent directory',
      (k, root) => {
        const dir = new DataView(
          k.device.bytes(root, 4096).buffer,
          k.device.bytes(root, 1).byteOffset,
        ).getUint32(SB_EXT_DIR * 4, true);
        k.device.bytes(dir * 4096 + 16, 4).fill(0xff);
      },
    ],
    [
      'table directory',
      (k, root) => {
        const dir = new DataView(
          k.device.bytes(root, 4096).buffer,
          k.device.bytes(root, 1).byteOffset,
        ).getUint32((SB_TABLE_CUR + TD_DIR) * 4, true);
        k.device.bytes(dir * 4096, 4).fill(0xee);
      },
    ],
  ];
  for (const [what, damage] of cases) {
    const { k2, root } = handedOver();
    damage(k2, root);
    assert.throws(() => openStore(k2, { name: 'kv' }), isEfault, what);
  }
});
