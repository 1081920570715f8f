import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  BB_CRC32C,
  BB_LAST_COMP_VERSION,
  BB_MEMMAP_NR,
  BB_SETUP_DATA_OFF,
  BB_TOTAL_SIZE,
  BB_VERSION,
  MAX_CMDLINE,
  MAX_MEMMAP_ENTRIES,
  SETUP,
} from '../../src/boot/abi.js';
import {
  type BootBlockInput,
  decodeBootBlock,
  encodeBootBlock,
  findSetupData,
} from '../../src/boot/bootblock.js';
import { BootError, type BootErrorCode } from '../../src/boot/errors.js';
import { crc32c } from '../../src/memory/crc32c.js';
import { E820 } from '../../src/memory/memmap-types.js';

const id = (seed: number) => Uint8Array.from({ length: 16 }, (_, i) => (seed * 31 + i) & 0xff);

function sample(): BootBlockInput {
  return {
    generation: 7,
    bootId: id(2),
    predecessorBootId: id(1),
    cmdline: 'kho=on reserve_mem=1M:4K:trace -- --port=8080 naïve',
    memoryMap: [
      { addr: 0, size: 0x1000, type: E820.RESERVED },
      { addr: 0x1000, size: 0x3fff000, type: E820.USABLE },
      { addr: 0x4000000, size: 0x200000, type: E820.PRESERVED },
      { addr: 0x8000000, size: 2 ** 52, type: 0xdead },
    ],
    setupData: [
      { type: SETUP.KHO_FDT, data: Uint8Array.from([0xd0, 0x0d, 0xfe, 0xed, 1, 2, 3]) },
      { type: 999, data: new Uint8Array(0) },
      { type: SETUP.KHO_SCRATCH, data: new Uint8Array(40).fill(7) },
    ],
  };
}

/** Rewrites the checksum after a deliberate edit, so deeper checks are reached. */
function reseal(b: Uint8Array): Uint8Array {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const size = Math.min(dv.getUint32(BB_TOTAL_SIZE, true), b.length);
  const copy = b.slice(0, size);
  copy.fill(0, BB_CRC32C, BB_CRC32C + 4);
  dv.setUint32(BB_CRC32C, crc32c(copy), true);
  return b;
}

function edit(b: Uint8Array, fn: (dv: DataView) => void, resealed = true): Uint8Array {
  const c = b.slice();
  fn(new DataView(c.buffer));
  return resealed ? reseal(c) : c;
}

function refuses(bytes: Uint8Array, code: BootErrorCode, pattern?: RegExp, expect = {}): void {
  assert.throws(
    () => decodeBootBlock(bytes, expect),
    (e: unknown) => {
      assert.ok(e instanceof BootError, String(e));
      assert.equal(e.code, code, e.message);
      if (pattern) assert.match(e.message, pattern);
      return true;
    },
  );
}

test('round trip: every field comes back', () => {
  const input = sample();
  const bytes = encodeBootBlock(input);
  assert.equal(bytes.length % 8, 0);
  const b = decodeBootBlock(bytes, { generation: 7, predecessorBootId: id(1) });
  assert.equal(b.version, 1);
  assert.equal(b.lastCompVersion, 1);
  assert.equal(b.totalSize, bytes.length);
  assert.equal(b.generation, 7);
  assert.deepEqual(b.bootId, input.bootId);
  assert.deepEqual(b.predecessorBootId, input.predecessorBootId);
  assert.equal(b.cmdline, input.cmdline);
  assert.deepEqual(b.memoryMap, input.memoryMap);
  assert.deepEqual(b.setupData, input.setupData);
  assert.deepEqual(findSetupData(b, SETUP.KHO_SCRATCH)?.data, new Uint8Array(40).fill(7));
  assert.equal(findSetupData(b, SETUP.PKRAM), undefined);
});

test('a block inside a larger buffer at an offset decodes; empty sections are fine', () => {
  const bytes = encodeBootBlock({ ...sample(), cmdline: '', memoryMap: [], setupData: [] });
  const big = new Uint8Array(bytes.length + 4096 + 100);
  big.set(bytes, 100);
  const b = decodeBootBlock(big.subarray(100));
  assert.equal(b.cmdline, '');
  assert.deepEqual(b.memoryMap, []);
  assert.deepEqual(b.setupData, []);
});

test('truncation at every byte is EFAULT', () => {
  const bytes = encodeBootBlock(sample());
  for (let n = 0; n < bytes.length; n++) refuses(bytes.subarray(0, n), 'EFAULT', /truncated/);
});

test('any single flipped bit fails the checksum or the magic', () => {
  const bytes = encodeBootBlock(sample());
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes.slice();
    c[i] ^= 1 << (i % 8);
    refuses(c, 'EFAULT');
  }
});

