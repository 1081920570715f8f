/**
 * The store's memory: word and byte views of the device by ref, the extents
 * it owns (each a CmaPool over its own pages), page spans allocated in them,
 * and the intent log that makes an operation's word stores all-or-nothing.
 */
import type { MemoryDevice } from '../memory/device.js';
import { CmaPool } from '../pmpool/cma.js';
import { PmpoolError } from '../pmpool/errors.js';
import {
  EXT_ENTRY_WORDS,
  EXT_FIRST,
  EXT_HERE,
  EXT_NEXT,
  EXT_PER_PAGE,
  EXTENT_KERNEL,
  EXTENT_POOL,
  LOG_COUNT,
  LOG_ENTRY_WORDS,
  LOG_FIRST,
  LOG_MAX,
  LOG_OP,
  OP_COMMITTED,
  OP_NONE,
  OP_PREPARED,
  SB_EXT_COUNT,
  SB_EXT_DIR,
  SB_EXT_PAGES_HI,
  SB_EXT_PAGES_LO,
  SB_LOG,
} from './abi.js';
import { damaged, StoreError } from './errors.js';

const PAGE = 4096;
/** Store windows start every WIN bytes and span up to 2 * WIN: a record up to WIN fits one. */
const WIN = 2 ** 30;
/** Bytes faulted in at once ahead of new spans. */
const POPULATE_AHEAD = 2 * 1024 * 1024;
/** Refs are u32 physical addresses / 16. */
export const REF_LIMIT_BYTES = 2 ** 36;

/** An extent as this generation sees it. */
export interface Extent {
  readonly basePfn: number;
  readonly pages: number;
  readonly kind: number;
  /** Attached on first use (a successor attaches nothing it does not touch). */
  pool: CmaPool | null;
  /** Smallest span that failed since the last release here (Infinity: none). */
  failedAt: number;
  /** How far this generation has faulted its pages in (a hint, not kept). */
  populated?: number;
}

/** Where new extents come from (kernel pages); none for a store on a pmpool. */
export interface ExtentSource {
  /**
   * A run of at least `minPages` (`wantPages` if it can), preserved and
   * owned by the store, starting at `after` when the pages there are free
   * (so that the store's extents lie end to end); null when none.
   */
  take(minPages: number, wantPages: number, after: number): { pfn: number; pages: number } | null;
}

/** Extents are taken in whole blocks of this many pages (4 MiB), so that they can lie end to end. */
export const EXTENT_BLOCK_PAGES = 1024;

export class StoreMemory {
  readonly device: MemoryDevice;
  /** Byte and word views, one per window. */
  readonly u8: Uint8Array[] = [];
  readonly u32: Uint32Array[] = [];
  readonly i32: Int32Array[] = [];
  readonly extents: Extent[] = [];
  /** Super block ref (phys / 16). */
  sb = 0;
  #sbWords: Uint32Array = new Uint32Array(0);
  #sbBase = 0;
  /** Intent logging is on (a crash-safe store); `inOp` while an operation is open. */
  logging = false;
  #inOp = false;
  #count = 0;
  source: ExtentSource | null = null;
  /** Largest extent bytes the store may own (Infinity: no budget). */
  budgetPages = Number.POSITIVE_INFINITY;
  /** Fault injection for tests: called before every metadata store of an update, as a kill could land there. */
  beforeStore: (() => void) | null = null;
  /** The last allocSpan failed because growing would pass the budget. */
  overBudget = false;

  constructor(device: MemoryDevice) {
    this.device = device;
    const windows = Math.ceil(Math.min(device.size, REF_LIMIT_BYTES) / WIN);
    for (let k = 0; k < windows; k++) {
      const start = k * WIN;
      const first = device.bytes(start, Math.min(WIN, device.size - start));
      const len = Math.min(
        first.buffer.byteLength - first.byteOffset,
        2 * WIN,
        device.size - start,
      );
      const buf = first.buffer;
      this.u8.push(new Uint8Array(buf, first.byteOffset, len));
      this.u32.push(new Uint32Array(buf, first.byteOffset, len >>> 2));
      this.i32.push(new Int32Array(buf, first.byteOffset, len >>> 2));
    }
  }

  /** Sets the super block (its page is at `phys`). */
  setSuper(phys: number): void {
    this.sb = phys / 16;
    this.#sbWords = this.u32[this.sb >>> 26];
    this.#sbBase = (this.sb & 0x3ffffff) << 2;
  }

  /** A super block word. */
  sbGet(word: number): number {
    return this.#sbWords[this.#sbBase + word];
  }

