/**
 * `npm run bench -- mm`: the buddy page allocator against @thi.ng/malloc's
 * MemPool doing the same-sized allocations (4 KiB * 2^order) in one run.
 *
 * 1. alloc/free pairs per second on a 4 GiB device (1M pages): a steady
 *    working set where each pair frees a random live block and allocates a
 *    new one, order 0 only and mixed orders 0..10 (fixed-seed PRNG).
 * 2. Bring-up time for 1, 4 and 16 GiB, all free and fragmented into many
 *    extents, with a per-page release loop as the baseline it must beat.
 *
 * MemPool keeps 32-bit addresses, so a full 4 GiB buffer wraps its end
 * pointer; it gets the largest buffer it accepts, 4 GiB - 4 KiB.
 * Flags: --quick (shorter timing windows, for a smoke run).
 */
import { MemPool } from '@thi.ng/malloc';
import { PAGE_SIZE } from '../src/memory/device.js';
import { BuddyAllocator, MAX_PAGE_ORDER, type PfnRange } from '../src/mm/index.js';
import { bestMs, rate, table } from './_harness.js';

const GIB_PAGES = 2 ** 30 / PAGE_SIZE;
const POOL_BYTES = 2 ** 32 - PAGE_SIZE;
/** Warm-up that also sizes the batch of pairs per timed call. */
const CALIBRATE_NS = 20_000_000n;
/** Length of the precomputed random streams (a power of two). */
const STREAM = 1 << 16;

/** mulberry32: small, fast, and the same sequence on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

interface Workload {
  name: string;
  /** Live blocks held at all times. */
  live: number;
  orders: Uint8Array;
  slots: Uint32Array;
}

function workload(name: string, live: number, maxOrder: number, seed: number): Workload {
  const rnd = prng(seed);
  const orders = new Uint8Array(STREAM);
  const slots = new Uint32Array(STREAM);
  for (let i = 0; i < STREAM; i++) {
    orders[i] = Math.floor(rnd() * (maxOrder + 1));
    slots[i] = Math.floor(rnd() * live);
  }
  return { name, live, orders, slots };
}

/** A minimal allocator shape so both sides run the very same loop. */
interface Side {
  alloc(order: number): number;
  free(handle: number, order: number): void;
}

function buddySide(): Side {
  const b = BuddyAllocator.fromFreeRanges(4 * GIB_PAGES, [{ pfn: 0, count: 4 * GIB_PAGES }]);
  return {
    alloc: (order) => b.allocPages(order) ?? -1,
    free: (pfn, order) => b.freePages(pfn, order),
  };
}

function poolSide(): Side {
  const pool = new MemPool({ buf: new ArrayBuffer(POOL_BYTES), align: 8 });
  return {
    alloc: (order) => pool.malloc(PAGE_SIZE * 2 ** order) || -1,
    free: (addr) => {
      pool.free(addr);
    },
  };
}

/** Pairs per second and the number of allocations that failed. */
function pairsPerSecond(side: Side, w: Workload, ms: number): { rate: number; failed: number } {
  const handle = new Float64Array(w.live).fill(-1);
  const order = new Uint8Array(w.live);
  let failed = 0;
  for (let s = 0; s < w.live; s++) {
    order[s] = w.orders[s % STREAM];
    handle[s] = side.alloc(order[s]);
  }
  let k = 0;
  const pairs = (n: number): void => {
    for (let i = 0; i < n; i++) {
      const s = w.slots[k];
      if (handle[s] >= 0) side.free(handle[s], order[s]);
      const o = w.orders[k];
      const h = side.alloc(o);
      if (h < 0) failed++;
      handle[s] = h;
      order[s] = o;
      k = (k + 1) & (STREAM - 1);
    }
  };
  // Size the batch so one timed call takes about a millisecond on either side.
  let n = 0;
  const t0 = process.hrtime.bigint();
  while (process.hrtime.bigint() - t0 < CALIBRATE_NS) {
    pairs(1);
    n++;
  }
  const batch = Math.max(1, Math.round(n / Number(CALIBRATE_NS / 1_000_000n)));
  failed = 0;
  return { rate: rate(() => pairs(batch), ms) * batch, failed };
}

/** `n` extents spread over `pages`, with unaligned starts and lengths. */
function fragmented(pages: number, n: number, seed: number): PfnRange[] {
  const rnd = prng(seed);
  const slot = Math.floor(pages / n);
  const out: PfnRange[] = [];
  for (let i = 0; i < n; i++) {
    const base = i * slot + Math.floor(rnd() * (slot / 4));
    const count = Math.max(1, Math.floor(slot / 4 + rnd() * (slot / 4)));
    out.push({ pfn: base, count });
  }
  return out;
}

