import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DeviceError } from '../../src/memory/errors.js';
import { MemoryMap } from '../../src/memory/memmap.js';
import { E820, isUsableType } from '../../src/memory/memmap-types.js';

const { USABLE, RESERVED, RESERVED_KERN, PRESERVED, SCRATCH } = E820;

test('memmap: prints like the kernel, inclusive end, 16 hex digits', () => {
  const m = new MemoryMap()
    .add(0, 0x9fc00, USABLE)
    .add(0x9fc00, 0x400, RESERVED)
    .add(0x100000, 0x7ff00000, USABLE)
    .add(0x80000000, 0x1000, RESERVED_KERN)
    .add(0x80001000, 0x1000, PRESERVED)
    .add(0x80002000, 0x1000, SCRATCH)
    .add(0x80003000, 0x1000, 77);
  assert.deepEqual(m.print(), [
    'BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable',
    'BIOS-e820: [mem 0x000000000009fc00-0x000000000009ffff] reserved',
    'BIOS-e820: [mem 0x0000000000100000-0x000000007fffffff] usable',
    'BIOS-e820: [mem 0x0000000080000000-0x0000000080000fff] reserved by kernel',
    'BIOS-e820: [mem 0x0000000080001000-0x0000000080001fff] preserved',
    'BIOS-e820: [mem 0x0000000080002000-0x0000000080002fff] kho scratch',
    'BIOS-e820: [mem 0x0000000080003000-0x0000000080003fff] type 77',
  ]);
  assert.equal(m.print('user')[0], 'user: [mem 0x0000000000000000-0x000000000009fbff] usable');
  assert.equal(isUsableType(77), false);
});

test('memmap: overlaps resolve to the larger type, like e820__update_table', () => {
  const m = new MemoryMap().add(0, 0x10000, USABLE).add(0x4000, 0x2000, RESERVED);
  assert.deepEqual(m.entries(), [
    { base: 0, size: 0x4000, type: USABLE },
    { base: 0x4000, size: 0x2000, type: RESERVED },
    { base: 0x6000, size: 0xa000, type: USABLE },
  ]);
  // usable added over reserved frees nothing.
  m.add(0, 0x20000, USABLE);
  assert.deepEqual(m.entries(), [
    { base: 0, size: 0x4000, type: USABLE },
    { base: 0x4000, size: 0x2000, type: RESERVED },
    { base: 0x6000, size: 0x1a000, type: USABLE },
  ]);
  // Partial overlaps on both sides, and a range covering several.
  const n = MemoryMap.from([
    { base: 0x1000, size: 0x2000, type: RESERVED },
    { base: 0x2000, size: 0x2000, type: USABLE },
    { base: 0x0, size: 0x1800, type: USABLE },
  ]);
  assert.deepEqual(n.entries(), [
    { base: 0, size: 0x1000, type: USABLE },
    { base: 0x1000, size: 0x2000, type: RESERVED },
    { base: 0x3000, size: 0x1000, type: USABLE },
  ]);
});

test('memmap: adjacent and overlapping ranges of one type merge; empty ones vanish', () => {
  const m = MemoryMap.from([
    { base: 0x3000, size: 0x1000, type: USABLE },
    { base: 0x0, size: 0x1000, type: USABLE },
    { base: 0x1000, size: 0x2000, type: USABLE },
    { base: 0x3800, size: 0x1000, type: USABLE },
    { base: 0x9000, size: 0, type: RESERVED },
  ]);
  assert.deepEqual(m.entries(), [{ base: 0, size: 0x4800, type: USABLE }]);
  m.add(0x5000, 0, RESERVED);
  assert.equal(m.length, 1);
});

test('memmap: update splits at the edges and only retypes the old type', () => {
  const m = new MemoryMap().add(0, 0x10000, USABLE).add(0x10000, 0x1000, RESERVED);
  m.update(0x2000, 0x10000, USABLE, PRESERVED);
  assert.deepEqual(m.entries(), [
    { base: 0, size: 0x2000, type: USABLE },
    { base: 0x2000, size: 0xe000, type: PRESERVED },
    { base: 0x10000, size: 0x1000, type: RESERVED },
  ]);
  m.update(0x3000, 0x1000, PRESERVED, USABLE);
  assert.deepEqual(m.find(0x3800), { base: 0x3000, size: 0x1000, type: USABLE });
  assert.equal(m.totalOf(PRESERVED), 0xd000);
  assert.throws(() => m.update(0, 1, USABLE, USABLE), DeviceError);
});

