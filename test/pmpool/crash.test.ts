/**
 * Crash consistency: a writer killed after any store of an alloc, a release
 * or a recovery leaves a pool where no page is handed out twice, at most the
 * in-flight operation's pages leak, and check({ repair: true }) reclaims them.
 * Kills are injected through the pool's beforeStore hook.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { PAGE_SIZE } from '../../src/memory/device.js';
import { HeapDevice } from '../../src/memory/heap.js';
import { CmaPool } from '../../src/pmpool/cma.js';

const BASE = 5 * PAGE_SIZE; // base pfn 5: alignment is on absolute pfns
const PAGES = 300; // not a multiple of 32: tail bits in play
const BASE_PFN = BASE / PAGE_SIZE;

class Killed extends Error {}

/** A beforeStore hook that lets `n` stores through and kills the writer at the next. */
function killAfter(n: number): { hook: () => void; stores: () => number } {
  let done = 0;
  return {
    hook: () => {
      if (done === n) throw new Killed(`killed after store ${n}`);
      done++;
    },
    stores: () => done,
  };
}

/** Pool pages in use, as a 0/1 array (metadata included). */
function bitmapOf(pool: CmaPool): Uint8Array {
  const out = new Uint8Array(PAGES);
  for (let i = 0; i < PAGES; i++) out[i] = pool.isAllocated(BASE_PFN + i) ? 1 : 0;
  return out;
}

function mark(model: Uint8Array, pfn: number, count: number, v: 0 | 1): void {
  model.fill(v, pfn - BASE_PFN, pfn - BASE_PFN + count);
}

type Op =
  | { kind: 'alloc'; count: number; align: number }
  | { kind: 'release'; pfn: number; count: number };

interface Scenario {
  readonly name: string;
  /** Allocations (and releases) made before the operation under test; returns the model. */
  setup(pool: CmaPool): Uint8Array;
  readonly op: Op;
}

function runOp(pool: CmaPool, op: Op): { pfn: number; count: number } | boolean | null {
  return op.kind === 'alloc' ? pool.alloc(op.count, op.align) : pool.release(op.pfn, op.count);
}

/**
 * Kills `op` after each store in turn; checks the pool before and after repair.
 * @returns how many kill points were tried.
 */
function killEverywhere(s: Scenario): number {
  const device = new HeapDevice((BASE_PFN + PAGES + 8) * PAGE_SIZE);
  const pool = CmaPool.format(device, BASE, PAGES * PAGE_SIZE, { generation: 1 });
  const model = s.setup(pool);
  const snapshot = device.bytes(0, device.size).slice();
  // A run to completion gives the store count and the bitmap once done.
  const dry = killAfter(-1);
  runOp(CmaPool.attach(device, BASE, PAGES * PAGE_SIZE, { beforeStore: dry.hook }), s.op);
  const done = bitmapOf(CmaPool.attach(device, BASE, PAGES * PAGE_SIZE));
  for (let n = 0; ; n++) {
    device.bytes(0, device.size).set(snapshot);
    const kill = killAfter(n);
    const writer = CmaPool.attach(device, BASE, PAGES * PAGE_SIZE, { beforeStore: kill.hook });
    let result: ReturnType<typeof runOp> = null;
    let killed = false;
    try {
      result = runOp(writer, s.op);
    } catch (e) {
      if (!(e instanceof Killed)) throw e;
      killed = true;
    }
    const expected = model.slice();
    if (!killed) {
      // Ran to completion: the model follows the operation.
      if (s.op.kind === 'alloc') {
        assert.ok(result !== null && typeof result === 'object', `${s.name}: alloc failed`);
        mark(expected, result.pfn, result.count, 1);
      } else {
        assert.equal(result, true);
        mark(expected, s.op.pfn, s.op.count, 0);
      }
      assert.deepEqual(bitmapOf(writer), expected, `${s.name}: completed op`);
      assert.equal(writer.check().ok, true);
      return n;
    }
    if (n === dry.stores() - 1) {
      // Killed at the retire's last store (the crc made invalid): op is NONE, the operation is done.
      const after = CmaPool.attach(device, BASE, PAGES * PAGE_SIZE, { repair: false });
      assert.equal(after.attachReport?.ok, true, `${s.name} n=${n}: retired`);
      assert.deepEqual(bitmapOf(after), done, `${s.name} n=${n}: done once op is NONE`);
      continue;
    }
    // Before repair: every page the model holds is still used, extra pages only in the op's range.
    const before = CmaPool.attach(device, BASE, PAGES * PAGE_SIZE, { repair: false });
    const seen = bitmapOf(before);
    const report = before.attachReport;
    assert.ok(report !== null);
    const range =
      report.intent === null
        ? null
        : {
            lo: report.intent.pfn - BASE_PFN,
            hi: report.intent.pfn - BASE_PFN + report.intent.count,
          };
    for (let i = 0; i < PAGES; i++) {
      const inRange = range !== null && i >= range.lo && i < range.hi;
      if (model[i] === 1 && seen[i] === 0) {
        assert.ok(
          s.op.kind === 'release' && inRange,
          `${s.name} n=${n}: page ${i} lost while live`,
        );
      }
      if (model[i] === 0 && seen[i] === 1) {
        assert.ok(inRange, `${s.name} n=${n}: page ${i} leaked outside the in-flight op`);
      }
    }
    if (report.intent !== null) assert.equal(report.intent.op, s.op.kind);
    // After repair: an alloc never happened; a release happened once committed.
    if (s.op.kind === 'release' && report.intent !== null) mark(expected, s.op.pfn, s.op.count, 0);
    const after = CmaPool.attach(device, BASE, PAGES * PAGE_SIZE);
    assert.deepEqual(bitmapOf(after), expected, `${s.name} n=${n}: after repair`);
    assert.equal(after.check().ok, true, `${s.name} n=${n}: clean after repair`);
    // And the pool keeps working: a fresh alloc never lands on a live page.
    const r = after.alloc(3);
    if (r !== null) {
      for (let pfn = r.pfn; pfn < r.pfn + 3; pfn++) assert.equal(expected[pfn - BASE_PFN], 0);
    }
  }
}