  /** Stores a super block word (logged in an operation). */
  sbSet(word: number, value: number): void {
    if (this.beforeStore !== null) this.beforeStore();
    const i = this.#sbBase + word;
    if (this.#inOp) this.#log(this.sb >>> 26, i, this.#sbWords[i], value >>> 0);
    this.#sbWords[i] = value;
  }

  /** Word `word` of the object at `ref`. */
  get(ref: number, word: number): number {
    return this.u32[ref >>> 26][((ref & 0x3ffffff) << 2) + word];
  }

  /** Stores word `word` of the object at `ref`; logged in a crash-safe operation. */
  put(ref: number, word: number, value: number): void {
    if (this.beforeStore !== null) this.beforeStore();
    const k = ref >>> 26;
    const i = ((ref & 0x3ffffff) << 2) + word;
    const a = this.u32[k];
    if (this.#inOp) this.#log(k, i, a[i], value >>> 0);
    a[i] = value;
  }

  /** True when `bytes` is a view of this device's memory (a getView of this store or another). */
  holds(bytes: Uint8Array): boolean {
    const buf = bytes.buffer;
    for (let k = 0; k < this.u8.length; k++) if (this.u8[k].buffer === buf) return true;
    return false;
  }

  /** The byte view holding the object at `ref`, and its offset there. */
  bytesOf(ref: number): Uint8Array {
    return this.u8[ref >>> 26];
  }

  offsetOf(ref: number): number {
    return (ref & 0x3ffffff) << 4;
  }

  /** True when the `bytes` at `ref` lie inside the device's reachable memory. */
  inBounds(ref: number, bytes: number): boolean {
    const k = ref >>> 26;
    return k < this.u8.length && ((ref & 0x3ffffff) << 4) + bytes <= this.u8[k].length;
  }

  // ------------------------------------------------------------ intent log

  /** Opens an operation: its word stores are logged until retire(). */
  begin(): void {
    if (!this.logging) return;
    if (this.beforeStore !== null) this.beforeStore();
    this.#count = 0;
    this.#sbWords[this.#sbBase + SB_LOG + LOG_COUNT] = 0;
    Atomics.store(this.#sbI32(), this.#sbBase + SB_LOG + LOG_OP, OP_PREPARED);
    this.#inOp = true;
  }

  /** Commits the open operation: from here recovery redoes it. */
  commit(): void {
    if (!this.#inOp) return;
    this.#inOp = false;
    if (this.beforeStore !== null) this.beforeStore();
    Atomics.store(this.#sbI32(), this.#sbBase + SB_LOG + LOG_OP, OP_COMMITTED);
    if (this.beforeStore !== null) this.beforeStore();
    Atomics.store(this.#sbI32(), this.#sbBase + SB_LOG + LOG_OP, OP_NONE);
  }

  /** Undoes the open operation's stores (an error half-way), newest first. */
  rollback(): void {
    if (!this.#inOp) return;
    this.#inOp = false;
    this.#undo(this.#count);
    Atomics.store(this.#sbI32(), this.#sbBase + SB_LOG + LOG_OP, OP_NONE);
  }

  /**
   * Recovers the operation a killed process left: a prepared one is undone,
   * a committed one redone. Both are idempotent.
   * @returns what was found.
   */
  recover(): 'none' | 'undone' | 'redone' {
    const base = this.#sbBase + SB_LOG;
    const op = this.#sbWords[base + LOG_OP];
    if (op === OP_NONE) return 'none';
    const count = this.#sbWords[base + LOG_COUNT];
    if ((op !== OP_PREPARED && op !== OP_COMMITTED) || count > LOG_MAX) {
      throw damaged(this.sb * 16, `intent log op ${op} with ${count} entries`);
    }
    for (let e = 0; e < count; e++) {
      const at = base + LOG_FIRST + e * LOG_ENTRY_WORDS;
      const k = this.#sbWords[at];
      const i = this.#sbWords[at + 1];
      if (k >= this.u32.length || i >= this.u32[k].length) {
        throw damaged(this.sb * 16, `intent log entry ${e} points outside the device`);
      }
    }
    if (op === OP_PREPARED) this.#undo(count);
    else {
      for (let e = 0; e < count; e++) {
        const at = base + LOG_FIRST + e * LOG_ENTRY_WORDS;
        this.u32[this.#sbWords[at]][this.#sbWords[at + 1]] = this.#sbWords[at + 3];
      }
    }
    Atomics.store(this.#sbI32(), base + LOG_OP, OP_NONE);
    return op === OP_PREPARED ? 'undone' : 'redone';
  }

  #log(k: number, i: number, old: number, value: number): void {
    const n = this.#count;
    if (n >= LOG_MAX)
      throw new StoreError('EINVAL', `an operation stores more than ${LOG_MAX} words`);
    const w = this.#sbWords;
    const at = this.#sbBase + SB_LOG + LOG_FIRST + n * LOG_ENTRY_WORDS;
    w[at] = k;
    w[at + 1] = i;
    w[at + 2] = old;
    w[at + 3] = value;
    this.#count = n + 1;
    Atomics.store(this.#sbI32(), this.#sbBase + SB_LOG + LOG_COUNT, n + 1);
  }

  #undo(count: number): void {
    const w = this.#sbWords;
    for (let e = count - 1; e >= 0; e--) {
      const at = this.#sbBase + SB_LOG + LOG_FIRST + e * LOG_ENTRY_WORDS;
      this.u32[w[at]][w[at + 1]] = w[at + 2];
    }
  }

  #sbI32(): Int32Array {
    return this.i32[this.sb >>> 26];
  }

  // ------------------------------------------------------------ extents

  /** Pages of all extents. */
  get extentPages(): number {
    return this.sbGet(SB_EXT_PAGES_HI) * 2 ** 32 + this.sbGet(SB_EXT_PAGES_LO);
  }

  /** Adds an extent to the JS list (sorted by base). */
  addExtent(e: Extent): void {
    let i = this.extents.length;
    while (i > 0 && this.extents[i - 1].basePfn > e.basePfn) i--;
    this.extents.splice(i, 0, e);
  }

  /** Records a new extent in the directory (the first dir page is made by the caller). */
  recordExtent(e: Extent): void {
    let dir = this.sbGet(SB_EXT_DIR);
    for (;;) {
      const ref = (dir * PAGE) / 16;
      const here = this.get(ref, EXT_HERE);
      if (here < EXT_PER_PAGE) {
        const at = EXT_FIRST + here * EXT_ENTRY_WORDS;
        this.put(ref, at, e.basePfn);
        this.put(ref, at + 1, e.pages);
        this.put(ref, at + 2, e.kind);
        this.put(ref, EXT_HERE, here + 1);
        break;
      }
      const next = this.get(ref, EXT_NEXT);
      if (next !== 0) {
        dir = next;
        continue;
      }
      const page = this.allocSpan(1, 1, false);
      if (page === null) throw new StoreError('ENOMEM', 'no page for the extent directory');
      const nref = page / 16;
      this.bytesOf(nref).fill(0, this.offsetOf(nref), this.offsetOf(nref) + PAGE);
      this.put(ref, EXT_NEXT, page / PAGE);
      dir = page / PAGE;
    }
    const total = this.extentPages + e.pages;
    this.sbSet(SB_EXT_COUNT, this.sbGet(SB_EXT_COUNT) + 1);
    this.sbSet(SB_EXT_PAGES_LO, total % 2 ** 32);
    this.sbSet(SB_EXT_PAGES_HI, Math.floor(total / 2 ** 32));
  }

  /**
   * Reads the extent directory into the JS list: O(extents), no pool attached.
   * @throws StoreError EFAULT for a directory that does not hold together.
   */
  loadExtents(): void {
    const count = this.sbGet(SB_EXT_COUNT);
    let dir = this.sbGet(SB_EXT_DIR);
    let seen = 0;
    let pages = 0;
    for (let hops = 0; seen < count; hops++) {
      if (dir === 0 || hops > count || !this.inBounds((dir * PAGE) / 16, PAGE)) {
        throw damaged(this.sb * 16, `extent directory ends after ${seen} of ${count} extents`);
      }
      const ref = (dir * PAGE) / 16;
      const here = this.get(ref, EXT_HERE);
      if (here > EXT_PER_PAGE)
        throw damaged(dir * PAGE, `extent directory page says ${here} entries`);
      for (let j = 0; j < here && seen < count; j++, seen++) {
        const at = EXT_FIRST + j * EXT_ENTRY_WORDS;
        const basePfn = this.get(ref, at);
        const n = this.get(ref, at + 1);
        const kind = this.get(ref, at + 2);
        if (
          (kind !== EXTENT_KERNEL && kind !== EXTENT_POOL) ||
          n < 3 ||
          !this.inBounds((basePfn * PAGE) / 16, n * PAGE)
        ) {
          throw damaged(dir * PAGE, `extent ${seen} [pfn ${basePfn}, +${n}) kind ${kind}`);
        }
        pages += n;
        this.addExtent({ basePfn, pages: n, kind, pool: null, failedAt: Number.POSITIVE_INFINITY });
      }
      dir = this.get(ref, EXT_NEXT);
    }
    if (pages !== this.extentPages) {
      throw damaged(
        this.sb * 16,
        `extents add up to ${pages} pages, the super block says ${this.extentPages}`,
      );
    }
    for (let i = 1; i < this.extents.length; i++) {
      const a = this.extents[i - 1];
      if (a.basePfn + a.pages > this.extents[i].basePfn) {
        throw damaged(
          a.basePfn * PAGE,
          `extents at pfn ${a.basePfn} and ${this.extents[i].basePfn} overlap`,
        );
      }
    }
  }

  /** The extent's allocator, attached on first use. @throws StoreError EFAULT when it is damaged. */
  poolOf(e: Extent): CmaPool {
    if (e.pool === null) {
      try {
        e.pool = CmaPool.attach(this.device, e.basePfn * PAGE, e.pages * PAGE);
      } catch (err) {
        if (err instanceof PmpoolError)
          throw damaged(e.basePfn * PAGE, `extent allocator: ${err.message}`, err);
        throw err;
      }
    }
    return e.pool;
  }

  /** The extent holding pfn, or undefined. */
  extentAt(pfn: number): Extent | undefined {
    const xs = this.extents;
    let lo = 0;
    let hi = xs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const e = xs[mid];
      if (pfn < e.basePfn) hi = mid - 1;
      else if (pfn >= e.basePfn + e.pages) lo = mid + 1;
      else return e;
    }
    return undefined;
  }

  /**
   * `pages` pages aligned to `align` pages, from an extent with room or a
   * new one (`grow`).
   * @returns the physical address, or null when none can be had.
   */
  allocSpan(pages: number, align: number, grow = true): number | null {
    for (const e of this.extents) {
      if (pages >= e.failedAt || pages > e.pages) continue;
      const r = this.poolOf(e).alloc(pages, align);
      if (r !== null) return this.#populate(e, r.pfn * PAGE, pages * PAGE);
      e.failedAt = pages;
    }
    this.overBudget = false;
    if (!grow || this.source === null) return null;
    // Geometric growth, a sixteenth of what is held (at most that much held and unused), in
    // whole blocks taken end to end after the last extent: the KHO map and a successor's
    // attach see one run however many extents there are.
    const need = pages + align + 2;
    const share = Math.min(Math.ceil(this.extentPages / 16), 65536);
    const want =
      Math.ceil(Math.max(need, share, EXTENT_BLOCK_PAGES) / EXTENT_BLOCK_PAGES) *
      EXTENT_BLOCK_PAGES;
    const room = this.budgetPages - this.extentPages;
    if (need > room) {
      this.overBudget = true;
      return null;
    }
    const got = this.source.take(need, Math.min(want, room), this.#end());
    if (got === null) return null;
    const e: Extent = {
      basePfn: got.pfn,
      pages: got.pages,
      kind: EXTENT_KERNEL,
      pool: CmaPool.format(this.device, got.pfn * PAGE, got.pages * PAGE),
      failedAt: Number.POSITIVE_INFINITY,
    };
    this.addExtent(e);
    this.recordExtent(e);
    const r = this.poolOf(e).alloc(pages, align);
    return r === null ? null : this.#populate(e, r.pfn * PAGE, pages * PAGE);
  }

  /**
   * Faults a new span's pages in ahead, a window of POPULATE_AHEAD at a time
   * (one call instead of a fault per page: a third of a 1 KiB put's time).
   * @returns phys.
   */
  #populate(e: Extent, phys: number, bytes: number): number {
    const populate = this.device.populate;
    const done = e.populated ?? e.basePfn * PAGE;
    if (populate === undefined || phys + bytes <= done) return phys;
    const end = Math.min(
      (e.basePfn + e.pages) * PAGE,
      Math.max(phys + bytes, phys + POPULATE_AHEAD),
    );
    populate.call(this.device, phys, end - phys);
    e.populated = Math.max(done, end);
    return phys;
  }

  /** The pfn after the highest extent in kernel memory (0: none). */
  #end(): number {
    let end = 0;
    for (const e of this.extents)
      if (e.kind === EXTENT_KERNEL) end = Math.max(end, e.basePfn + e.pages);
    return end;
  }

  /**
   * The extents in kernel memory as runs of extents that lie end to end
   * (what KHO restores and preserves at once: a successor's work per run).
   */
  kernelRuns(): { pfn: number; pages: number }[] {
    const runs: { pfn: number; pages: number }[] = [];
    for (const e of this.extents) {
      if (e.kind !== EXTENT_KERNEL) continue;
      const last = runs[runs.length - 1];
      if (last !== undefined && last.pfn + last.pages === e.basePfn) last.pages += e.pages;
      else runs.push({ pfn: e.basePfn, pages: e.pages });
    }
    return runs;
  }

  /** Gives back a span. @throws StoreError EFAULT when it is no span of an extent. */
  releaseSpan(phys: number, pages: number): void {
    const pfn = phys / PAGE;
    const e = this.extentAt(pfn);
    if (e === undefined || !this.poolOf(e).release(pfn, pages)) {
      throw damaged(phys, `releasing ${pages} pages that the store's extents did not hand out`);
    }
    e.failedAt = Number.POSITIVE_INFINITY;
  }
}
