import { endianness } from 'node:os';
import { show } from '../base/errors.js';
import { hex, hexDigits } from '../base/hex.js';
import type { PfnRange } from '../base/range.js';
import { crc32c } from '../memory/crc32c.js';
import { checkDeviceViews, type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import {
  BITMAP_OFFSET,
  bitmapLength,
  CHECK_WORDS,
  checkChunks,
  checkMix,
  chunkWords,
  HDR_BASE_HI,
  HDR_BASE_LO,
  HDR_BITMAP_LENGTH,
  HDR_BITMAP_OFFSET,
  HDR_CHUNK_WORDS,
  HDR_CHUNKS,
  HDR_CRC,
  HDR_CRC_BYTES,
  HDR_FLAGS,
  HDR_GENERATION,
  HDR_MAGIC,
  HDR_META_PAGES,
  HDR_PAGE_SIZE,
  HDR_PAGES,
  HDR_VERSION,
  INTENT_ALLOC,
  INTENT_CHECK_FIRST,
  INTENT_CHECK_LAST,
  INTENT_COUNT,
  INTENT_CRC,
  INTENT_CRC_WORDS,
  INTENT_FIRST,
  INTENT_GENERATION,
  INTENT_NONE,
  INTENT_OP,
  INTENT_RELEASE,
  INTENT_SEQ,
  MAX_POOL_PAGES,
  metadataPages,
  PMPOOL_MAGIC,
  PMPOOL_VERSION,
} from './abi.js';
import { PmpoolError } from './errors.js';

// The intent crc is taken over a Uint32Array scratch, whose bytes are the layout's only on little-endian hosts.
if (endianness() !== 'LE') throw new Error('pmpool: only little-endian hosts are supported');

/** First word of the bitmap in the metadata view. */
const BM = BITMAP_OFFSET >>> 2;
/** Largest order allocPages accepts: 2^52 pages is beyond any pool, but still an exact number. */
const MAX_ORDER_ARG = 52;

export interface PoolStats {
  /** Pages of the pool, metadata included. */
  readonly totalPages: number;
  /** Pages in use, metadata included. */
  readonly usedPages: number;
  readonly freePages: number;
  /** Longest run of free pages (what the largest possible alloc(n) can get). */
  readonly largestFreeRun: number;
  /** Header and bitmap pages. */
  readonly metadataPages: number;
}

/** The operation an intent record describes. */
export interface PendingIntent {
  readonly op: 'alloc' | 'release';
  readonly seq: number;
  readonly pfn: number;
  readonly count: number;
}

export interface CheckReport {
  /** True when nothing was wrong (a pending intent counts as wrong: it is a killed operation). */
  readonly ok: boolean;
  /** The in-flight operation a killed process left, if any. */
  readonly intent: PendingIntent | null;
  /** Pages set free by recovering that operation (0 without repair). */
  readonly reclaimedPages: number;
  /** True when `repair` was asked and changes were made. */
  readonly repaired: boolean;
  /** Bitmap chunks whose check word did not match: their pages cannot be trusted. */
  readonly damagedChunks: number;
  /** Pages of damaged chunks that read as free and were marked in use (0 without repair). */
  readonly markedInUse: number;
  /** One line per inconsistency found. */
  readonly problems: readonly string[];
}

export interface PoolOptions {
  /**
   * Fault injection for tests: called before every store to the pool's
   * metadata (bitmap words and intent slot). Throwing from it abandons the
   * operation exactly where a killed process would have stopped.
   */
  beforeStore?: () => void;
}

export interface AttachOptions extends PoolOptions {
  /** Recover a pending intent at attach (default true); see CmaPool.check. */
  repair?: boolean;
}

export interface PoolFormatOptions extends PoolOptions {
  /** Generation to record (default: random). Intent records of another generation are garbage. */
  generation?: number;
}

/** Scratch for the intent crc, so the hot path allocates nothing. */
const intentScratch = new Uint32Array(INTENT_CRC_WORDS);
const intentScratchBytes = new Uint8Array(intentScratch.buffer);

/**
 * A CMA-style bitmap page allocator over [base, base + size) of a memory
 * device, whose whole state (header, intent slot, bitmap) lives in the pool's
 * first pages (layout in abi.ts). One writer at a time.
 */
export class CmaPool {
  /** First pfn of the pool (the header page). */
  readonly basePfn: number;
  /** Pages in the pool, metadata included. */
  readonly pages: number;
  /** Header and bitmap pages at the start of the pool, always allocated. */
  readonly metadataPages: number;
  /** The generation recorded at format. */
  readonly generation: number;
  /** What attach found and did (null after format). */
  attachReport: CheckReport | null = null;
  private readonly metaBytes: number;
  /** Bitmap words, words per check chunk (a power of two: log2 kept), and chunks. */
  private readonly bitmapWords: number;
  private readonly chunkShift: number;
  private readonly chunks: number;
  private readonly beforeStore: (() => void) | undefined;
  /** Pool-relative page where the next search starts (CMA's rotating first fit). */
  private hint: number;

  private constructor(
    readonly device: MemoryDevice,
    readonly basePhys: number,
    pages: number,
    generation: number,
    options: PoolOptions,
  ) {
    this.basePfn = basePhys / PAGE_SIZE;
    this.pages = pages;
    this.metadataPages = metadataPages(pages);
    this.metaBytes = this.metadataPages * PAGE_SIZE;
    this.bitmapWords = bitmapLength(pages) / 4;
    this.chunkShift = Math.log2(chunkWords(pages));
    this.chunks = checkChunks(pages);
    this.generation = generation;
    this.beforeStore = options.beforeStore;
    this.hint = this.metadataPages;
  }

  /** Pool size in bytes. */
  get size(): number {
    return this.pages * PAGE_SIZE;
  }

  /** Physical address of the bitmap (the FDT `bitmap` property). */
  get bitmapPhys(): number {
    return this.basePhys + BITMAP_OFFSET;
  }

  /**
   * Makes an empty pool at [basePhys, basePhys + size), destroying whatever
   * was there. The header's magic is cleared first and written last, so a
   * format cut short leaves no pool rather than a half-made one.
   * @throws PmpoolError EINVAL for an unaligned or out-of-device range;
   *   ENOMEM when the range cannot hold the metadata and one data page.
   */
  static format(
    device: MemoryDevice,
    basePhys: number,
    size: number,
    options: PoolFormatOptions = {},
  ): CmaPool {
    const pages = checkRoom(checkRange(device, basePhys, size));
    const meta = metadataPages(pages);
    const generation = (options.generation ?? randomGeneration()) >>> 0;
    const pool = new CmaPool(device, basePhys, pages, generation, options);
    const w = pool.words();
    put(w, HDR_MAGIC, 0);
    new Uint8Array(w.buffer, w.byteOffset + 4, (BM + bitmapLength(pages) / 4 - 1) * 4).fill(0);
    for (let c = 0; c < pool.chunks; c++) put(w, CHECK_WORDS + c, pool.chunkCheck(w, c));
    pool.setRange(w, 0, meta, true);
    const tail = (bitmapLength(pages) / 4) * 32;
    if (tail > pages) pool.setRange(w, pages, tail - pages, true);
    writeHeader(w, basePhys, pages, generation);
    return pool;
  }

  /**
   * Brings up a pool whose metadata cannot be trusted whole, never freeing a
   * page that may be held: a header that is missing, of another version or
   * corrupt is written anew for this base and size (a fresh generation, the
   * in-flight record dropped), then check({ repair: true }) marks every page
   * of a bitmap chunk that fails its check word "in use". Pages nobody holds
   * in those chunks are lost until the pool is reinitialised; `attachReport`
   * says how many. For a pool a predecessor kept that attach refused.
   * @throws PmpoolError EINVAL bad range; ENOMEM too small for a pool.
   */
  static rebuild(
    device: MemoryDevice,
    basePhys: number,
    size: number,
    options: PoolOptions = {},
  ): CmaPool {
    const pages = checkRoom(checkRange(device, basePhys, size));
    let generation: number;
    let rewritten: string | null = null;
    try {
      generation = readHeader(device, basePhys, pages);
    } catch (err) {
      if (!(err instanceof PmpoolError)) throw err;
      rewritten = err.message;
      generation = randomGeneration();
    }
    const pool = new CmaPool(device, basePhys, pages, generation, options);
    if (rewritten !== null) {
      const w = pool.words();
      put(w, HDR_MAGIC, 0);
      put(w, INTENT_OP, INTENT_NONE);
      writeHeader(w, basePhys, pages, generation);
    }
    const report = pool.check({ repair: true });
    pool.attachReport =
      rewritten === null
        ? report
        : {
            ...report,
            ok: false,
            repaired: true,
            problems: [`header rewritten (${rewritten})`, ...report.problems],
          };
    return pool;
  }

  /**
   * Re-attaches to the pool at [basePhys, basePhys + size) that a predecessor
   * formatted, and (unless `repair: false`) recovers the operation a killed
   * process left in flight; `attachReport` says what was found.
   * @throws PmpoolError EINVAL bad range; ENODEV no pool there (no magic);
   *   EPROTO unknown version; EFAULT corrupt header, metadata bits or intent
   *   record; ESTALE a valid pool made for another base or size.
   */
  static attach(
    device: MemoryDevice,
    basePhys: number,
    size: number,
    options: AttachOptions = {},
  ): CmaPool {
    const pages = checkRange(device, basePhys, size);
    const generation = readHeader(device, basePhys, pages);
    const pool = new CmaPool(device, basePhys, pages, generation, options);
    const report = pool.check({ repair: options.repair ?? true, strict: true });
    pool.attachReport = report;
    return pool;
  }

  /**
   * Reads the pool at [basePhys, basePhys + size) without changing a byte:
   * the header must hold, what check() finds wrong is in `attachReport`.
   * @throws PmpoolError as attach for the header (EINVAL, ENODEV, EPROTO, EFAULT, ESTALE).
   */
  static inspect(device: MemoryDevice, basePhys: number, size: number): CmaPool {
    const pages = checkRange(device, basePhys, size);
    const pool = new CmaPool(device, basePhys, pages, readHeader(device, basePhys, pages), {});
    pool.attachReport = pool.check();
    return pool;
  }

  /**
   * Whether a whole, valid header for exactly this base and size is at basePhys (reads only the header).
   * @throws PmpoolError EINVAL for a range that is not whole pages of the device.
   */
  static headerFits(device: MemoryDevice, basePhys: number, size: number): boolean {
    const pages = checkRange(device, basePhys, size);
    try {
      readHeader(device, basePhys, pages);
      return true;
    } catch (err) {
      if (err instanceof PmpoolError) return false;
      throw err;
    }
  }

  /**
   * First fit of `count` free pages whose first pfn is a multiple of `align`,
   * searching from where the last allocation ended and wrapping once.
   * @returns the range, or null when no such run is free.
   * @throws PmpoolError EINVAL when count is not a positive integer or align
   *   not a power of two; EFAULT when another operation is still in flight.
   */
  alloc(count: number, align = 1): PfnRange | null {
    if (!Number.isSafeInteger(count) || count < 1) {
      throw new PmpoolError(
        'EINVAL',
        `alloc: count must be a positive integer, got ${show(count)}`,
      );
    }
    if (!isPowerOfTwo(align)) {
      throw new PmpoolError('EINVAL', `alloc: align must be a power of two, got ${show(align)}`);
    }
    if (count > this.pages - this.metadataPages) return null;
    const w = this.words();
    this.assertIdle(w);
    let first = this.findFree(w, this.hint, this.pages, count, align);
    if (first < 0 && this.hint > this.metadataPages) {
      first = this.findFree(w, this.metadataPages, this.pages, count, align);
    }
    if (first < 0) return null;
    this.beginIntent(w, INTENT_ALLOC, first, count);
    this.setRange(w, first, count, true);
    this.retireIntent(w);
    const next = first + count;
    this.hint = next >= this.pages ? this.metadataPages : next;
    return { pfn: this.basePfn + first, count };
  }

  /**
   * Gives back [pfn, pfn + count).
   * @returns false, changing nothing, when the range is not wholly inside the
   *   pool's data pages or not wholly allocated.
   * @throws PmpoolError EINVAL when pfn or count is not an integer (count >= 1);
   *   EFAULT when another operation is still in flight.
   */
  release(pfn: number, count: number): boolean {
    if (!Number.isSafeInteger(pfn) || !Number.isSafeInteger(count) || count < 1) {
      throw new PmpoolError(
        'EINVAL',
        `release: pfn and count must be integers, count >= 1, got ${show(pfn)}, ${show(count)}`,
      );
    }
    const first = pfn - this.basePfn;
    if (first < this.metadataPages || first + count > this.pages) return false;
    const w = this.words();
    if (this.nextZero(w, first, first + count) < first + count) return false;
    this.assertIdle(w);
    this.beginIntent(w, INTENT_RELEASE, first, count);
    this.setRange(w, first, count, false);
    this.retireIntent(w);
    return true;
  }

  /**
   * v1's interface: 2^order pages aligned to 2^order, with no MAX_ORDER cap.
   * @returns the first pfn, or null when no such block is free.
   * @throws PmpoolError EINVAL for an order that is not an integer in 0..52.
   */
  allocPages(order: number): number | null {
    checkOrder(order);
    const n = 2 ** order;
    return this.alloc(n, n)?.pfn ?? null;
  }

  /**
   * v1's interface: gives back the 2^order pages at pfn.
   * @returns false when they are not a range this pool handed out (see release).
   * @throws PmpoolError EINVAL for a bad order or pfn.
   */
  freePages(pfn: number, order: number): boolean {
    checkOrder(order);
    return this.release(pfn, 2 ** order);
  }

  /** True when `pfn` is a page of this pool that is in use (metadata pages included). */
  isAllocated(pfn: number): boolean {
    if (typeof pfn !== 'number') return false;
    const i = pfn - this.basePfn;
    if (!Number.isSafeInteger(i) || i < 0 || i >= this.pages) return false;
    return ((get(this.words(), BM + (i >>> 5)) >>> (i & 31)) & 1) === 1;
  }

  /** Counts from the bitmap: O(bitmap words). */
  stats(): PoolStats {
    const w = this.words();
    let used = 0;
    const words = Math.ceil(this.pages / 32);
    for (let k = 0; k < words; k++) used += popcount(get(w, BM + k));
    used -= words * 32 - this.pages; // the tail bits past the last page are always set
    let largest = 0;
    let pos = this.metadataPages;
    while (pos < this.pages) {
      const start = this.nextZero(w, pos, this.pages);
      if (start >= this.pages) break;
      const end = this.nextSet(w, start, this.pages);
      largest = Math.max(largest, end - start);
      pos = end;
    }
    return {
      totalPages: this.pages,
      usedPages: used,
      freePages: this.pages - used,
      largestFreeRun: largest,
      metadataPages: this.metadataPages,
    };
  }

  /**
   * Checks the metadata (header crc, every bitmap chunk against its check
   * word, metadata and tail bits set, intent slot) and reports the operation
   * a killed process left in flight. With `repair`: recovers that operation
   * (an alloc is undone, a release completed: either way its pages become
   * free, since its caller never got them or gave them up), clears a corrupt
   * intent record, marks every page of a damaged chunk in use (its pages may
   * be held: leaked rather than handed out twice), and marks missing
   * metadata bits used.
   * @throws PmpoolError EFAULT with `strict` (attach) for corruption.
   */
  check(options: { repair?: boolean; strict?: boolean } = {}): CheckReport {
    if (typeof options !== 'object' || options === null)
      throw new PmpoolError('EINVAL', `check options must be an object, got ${show(options)}`);
    const repair = options.repair === true;
    const w = this.words();
    const problems: string[] = [];
    let repaired = false;
    const fail = (msg: string): void => {
      if (options.strict === true)
        throw new PmpoolError('EFAULT', `pmpool at 0x${this.at()}: ${msg}`);
      problems.push(msg);
    };
    if (get(w, HDR_MAGIC) !== PMPOOL_MAGIC || get(w, HDR_CRC) !== headerCrc(w, PMPOOL_MAGIC)) {
      fail('header magic or crc is wrong');
    }
    let intent: PendingIntent | null = null;
    let intentBad: string | null = null;
    const op = get(w, INTENT_OP);
    if (op !== INTENT_NONE) {
      intentBad = this.intentProblem(w);
      if (intentBad === null) {
        intent = {
          op: op === INTENT_ALLOC ? 'alloc' : 'release',
          seq: get(w, INTENT_SEQ),
          pfn: this.basePfn + get(w, INTENT_FIRST),
          count: get(w, INTENT_COUNT),
        };
      }
    }
    const metaEnd = this.nextZero(w, 0, this.metadataPages);
    if (metaEnd < this.metadataPages) fail(`metadata page ${metaEnd} is marked free in the bitmap`);
    const tailEnd = this.bitmapWords * 32;
    const tailBad = this.nextZero(w, this.pages, tailEnd) < tailEnd;
    if (tailBad) fail('bitmap bits past the last page are clear');
    if (intentBad !== null) fail(`intent record is corrupt: ${intentBad}`);
    const damaged = this.damagedChunks(w, intent);
    for (const c of damaged) {
      const [from, to] = this.chunkPages(c);
      fail(`bitmap chunk ${c} (pool pages ${from}..${to - 1}) does not match its check word`);
    }
    if (intent !== null) {
      problems.push(
        `${intent.op} of ${intent.count} pages at pfn ${hex(intent.pfn)} (seq ${intent.seq}) was in flight`,
      );
    }
    let reclaimed = 0;
    let marked = 0;
    if (repair) {
      if (intentBad !== null) {
        this.retireIntent(w);
        repaired = true;
      }
      if (intent !== null) {
        reclaimed = this.recover(w, intent.pfn - this.basePfn, intent.count);
        repaired = true;
      }
      for (const c of damaged) {
        marked += this.markChunkUsed(w, c);
        repaired = true;
      }
      if (metaEnd < this.metadataPages) {
        this.setRange(w, 0, this.metadataPages, true);
        repaired = true;
      }
      if (tailBad) {
        this.setRange(w, this.pages, tailEnd - this.pages, true);
        repaired = true;
      }
    }
    return {
      ok: problems.length === 0,
      intent,
      reclaimedPages: reclaimed,
      repaired,
      damagedChunks: damaged.length,
      markedInUse: marked,
      problems,
    };
  }

  /** Makes the metadata durable (msync on a mapped device); not needed against process kills. */
  sync(): void {
    this.device.flush(this.basePhys, this.metaBytes);
  }

  /** A view of the metadata pages, taken per operation (never kept: the device may close). */
  private words(): DataView {
    return this.device.view(this.basePhys, this.metaBytes);
  }

  /** The one way metadata changes after format: a single aligned 32-bit store. */
  private store(w: DataView, index: number, value: number): void {
    if (this.beforeStore !== undefined) this.beforeStore();
    put(w, index, value);
  }

  private assertIdle(w: DataView): void {
    if (get(w, INTENT_OP) !== INTENT_NONE) {
      throw new PmpoolError(
        'EFAULT',
        `pmpool at 0x${this.at()}: an operation is in flight (a killed writer?); run check({ repair: true })`,
      );
    }
  }

  /** Fields and crc while op is still NONE, then op: the commit. */
  private beginIntent(w: DataView, op: number, first: number, count: number): void {
    const seq = (get(w, INTENT_SEQ) + 1) >>> 0;
    const checkFirst = get(w, CHECK_WORDS + this.chunkOf(first));
    const checkLast = get(w, CHECK_WORDS + this.chunkOf(first + count - 1));
    const s = intentScratch;
    s[0] = op;
    s[1] = seq;
    s[2] = this.generation;
    s[3] = first;
    s[4] = count;
    s[5] = checkFirst;
    s[6] = checkLast;
    const crc = crc32c(intentScratchBytes);
    this.store(w, INTENT_SEQ, seq);
    if (get(w, INTENT_GENERATION) !== this.generation) {
      this.store(w, INTENT_GENERATION, this.generation);
    }
    this.store(w, INTENT_FIRST, first);
    this.store(w, INTENT_COUNT, count);
    this.store(w, INTENT_CHECK_FIRST, checkFirst);
    this.store(w, INTENT_CHECK_LAST, checkLast);
    this.store(w, INTENT_CRC, crc);
    this.store(w, INTENT_OP, op);
  }

  /**
   * op = NONE, then a crc that cannot verify: the inverse of the record's crc
   * as an ALLOC. Damage that turns NONE back into ALLOC then never undoes a
   * finished alloc (its pages held by the caller); into RELEASE, with odds of
   * 2^-32. Idempotent; a kill between the two stores leaves a retired record.
   */
  private retireIntent(w: DataView): void {
    this.store(w, INTENT_OP, INTENT_NONE);
    this.store(w, INTENT_CRC, ~intentCrc(w, INTENT_ALLOC) >>> 0);
  }

  /** The chunk holding pool page `page`. */
  private chunkOf(page: number): number {
    return (page >>> 5) >>> this.chunkShift;
  }

  /** Pool pages [from, to) whose bits lie in chunk c. */
  private chunkPages(c: number): [number, number] {
    const from = (c << this.chunkShift) * 32;
    return [from, Math.min(this.pages, from + (32 << this.chunkShift))];
  }

  /**
   * The check word chunk c should have. With `range`, as it was before that
   * operation: the range's bits taken as clear (an alloc found them free) or
   * set (a release found them held).
   */
  private chunkCheck(
    w: DataView,
    c: number,
    range?: { first: number; end: number; wasSet: boolean },
  ): number {
    const k0 = c << this.chunkShift;
    const k1 = Math.min(this.bitmapWords, k0 + (1 << this.chunkShift));
    let h = 0;
    for (let k = k0; k < k1; k++) {
      let v = get(w, BM + k);
      if (range !== undefined) {
        const lo = Math.max(range.first, k * 32);
        const hi = Math.min(range.end, k * 32 + 32);
        if (lo < hi) {
          const n = hi - lo;
          const mask = n === 32 ? -1 : ((1 << n) - 1) << (lo & 31);
          v = range.wasSet ? (v | mask) >>> 0 : (v & ~mask) >>> 0;
        }
      }
      h ^= checkMix(k, v);
    }
    return h >>> 0;
  }

  /**
   * Chunks whose check word does not match their words. With an operation in
   * flight, the chunks wholly inside its range are not judged (recovery
   * rewrites them whole) and its edge chunks are judged as they were before it.
   */
  private damagedChunks(w: DataView, intent: PendingIntent | null): number[] {
    const out: number[] = [];
    let cf = -1;
    let cl = -1;
    let range: { first: number; end: number; wasSet: boolean } | undefined;
    if (intent !== null) {
      const first = intent.pfn - this.basePfn;
      range = { first, end: first + intent.count, wasSet: intent.op === 'release' };
      cf = this.chunkOf(first);
      cl = this.chunkOf(range.end - 1);
    }
    for (let c = 0; c < this.chunks; c++) {
      if (c > cf && c < cl) continue;
      let want = get(w, CHECK_WORDS + c);
      let have: number;
      if (c === cf || c === cl) {
        want = get(w, c === cf ? INTENT_CHECK_FIRST : INTENT_CHECK_LAST);
        have = this.chunkCheck(w, c, range);
      } else {
        have = this.chunkCheck(w, c);
      }
      if (have !== want) out.push(c);
    }
    return out;
  }

  /** Recovers an operation in flight: its bits cleared, its chunks' check words rewritten. @returns pages freed. */
  private recover(w: DataView, first: number, count: number): number {
    let freed = 0;
    for (let i = first; i < first + count; ) {
      const s = this.nextSet(w, i, first + count);
      if (s >= first + count) break;
      const e = this.nextZero(w, s, first + count);
      freed += e - s;
      i = e;
    }
    this.setRange(w, first, count, false);
    const cl = this.chunkOf(first + count - 1);
    for (let c = this.chunkOf(first); c <= cl; c++) {
      this.store(w, CHECK_WORDS + c, this.chunkCheck(w, c));
    }
    this.retireIntent(w);
    return freed;
  }

  /** Marks every page of chunk c in use and rewrites its check word. @returns data pages that were free. */
  private markChunkUsed(w: DataView, c: number): number {
    const [from, to] = this.chunkPages(c);
    const lo = Math.max(from, this.metadataPages);
    let free = 0;
    for (let i = lo; i < to; ) {
      const z = this.nextZero(w, i, to);
      if (z >= to) break;
      const e = this.nextSet(w, z, to);
      free += e - z;
      i = e;
    }
    const k1 = Math.min(this.bitmapWords, (c + 1) << this.chunkShift);
    for (let k = c << this.chunkShift; k < k1; k++) this.store(w, BM + k, -1);
    this.store(w, CHECK_WORDS + c, this.chunkCheck(w, c));
    return free;
  }

  /** Why the committed intent record cannot be trusted, or null when it can. */
  private intentProblem(w: DataView): string | null {
    const op = get(w, INTENT_OP);
    if (op !== INTENT_ALLOC && op !== INTENT_RELEASE) return `unknown op ${op}`;
    if (intentCrc(w, op) !== get(w, INTENT_CRC)) return 'crc mismatch';
    if (get(w, INTENT_GENERATION) !== this.generation) {
      return `generation ${get(w, INTENT_GENERATION)} is not the pool's ${this.generation}`;
    }
    const first = get(w, INTENT_FIRST);
    const count = get(w, INTENT_COUNT);
    if (first < this.metadataPages || count < 1 || first + count > this.pages) {
      return `range ${first}+${count} is outside the data pages`;
    }
    return null;
  }

  /** Pool-relative index of `count` clear bits in [from, end) aligned for `align`, or -1. */
  private findFree(w: DataView, from: number, end: number, count: number, align: number): number {
    let pos = from;
    for (;;) {
      let i = this.nextZero(w, pos, end);
      if (align > 1) i = Math.ceil((this.basePfn + i) / align) * align - this.basePfn;
      const stop = i + count;
      if (stop > end) return -1;
      const s = this.nextSet(w, i, stop);
      if (s >= stop) return i;
      pos = s + 1;
    }
  }

  /** First clear bit in [from, end), or end; 32 bits per step. */
  private nextZero(w: DataView, from: number, end: number): number {
    if (from >= end) return end;
    let k = from >>> 5;
    let bits = ~get(w, BM + k) & (-1 << (from & 31));
    const last = (end - 1) >>> 5;
    while (bits === 0) {
      if (++k > last) return end;
      bits = ~get(w, BM + k);
    }
    return Math.min(k * 32 + ctz(bits), end);
  }

  /** First set bit in [from, end), or end; 32 bits per step. */
  private nextSet(w: DataView, from: number, end: number): number {
    if (from >= end) return end;
    let k = from >>> 5;
    let bits = get(w, BM + k) & (-1 << (from & 31));
    const last = (end - 1) >>> 5;
    while (bits === 0) {
      if (++k > last) return end;
      bits = get(w, BM + k);
    }
    return Math.min(k * 32 + ctz(bits), end);
  }

  /**
   * Sets or clears bits [first, first + count): one store per word changed,
   * then one per chunk touched for its check word (updated by the words'
   * change, so a chunk that was wrong stays wrong).
   */
  private setRange(w: DataView, first: number, count: number, used: boolean): void {
    const end = first + count;
    let chunk = -1;
    let delta = 0;
    for (let i = first; i < end; ) {
      const bit = i & 31;
      const n = Math.min(32 - bit, end - i);
      const k = i >>> 5;
      const cur = get(w, BM + k);
      let next: number;
      if (n === 32) {
        next = used ? 0xffffffff : 0;
      } else {
        const mask = ((1 << n) - 1) << bit;
        next = (used ? cur | mask : cur & ~mask) >>> 0;
      }
      const c = k >>> this.chunkShift;
      if (c !== chunk) {
        this.updateCheck(w, chunk, delta);
        chunk = c;
        delta = 0;
      }
      if (next !== cur) {
        this.store(w, BM + k, next);
        delta ^= checkMix(k, cur) ^ checkMix(k, next);
      }
      i += n;
    }
    this.updateCheck(w, chunk, delta);
  }

  private updateCheck(w: DataView, chunk: number, delta: number): void {
    if (chunk >= 0 && delta !== 0) {
      this.store(w, CHECK_WORDS + chunk, (get(w, CHECK_WORDS + chunk) ^ delta) >>> 0);
    }
  }

  private at(): string {
    return hexDigits(this.basePhys);
  }
}

/**
 * Checks the header of the pool at basePhys against the configured size.
 * @returns the generation it records.
 * @throws PmpoolError ENODEV no magic; EPROTO another version; EFAULT crc,
 *   page size or bitmap geometry; ESTALE a valid header for another base or size.
 */
function readHeader(device: MemoryDevice, basePhys: number, pages: number): number {
  const head = device.bytes(basePhys, PAGE_SIZE);
  const hw = new Uint32Array(head.buffer, head.byteOffset, PAGE_SIZE / 4);
  const at = `pmpool at ${hex(basePhys)}`;
  if (hw[HDR_MAGIC] !== PMPOOL_MAGIC) {
    throw new PmpoolError('ENODEV', `${at}: no pool header (magic ${hex(hw[HDR_MAGIC], 8)})`);
  }
  if (hw[HDR_VERSION] !== PMPOOL_VERSION) {
    throw new PmpoolError(
      'EPROTO',
      `${at}: layout version ${hw[HDR_VERSION]}, this build knows ${PMPOOL_VERSION}`,
    );
  }
  const crc = headerCrc(hw, PMPOOL_MAGIC);
  if (hw[HDR_CRC] !== crc) {
    throw new PmpoolError(
      'EFAULT',
      `${at}: header crc ${hex(hw[HDR_CRC], 8)} does not match its contents (${hex(crc, 8)})`,
    );
  }
  if (hw[HDR_PAGE_SIZE] !== PAGE_SIZE) {
    throw new PmpoolError('EFAULT', `${at}: page size ${hw[HDR_PAGE_SIZE]}, not ${PAGE_SIZE}`);
  }
  const recordedBase = hw[HDR_BASE_HI] * 0x100000000 + hw[HDR_BASE_LO];
  if (recordedBase !== basePhys) {
    throw new PmpoolError(
      'ESTALE',
      `${at}: the pool there was made for base ${hex(recordedBase)}, not ${hex(basePhys)}`,
    );
  }
  if (hw[HDR_PAGES] !== pages) {
    throw new PmpoolError(
      'ESTALE',
      `${at}: the pool there has ${hw[HDR_PAGES]} pages, the configured size is ${pages} pages`,
    );
  }
  if (
    hw[HDR_BITMAP_OFFSET] !== BITMAP_OFFSET ||
    hw[HDR_BITMAP_LENGTH] !== bitmapLength(pages) ||
    hw[HDR_META_PAGES] !== metadataPages(pages) ||
    hw[HDR_CHUNK_WORDS] !== chunkWords(pages) ||
    hw[HDR_CHUNKS] !== checkChunks(pages)
  ) {
    throw new PmpoolError(
      'EFAULT',
      `${at}: bitmap at +${hw[HDR_BITMAP_OFFSET]} of ${hw[HDR_BITMAP_LENGTH]} bytes in ${hw[HDR_META_PAGES]} pages, ${hw[HDR_CHUNKS]} chunks of ${hw[HDR_CHUNK_WORDS]} words, does not fit a pool of ${pages} pages`,
    );
  }
  return hw[HDR_GENERATION];
}

/** Writes the header words for this base and size, the magic last (format's and rebuild's commit). */
function writeHeader(w: DataView, basePhys: number, pages: number, generation: number): void {
  put(w, HDR_VERSION, PMPOOL_VERSION);
  put(w, HDR_PAGE_SIZE, PAGE_SIZE);
  put(w, HDR_FLAGS, 0);
  put(w, HDR_BASE_LO, basePhys % 0x100000000);
  put(w, HDR_BASE_HI, Math.floor(basePhys / 0x100000000));
  put(w, HDR_PAGES, pages);
  put(w, HDR_BITMAP_OFFSET, BITMAP_OFFSET);
  put(w, HDR_BITMAP_LENGTH, bitmapLength(pages));
  put(w, HDR_META_PAGES, metadataPages(pages));
  put(w, HDR_CHUNK_WORDS, chunkWords(pages));
  put(w, HDR_CHUNKS, checkChunks(pages));
  put(w, HDR_GENERATION, generation);
  put(w, HDR_CRC, headerCrc(w, PMPOOL_MAGIC));
  put(w, HDR_MAGIC, PMPOOL_MAGIC);
}

/** @throws PmpoolError EINVAL unless [base, base + size) is whole pages inside the device. */
function checkRange(device: MemoryDevice, basePhys: number, size: number): number {
  checkDeviceViews(device);
  if (
    !Number.isSafeInteger(basePhys) ||
    !Number.isSafeInteger(size) ||
    basePhys < 0 ||
    size <= 0 ||
    basePhys % PAGE_SIZE !== 0 ||
    size % PAGE_SIZE !== 0
  ) {
    throw new PmpoolError(
      'EINVAL',
      `pool range must be whole pages, got base ${basePhys}, size ${size}`,
    );
  }
  if (basePhys + size > device.size) {
    throw new PmpoolError(
      'EINVAL',
      `pool [${hex(basePhys)}, +${hex(size)}) is outside ${device.name} (${hex(device.size)} bytes)`,
    );
  }
  const pages = size / PAGE_SIZE;
  if (pages > MAX_POOL_PAGES) {
    throw new PmpoolError('EINVAL', `a pool holds at most ${MAX_POOL_PAGES} pages, got ${pages}`);
  }
  return pages;
}

/** @throws PmpoolError ENOMEM when `pages` cannot hold the metadata and one data page. */
function checkRoom(pages: number): number {
  const meta = metadataPages(pages);
  if (pages <= meta) {
    throw new PmpoolError(
      'ENOMEM',
      `a pool of ${pages} pages cannot hold its ${meta} metadata pages and one data page`,
    );
  }
  return pages;
}

function randomGeneration(): number {
  return Math.floor(Math.random() * 0x100000000) >>> 0;
}

function checkOrder(order: number): void {
  if (!Number.isInteger(order) || order < 0 || order > MAX_ORDER_ARG) {
    throw new PmpoolError(
      'EINVAL',
      `order must be an integer in 0..${MAX_ORDER_ARG}, got ${show(order)}`,
    );
  }
}

/** crc32c of the header's covered bytes, with `magic` in place of the stored magic word (format writes it last). */
function headerCrc(header: ArrayBufferView, magic: number): number {
  const copy = new Uint8Array(header.buffer, header.byteOffset, HDR_CRC_BYTES).slice();
  new DataView(copy.buffer).setUint32(HDR_MAGIC * 4, magic, true);
  return crc32c(copy);
}

/** Word `index` of a little-endian metadata view (DataView accesses inline in V8). */
/** crc32c of the intent record's words as they are, with op taken as `op`. */
function intentCrc(w: DataView, op: number): number {
  const s = intentScratch;
  for (let k = 0; k < INTENT_CRC_WORDS; k++) s[k] = get(w, INTENT_OP + k);
  s[0] = op;
  return crc32c(intentScratchBytes);
}

function get(w: DataView, index: number): number {
  return w.getUint32(index * 4, true);
}

function put(w: DataView, index: number, value: number): void {
  w.setUint32(index * 4, value, true);
}

function isPowerOfTwo(n: number): boolean {
  if (typeof n !== 'number') return false;
  if (n >= 1 && n <= 0x40000000) return (n & (n - 1)) === 0;
  return Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

function ctz(x: number): number {
  return 31 - Math.clz32(x & -x);
}

function popcount(x: number): number {
  let v = x - ((x >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}