test('magic, size and checksum', () => {
  const bytes = encodeBootBlock(sample());
  refuses(
    edit(bytes, (dv) => dv.setUint32(0, 0x12345678, true)),
    'EFAULT',
    /magic/,
  );
  refuses(
    edit(bytes, (dv) => dv.setUint32(BB_CRC32C, dv.getUint32(BB_CRC32C, true) ^ 1, true), false),
    'EFAULT',
    /checksum/,
  );
  refuses(
    edit(bytes, (dv) => dv.setUint32(BB_TOTAL_SIZE, 8, true)),
    'EFAULT',
    /total size/,
  );
  refuses(
    edit(bytes, (dv) => dv.setUint32(BB_TOTAL_SIZE, 0xffffffff, true), false),
    'EFAULT',
    /total size/,
  );
});

test('a block needing a newer reader is EPROTO; a newer but compatible one is read', () => {
  const bytes = encodeBootBlock(sample());
  refuses(
    edit(bytes, (dv) => {
      dv.setUint16(BB_VERSION, 3, true);
      dv.setUint16(BB_LAST_COMP_VERSION, 2, true);
    }),
    'EPROTO',
  );
  const newer = edit(bytes, (dv) => dv.setUint16(BB_VERSION, 2, true));
  assert.equal(decodeBootBlock(newer).version, 2);
  refuses(
    edit(bytes, (dv) => dv.setUint16(BB_VERSION, 0, true)),
    'EFAULT',
    /version/,
  );
  refuses(
    edit(bytes, (dv) => dv.setUint16(BB_LAST_COMP_VERSION, 0, true)),
    'EFAULT',
    /version/,
  );
});

test('counts, lengths and memory map entries are bounded and checked', () => {
  const bytes = encodeBootBlock(sample());
  const dv0 = new DataView(bytes.buffer);
  const memmapOff = dv0.getUint32(0x48, true);
  refuses(
    edit(bytes, (dv) => dv.setUint32(0x44, MAX_CMDLINE + 1, true)),
    'EFAULT',
    /command line/,
  );
  refuses(
    edit(bytes, (dv) => dv.setUint32(0x44, bytes.length, true)),
    'EFAULT',
    /outside/,
  );
  refuses(
    edit(bytes, (dv) => dv.setUint32(0x40, 0x10, true)),
    'EFAULT',
    /outside/,
  );
  refuses(
    edit(bytes, (d) => d.setUint8(0x60, 0xff)),
    'EFAULT',
    /UTF-8/,
  );
  refuses(
    edit(bytes, (d) => d.setUint8(0x60, 0)),
    'EFAULT',
    /NUL/,
  );
  refuses(
    edit(bytes, (dv) => dv.setUint32(BB_MEMMAP_NR, MAX_MEMMAP_ENTRIES + 1, true)),
    'EFAULT',
    /entries/,
  );
  refuses(
    edit(bytes, (dv) => dv.setUint32(BB_MEMMAP_NR, 5000, true)),
    'EFAULT',
    /outside/,
  );
  // Entry 1: zero size, unsorted, address past 2^53, end past 2^53, reserved field.
  const e1 = memmapOff + 24;
  refuses(
    edit(bytes, (dv) => dv.setUint32(e1 + 8, 0, true)),
    'EFAULT',
    /size/,
  );
  refuses(
    edit(bytes, (dv) => dv.setUint32(e1, 0, true)),
    'EFAULT',
    /overlaps/,
  );
  refuses(
    edit(bytes, (dv) => dv.setUint32(e1 + 4, 0x200000, true)),
    'EFAULT',
    /2\^53/,
  );
  const e3 = memmapOff + 3 * 24;
  refuses(
    edit(bytes, (dv) => dv.setUint32(e3 + 4, 0x1fffff, true)),
    'EFAULT',
    /2\^53/,
  );
  refuses(
    edit(bytes, (dv) => dv.setUint32(e1 + 20, 1, true)),
    'EFAULT',
    /reserved/,
  );
});