test('memmap: remove cuts holes, optionally by type', () => {
  const m = new MemoryMap().add(0, 0x4000, USABLE).add(0x4000, 0x4000, RESERVED);
  m.remove(0x3000, 0x2000, USABLE);
  assert.deepEqual(m.entries(), [
    { base: 0, size: 0x3000, type: USABLE },
    { base: 0x4000, size: 0x4000, type: RESERVED },
  ]);
  m.remove(0x1000, 0x4000);
  assert.deepEqual(m.entries(), [
    { base: 0, size: 0x1000, type: USABLE },
    { base: 0x5000, size: 0x3000, type: RESERVED },
  ]);
  assert.equal(m.find(0x2000), undefined);
  assert.equal(m.find(0x8000), undefined);
  assert.deepEqual(m.find(0), { base: 0, size: 0x1000, type: USABLE });
});

test('memmap: clone is independent; bad arguments are EINVAL', () => {
  const m = new MemoryMap().add(0, 0x1000, USABLE);
  const c = m.clone().add(0x1000, 0x1000, USABLE);
  assert.equal(m.totalOf(USABLE), 0x1000);
  assert.equal(c.totalOf(USABLE), 0x2000);
  const bad = (f: () => unknown) =>
    assert.throws(f, (e: unknown) => e instanceof DeviceError && e.code === 'EINVAL');
  bad(() => m.add(-1, 10, USABLE));
  bad(() => m.add(0, -1, USABLE));
  bad(() => m.add(0.5, 1, USABLE));
  bad(() => m.add(2 ** 53, 1, USABLE));
  bad(() => m.add(2 ** 52, 2 ** 52, USABLE));
  bad(() => m.add(0, 1, 0));
  bad(() => m.add(0, 1, 2 ** 32));
  bad(() => m.remove(0, Number.NaN));
  bad(() => m.update(0, 1, USABLE, 1.5));
});

test('memmap: after any history the map is sanitized and matches a per-byte model', () => {
  const SPAN = 64;
  const types = [USABLE, RESERVED, RESERVED_KERN, PRESERVED, SCRATCH];
  const op = fc.record({
    kind: fc.constantFrom('add', 'remove', 'removeType', 'update'),
    addr: fc.integer({ min: 0, max: SPAN - 1 }),
    size: fc.integer({ min: 0, max: 24 }),
    type: fc.constantFrom(...types),
    type2: fc.constantFrom(...types),
  });
  fc.assert(
    fc.property(fc.array(op, { maxLength: 30 }), (ops) => {
      const m = new MemoryMap();
      const model = new Array<number>(SPAN + 24).fill(0);
      for (const o of ops) {
        const end = o.addr + o.size;
        if (o.kind === 'add') {
          m.add(o.addr, o.size, o.type);
          for (let i = o.addr; i < end; i++) model[i] = Math.max(model[i], o.type);
        } else if (o.kind === 'remove') {
          m.remove(o.addr, o.size);
          for (let i = o.addr; i < end; i++) model[i] = 0;
        } else if (o.kind === 'removeType') {
          m.remove(o.addr, o.size, o.type);
          for (let i = o.addr; i < end; i++) if (model[i] === o.type) model[i] = 0;
        } else if (o.type !== o.type2) {
          m.update(o.addr, o.size, o.type, o.type2);
          for (let i = o.addr; i < end; i++) if (model[i] === o.type) model[i] = o.type2;
        }
        const e = m.entries();
        for (let i = 0; i < e.length; i++) {
          assert.ok(e[i].size > 0);
          if (i > 0) {
            const prev = e[i - 1];
            assert.ok(prev.base + prev.size <= e[i].base, 'sorted, not overlapping');
            if (prev.base + prev.size === e[i].base)
              assert.notEqual(prev.type, e[i].type, 'merged');
          }
        }
        const seen = new Array<number>(model.length).fill(0);
        for (const r of e) for (let i = r.base; i < r.base + r.size; i++) seen[i] = r.type;
        assert.deepEqual(seen, model);
        for (const t of types) assert.equal(m.totalOf(t), model.filter((x) => x === t).length);
        for (let i = 0; i < model.length; i++) assert.equal(m.find(i)?.type ?? 0, model[i]);
      }
    }),
  );
});