const modelOf = (pool: CmaPool): Uint8Array => bitmapOf(pool);

const SCENARIOS: Scenario[] = [
  { name: 'first alloc of one page', setup: modelOf, op: { kind: 'alloc', count: 1, align: 1 } },
  {
    name: 'aligned alloc across three words between live ranges',
    setup: (pool) => {
      pool.alloc(20);
      pool.alloc(7, 4);
      return modelOf(pool);
    },
    op: { kind: 'alloc', count: 70, align: 8 },
  },
  {
    name: 'alloc after wrap into a hole',
    setup: (pool) => {
      const a = pool.alloc(100);
      pool.alloc(PAGES - 102);
      assert.ok(a);
      pool.release(a.pfn + 30, 40);
      return modelOf(pool);
    },
    op: { kind: 'alloc', count: 33, align: 1 },
  },
  {
    name: 'release of one page',
    setup: (pool) => {
      pool.alloc(5);
      return modelOf(pool);
    },
    op: { kind: 'release', pfn: BASE_PFN + 4, count: 1 },
  },
  {
    name: 'release of a range across four words',
    setup: (pool) => {
      pool.alloc(200);
      return modelOf(pool);
    },
    op: { kind: 'release', pfn: BASE_PFN + 10, count: 100 },
  },
];

describe('kill after every store', () => {
  for (const s of SCENARIOS) {
    it(s.name, () => {
      const points = killEverywhere(s);
      assert.ok(points >= 7, `only ${points} stores: intent fields, commit, bitmap, retire`);
    });
  }

  it('a writer killed during recovery is recovered by the next attach', () => {
    const device = new HeapDevice((BASE_PFN + PAGES + 8) * PAGE_SIZE);
    const pool = CmaPool.format(device, BASE, PAGES * PAGE_SIZE);
    pool.alloc(50);
    const model = modelOf(pool);
    // Leave an alloc of 90 pages in flight with its bitmap words written.
    const kill = killAfter(5 + 3);
    const writer = CmaPool.attach(device, BASE, PAGES * PAGE_SIZE, { beforeStore: kill.hook });
    assert.throws(() => writer.alloc(90), Killed);
    const snapshot = device.bytes(0, device.size).slice();
    for (let n = 0; ; n++) {
      device.bytes(0, device.size).set(snapshot);
      const k = killAfter(n);
      try {
        CmaPool.attach(device, BASE, PAGES * PAGE_SIZE, { beforeStore: k.hook });
      } catch (e) {
        if (!(e instanceof Killed)) throw e;
        const again = CmaPool.attach(device, BASE, PAGES * PAGE_SIZE);
        // Still in flight, unless killed at the retire's last store (recovery done).
        if (again.attachReport?.intent === null) assert.equal(again.attachReport.ok, true);
        else assert.equal(again.attachReport?.intent?.op, 'alloc', `n=${n}`);
        assert.deepEqual(bitmapOf(again), model, `n=${n}`);
        continue;
      }
      assert.ok(n >= 3, 'recovery clears three words and retires the intent');
      assert.deepEqual(bitmapOf(CmaPool.attach(device, BASE, PAGES * PAGE_SIZE)), model);
      break;
    }
  });
});

type Cmd =
  | { kind: 'alloc'; count: number; alignLog: number }
  | { kind: 'release'; pick: number; part: number };

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({
    kind: fc.constant('alloc' as const),
    count: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 90 })),
    alignLog: fc.integer({ min: 0, max: 5 }),
  }),
  fc.record({
    kind: fc.constant('release' as const),
    pick: fc.nat(),
    part: fc.integer({ min: 0, max: 2 }),
  }),
);