test('the setup_data chain stays inside the block and cannot loop', () => {
  const bytes = encodeBootBlock(sample());
  const first = new DataView(bytes.buffer).getUint32(BB_SETUP_DATA_OFF, true);
  refuses(
    edit(bytes, (dv) => dv.setUint32(BB_SETUP_DATA_OFF, bytes.length, true)),
    'EFAULT',
    /outside/,
  );
  refuses(
    edit(bytes, (dv) => dv.setUint32(BB_SETUP_DATA_OFF, first + 4, true)),
    'EFAULT',
    /outside/,
  );
  refuses(
    edit(bytes, (dv) => dv.setUint32(BB_SETUP_DATA_OFF, 8, true)),
    'EFAULT',
    /outside/,
  );
  refuses(
    edit(bytes, (dv) => dv.setUint32(first + 12, bytes.length, true)),
    'EFAULT',
    /run past/,
  );
  refuses(
    edit(bytes, (dv) => dv.setUint32(first + 8, 0, true)),
    'EFAULT',
    /type 0/,
  );
  // A next pointing back at itself, or far away.
  refuses(
    edit(bytes, (dv) => dv.setUint32(first, first, true)),
    'EFAULT',
    /bad next/,
  );
  refuses(
    edit(bytes, (dv) => dv.setUint32(first + 4, 0x40000000, true)),
    'EFAULT',
    /bad next/,
  );
  refuses(
    edit(bytes, (dv) => dv.setUint32(first, bytes.length + 8, true)),
    'EFAULT',
    /outside/,
  );
});

test('a stale or repeated block is ESTALE', () => {
  const bytes = encodeBootBlock(sample());
  // The device moved on to generation 8: the block for 7 was already consumed.
  refuses(bytes, 'ESTALE', /generation 7/, { generation: 8 });
  refuses(bytes, 'ESTALE', /another boot/, { generation: 7, predecessorBootId: id(9) });
  // Checks come after validation: a corrupt block is EFAULT whatever is expected.
  const c = bytes.slice();
  c[c.length - 1] ^= 0xff;
  refuses(c, 'EFAULT', undefined, { generation: 8 });
});

test('encode refuses out-of-range input with EINVAL', () => {
  const bad = (over: Partial<BootBlockInput>) =>
    assert.throws(
      () => encodeBootBlock({ ...sample(), ...over }),
      (e: unknown) => e instanceof BootError && e.code === 'EINVAL',
    );
  bad({ generation: -1 });
  bad({ generation: 2 ** 53 });
  bad({ bootId: new Uint8Array(15) });
  bad({ predecessorBootId: new Uint8Array(17) });
  bad({ cmdline: 'x'.repeat(MAX_CMDLINE + 1) });
  bad({ cmdline: 'a\0b' });
  bad({
    memoryMap: [
      { addr: 0x1000, size: 0x1000, type: 1 },
      { addr: 0, size: 0x2000, type: 1 },
    ],
  });
  bad({ memoryMap: [{ addr: 0, size: 0, type: 1 }] });
  bad({ memoryMap: [{ addr: 2 ** 53 - 4096, size: 8192, type: 1 }] });
  bad({ setupData: [{ type: SETUP.NONE, data: new Uint8Array(1) }] });
  bad({ setupData: [{ type: 1, data: new Uint8Array(5 * 2 ** 20) }] });
});

test('fuzz: 10,000 mutated blocks decode or throw BootError, nothing else', () => {
  const base = encodeBootBlock(sample());
  const mutation = fc.record({
    edits: fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), {
      minLength: 1,
      maxLength: 6,
    }),
    // Word-sized edits hit lengths and offsets with large values.
    word: fc.option(fc.tuple(fc.nat(base.length / 4 - 1), fc.nat(0xffffffff)), { nil: undefined }),
    cut: fc.option(fc.nat(base.length), { nil: undefined }),
    reseal: fc.boolean(),
  });
  let decoded = 0;
  fc.assert(
    fc.property(mutation, (m) => {
      let b = base.slice();
      for (const [i, v] of m.edits) b[i] = v;
      if (m.word) new DataView(b.buffer).setUint32(m.word[0] * 4, m.word[1], true);
      if (m.reseal) reseal(b);
      if (m.cut !== undefined) b = b.subarray(0, m.cut);
      try {
        const r = decodeBootBlock(b, { generation: 7 });
        decoded++;
        assert.ok(r.totalSize <= b.length);
      } catch (e) {
        if (!(e instanceof BootError)) throw e;
      }
    }),
    { numRuns: 10_000 },
  );
  // Some mutations (in data bytes, resealed) must still decode.
  assert.ok(decoded > 0);
});

test('a memory map entry of type 0 is refused: EINVAL to encode, EFAULT to decode', () => {
  const map = [{ addr: 0x1000, size: 0x1000, type: 0 }];
  assert.throws(
    () => encodeBootBlock({ ...sample(), memoryMap: map }),
    (e: unknown) => e instanceof BootError && e.code === 'EINVAL',
  );
  const good = encodeBootBlock({ ...sample(), memoryMap: [{ ...map[0], type: E820.USABLE }] });
  // A resealed block with a type-0 range would make the memory map throw a DeviceError later.
  const bad = edit(good, (dv) => dv.setUint32(dv.getUint32(BB_MEMMAP_NR - 4, true) + 16, 0, true));
  refuses(bad, 'EFAULT', /bad type 0/);
});