test('memmap: addAll and updateAll equal add and update one range at a time, sanitizing once', () => {
  const types = [USABLE, RESERVED, RESERVED_KERN, PRESERVED, SCRATCH];
  const range = fc.record({
    base: fc.integer({ min: 0, max: 63 }),
    size: fc.integer({ min: 0, max: 24 }),
    type: fc.constantFrom(...types),
  });
  fc.assert(
    fc.property(
      fc.array(range, { maxLength: 12 }),
      fc.array(range, { maxLength: 12 }),
      fc.constantFrom(...types),
      fc.constantFrom(...types),
      (start, batch, from, to) => {
        const one = MemoryMap.from(start);
        const all = MemoryMap.from(start);
        for (const r of batch) one.add(r.base, r.size, r.type);
        const sweeps = countSweeps(() => all.addAll(batch));
        assert.deepEqual(all.entries(), one.entries());
        assert.ok(sweeps <= 1, `${sweeps} sweeps for ${batch.length} ranges`);
        if (from === to) return;
        for (const r of batch) one.update(r.base, r.size, from, to);
        const retypes = countSweeps(() => all.updateAll(batch, from, to));
        assert.deepEqual(all.entries(), one.entries());
        assert.ok(retypes <= 1, `${retypes} sweeps for ${batch.length} ranges`);
      },
    ),
  );
});

test('memmap: a bad range anywhere in addAll or updateAll is EINVAL and changes nothing', () => {
  const m = new MemoryMap().add(0, 0x10000, USABLE);
  const before = m.entries();
  const bad = (fn: () => unknown) =>
    assert.throws(fn, (e: unknown) => e instanceof DeviceError && e.code === 'EINVAL');
  bad(() =>
    m.addAll([
      { base: 0x1000, size: 0x1000, type: RESERVED },
      { base: -1, size: 1, type: RESERVED },
    ]),
  );
  bad(() =>
    m.addAll([
      { base: 0x1000, size: 0x1000, type: RESERVED },
      { base: 0, size: 1, type: 0 },
    ]),
  );
  bad(() =>
    m.updateAll(
      [
        { base: 0, size: 0x1000 },
        { base: 0.5, size: 1 },
      ],
      USABLE,
      RESERVED,
    ),
  );
  bad(() => m.updateAll([{ base: 0, size: 0x1000 }], USABLE, USABLE));
  bad(() => m.addAll(42 as never));
  bad(() => m.addAll([{ base: 0x1000, size: 0x1000, type: RESERVED }, null as never]));
  bad(() => m.updateAll(undefined as never, USABLE, RESERVED));
  assert.deepEqual(m.entries(), before);
  // MemoryMap.from checks its ranges the same way.
  bad(() => MemoryMap.from(42 as never));
  bad(() => MemoryMap.from([{ base: 0, size: 0x1000, type: RESERVED }, null as never]));
  bad(() => MemoryMap.from([{ base: 0, size: 0x1000, type: 0 }]));
});

test('memmap: thousands of overlapping ranges of distinct types resolve like the kernel', () => {
  const n = 4000;
  const ranges = Array.from({ length: n }, (_, i) => ({ base: 2 * i, size: 3, type: i + 1 }));
  const e = MemoryMap.from(ranges).entries();
  assert.equal(e.length, n);
  // Each range loses its last byte to the next one, of a larger type.
  assert.deepEqual(e[0], { base: 0, size: 2, type: 1 });
  assert.deepEqual(e[1234], { base: 2468, size: 2, type: 1235 });
  assert.deepEqual(e[n - 1], { base: 2 * (n - 1), size: 3, type: n });
});

/** How many times fn sanitizes a map (each sanitize sweeps the whole map). */
function countSweeps(fn: () => unknown): number {
  const proto = MemoryMap.prototype;
  const original = proto.sanitize;
  let n = 0;
  proto.sanitize = function (this: MemoryMap) {
    n++;
    return original.call(this);
  };
  try {
    fn();
  } finally {
    proto.sanitize = original;
  }
  return n;
}

test('memmap: coarsened gives the smallest usable gaps between kept ranges to them, never losing a kept byte', () => {
  const map = new MemoryMap();
  map.add(0, 0x100000, E820.USABLE);
  // kept ranges at 0x10000, 0x30000, 0x34000, 0x80000 (gaps of 0x1c000, 0x3000, 0x4b000)
  for (const at of [0x10000, 0x30000, 0x34000, 0x80000]) map.add(at, 0x1000, E820.PRESERVED);
  assert.equal(map.length, 9);
  const c = map.coarsened(7);
  assert.ok(c.length <= 7);
  assert.deepEqual(
    c
      .entries()
      .filter((r) => r.type === E820.PRESERVED)
      .map((r) => [r.base, r.size]),
    [
      [0x10000, 0x1000],
      [0x30000, 0x5000],
      [0x80000, 0x1000],
    ],
  );
  assert.equal(map.length, 9, 'the original is untouched');
  assert.equal(map.coarsened(100).length, 9);
});