describe('random histories with random kills, against a per-page model', () => {
  it('keeps the bitmap equal to the model after every repair', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ cmd: cmdArb, kill: fc.option(fc.nat({ max: 12 }), { freq: 3 }) }), {
          minLength: 1,
          maxLength: 60,
        }),
        (history) => {
          const device = new HeapDevice((BASE_PFN + PAGES) * PAGE_SIZE);
          CmaPool.format(device, BASE, PAGES * PAGE_SIZE);
          const model = new Uint8Array(PAGES);
          model[0] = 1;
          model[1] = 1;
          const live: { pfn: number; count: number }[] = [];
          let pool = CmaPool.attach(device, BASE, PAGES * PAGE_SIZE);
          for (const { cmd, kill } of history) {
            const k = kill === null ? null : killAfter(kill);
            pool = CmaPool.attach(device, BASE, PAGES * PAGE_SIZE, { beforeStore: k?.hook });
            let target: { pfn: number; count: number } | null = null;
            try {
              if (cmd.kind === 'alloc') {
                const align = 2 ** cmd.alignLog;
                const r = pool.alloc(cmd.count, align);
                if (r === null) {
                  assert.ok(
                    largestAlignedFree(model, cmd.count, align) === false,
                    'alloc gave up too early',
                  );
                } else {
                  assert.equal(r.count, cmd.count);
                  assert.equal(r.pfn % align, 0);
                  for (let i = r.pfn - BASE_PFN; i < r.pfn - BASE_PFN + r.count; i++) {
                    assert.equal(model[i], 0, `page ${i} handed out twice`);
                  }
                  mark(model, r.pfn, r.count, 1);
                  live.push(r);
                }
              } else if (live.length > 0) {
                const idx = cmd.pick % live.length;
                const whole = live[idx];
                // Release the whole range, its first half, or its last page.
                const half = Math.max(1, whole.count >> 1);
                target =
                  cmd.part === 0 || whole.count === 1
                    ? whole
                    : cmd.part === 1
                      ? { pfn: whole.pfn, count: half }
                      : { pfn: whole.pfn + whole.count - 1, count: 1 };
                assert.equal(pool.release(target.pfn, target.count), true);
                mark(model, target.pfn, target.count, 0);
                shrink(live, idx, target);
                assert.equal(pool.release(target.pfn, target.count), false, 'double release');
              }
            } catch (e) {
              if (!(e instanceof Killed)) throw e;
              // A committed release is completed by recovery; an alloc is undone.
              const probe = CmaPool.attach(device, BASE, PAGES * PAGE_SIZE, { repair: false });
              // No intent but a changed bitmap: killed at the retire's last store, the op done.
              const seen = bitmapOf(probe);
              const changed = seen.findIndex((v, i) => v !== model[i]);
              const retired = probe.attachReport?.intent == null && changed >= 0;
              if (retired && cmd.kind === 'alloc') {
                // The alloc is done, its pages held (by nobody: the caller was killed).
                const r = { pfn: BASE_PFN + changed, count: cmd.count };
                mark(model, r.pfn, r.count, 1);
                live.push(r);
              }
              if (target !== null && (retired || probe.attachReport?.intent != null)) {
                mark(model, target.pfn, target.count, 0);
                shrink(
                  live,
                  live.indexOf(
                    live.find((r) => r.pfn <= target!.pfn && target!.pfn < r.pfn + r.count)!,
                  ),
                  target,
                );
              }
              pool = CmaPool.attach(device, BASE, PAGES * PAGE_SIZE);
              assert.equal(pool.check().ok, true);
            }
            assert.deepEqual(bitmapOf(pool), model);
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});

/** True when the model has `count` free pages starting at a pfn aligned to `align`. */
function largestAlignedFree(model: Uint8Array, count: number, align: number): boolean {
  for (
    let pfn = Math.ceil(BASE_PFN / align) * align;
    pfn + count <= BASE_PFN + PAGES;
    pfn += align
  ) {
    let free = true;
    for (let i = pfn - BASE_PFN; i < pfn - BASE_PFN + count; i++) {
      if (model[i] !== 0) {
        free = false;
        break;
      }
    }
    if (free) return true;
  }
  return false;
}

/** Removes `part` (a prefix, a suffix or all of live[idx]) from the live list. */
function shrink(
  live: { pfn: number; count: number }[],
  idx: number,
  part: { pfn: number; count: number },
): void {
  const whole = live[idx];
  live.splice(idx, 1);
  if (part.pfn > whole.pfn) live.push({ pfn: whole.pfn, count: part.pfn - whole.pfn });
  const end = part.pfn + part.count;
  if (end < whole.pfn + whole.count) live.push({ pfn: end, count: whole.pfn + whole.count - end });
}