/** The naive bring-up: every page released one at a time. */
function perPageBringUp(pages: number, ranges: PfnRange[]): BuddyAllocator {
  const b = new BuddyAllocator(pages);
  for (const r of ranges) for (let p = r.pfn; p < r.pfn + r.count; p++) b.releaseRange(p, 1);
  return b;
}

function int(n: number): string {
  return n.toLocaleString('en-US');
}

function blockCount(b: BuddyAllocator): number {
  return b.stats().freeByOrder.reduce((a, n) => a + n, 0);
}

/** The options run() reads (`--NAME` or `--NAME=VALUE`); main.ts refuses others. */
export const options: readonly string[] = ['quick'];

export async function run(args: string[]): Promise<void> {
  const quick = args.includes('--quick');
  const ms = quick ? 200 : 1500;

  process.stdout.write(
    `alloc/free pairs per second, 4 GiB (${4 * GIB_PAGES} pages); ` +
      `@thi.ng/malloc on an ArrayBuffer of 4 GiB - 4 KiB (its largest)\n`,
  );
  const workloads = [
    workload('order 0, 1024 live', 1024, 0, 3),
    workload('order 0, 65536 live', 65536, 0, 1),
    workload(`orders 0..${MAX_PAGE_ORDER}, 1024 live`, 1024, MAX_PAGE_ORDER, 2),
  ];
  const rows: (string | number)[][] = [];
  for (const w of workloads) {
    const buddy = pairsPerSecond(buddySide(), w, ms);
    const pool = pairsPerSecond(poolSide(), w, ms);
    rows.push([
      w.name,
      buddy.rate,
      pool.rate,
      `${(buddy.rate / pool.rate).toFixed(1)}x`,
      `${buddy.failed} / ${pool.failed}`,
    ]);
  }
  table(['workload', 'buddy pairs/s', 'malloc pairs/s', 'ratio', 'failed (buddy / malloc)'], rows);

  process.stdout.write(
    '\nbring-up (best of 5), against a per-page release loop and MemPool init\n',
  );
  const cases: { name: string; pages: number; ranges: PfnRange[]; perPage: boolean }[] = [];
  for (const gib of [1, 4, 16]) {
    const pages = gib * GIB_PAGES;
    cases.push({
      name: `${gib} GiB all free`,
      pages,
      ranges: [{ pfn: 0, count: pages }],
      perPage: !quick,
    });
  }
  for (const [gib, n] of [
    [4, 10_000],
    [16, 10_000],
    [16, 100_000],
  ]) {
    const pages = gib * GIB_PAGES;
    cases.push({
      name: `${gib} GiB, ${n.toLocaleString('en-US')} extents`,
      pages,
      ranges: fragmented(pages, n, gib * n),
      perPage: !quick,
    });
  }
  const bring: (string | number)[][] = [];
  for (const c of cases) {
    const buddyMs = bestMs(() => BuddyAllocator.fromFreeRanges(c.pages, c.ranges), 5);
    const blocks = blockCount(BuddyAllocator.fromFreeRanges(c.pages, c.ranges));
    const perPageMs = c.perPage ? bestMs(() => perPageBringUp(c.pages, c.ranges), 1) : Number.NaN;
    const poolMs = bestMs(
      () => new MemPool({ buf: new ArrayBuffer(Math.min(c.pages * PAGE_SIZE, POOL_BYTES)) }),
    );
    bring.push([
      c.name,
      int(c.ranges.length),
      int(blocks),
      buddyMs,
      (buddyMs * 1e6) / c.pages,
      Number.isNaN(perPageMs) ? '-' : perPageMs,
      Number.isNaN(perPageMs) ? '-' : `${Math.round(perPageMs / buddyMs)}x`,
      poolMs,
    ]);
  }
  table(
    [
      'layout',
      'extents',
      'free blocks',
      'buddy ms',
      'ns/page',
      'per-page loop ms',
      'speed-up',
      'malloc init ms',
    ],
    bring,
  );
  process.stdout.write(
    'buddy: typed-array memmap (10 bytes/page, zeroed lazily by the engine), one native fill\n' +
      'per extent, then JS work per free block; its only per-page cost is the first touch of the\n' +
      'memmap. per-page loop: releaseRange(pfn, 1) for every free page, the bring-up it replaces.\n' +
      'malloc init: MemPool on a new ArrayBuffer of the same size (capped at 4 GiB - 4 KiB).\n',
  );
}
