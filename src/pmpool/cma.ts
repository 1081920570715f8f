import { endianness } from 'node:os';
import type { PfnRange } from '../base/range.js';
import { crc32c } from '../memory/crc32c.js';
import { checkDeviceViews, type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import {
  BITMAP_OFFSET,
  bitmapLength,
  HDR_BASE_HI,
  HDR_BASE_LO,
  HDR_BITMAP_LENGTH,
  HDR_BITMAP_OFFSET,
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
    const pages = checkRange(device, basePhys, size);
    const meta = metadataPages(pages);
    if (pages <= meta) {
      throw new PmpoolError(
        'ENOMEM',
        `a pool of ${pages} pages cannot hold its ${meta} metadata pages and one data page`,
      );
    }
    const generation = (options.generation ?? Math.floor(Math.random() * 0x100000000)) >>> 0;
    const pool = new CmaPool(device, basePhys, pages, generation, options);
    const w = pool.words();
    put(w, HDR_MAGIC, 0);
    new Uint8Array(w.buffer, w.byteOffset + 4, (BM + bitmapLength(pages) / 4 - 1) * 4).fill(0);
    pool.setRange(w, 0, meta, true);
    const tail = (bitmapLength(pages) / 4) * 32;
    if (tail > pages) pool.setRange(w, pages, tail - pages, true);
    put(w, HDR_VERSION, PMPOOL_VERSION);
    put(w, HDR_PAGE_SIZE, PAGE_SIZE);
    put(w, HDR_FLAGS, 0);
    put(w, HDR_BASE_LO, basePhys % 0x100000000);
    put(w, HDR_BASE_HI, Math.floor(basePhys / 0x100000000));
    put(w, HDR_PAGES, pages);
    put(w, HDR_BITMAP_OFFSET, BITMAP_OFFSET);
    put(w, HDR_BITMAP_LENGTH, bitmapLength(pages));
    put(w, HDR_META_PAGES, meta);
    put(w, HDR_GENERATION, generation);
    put(w, HDR_CRC, headerCrc(w, PMPOOL_MAGIC));
    put(w, HDR_MAGIC, PMPOOL_MAGIC);
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
    const head = device.bytes(basePhys, PAGE_SIZE);
    const hw = new Uint32Array(head.buffer, head.byteOffset, PAGE_SIZE / 4);
    const at = `pmpool at 0x${basePhys.toString(16)}`;
    if (hw[HDR_MAGIC] !== PMPOOL_MAGIC) {
      throw new PmpoolError('ENODEV', `${at}: no pool header (magic 0x${hex8(hw[HDR_MAGIC])})`);
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
        `${at}: header crc 0x${hex8(hw[HDR_CRC])} does not match its contents (0x${hex8(crc)})`,
      );
    }
    if (hw[HDR_PAGE_SIZE] !== PAGE_SIZE) {
      throw new PmpoolError('EFAULT', `${at}: page size ${hw[HDR_PAGE_SIZE]}, not ${PAGE_SIZE}`);
    }
    const recordedBase = hw[HDR_BASE_HI] * 0x100000000 + hw[HDR_BASE_LO];
    if (recordedBase !== basePhys) {
      throw new PmpoolError(
        'ESTALE',
        `${at}: the pool there was made for base 0x${recordedBase.toString(16)}, not 0x${basePhys.toString(16)}`,
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
      hw[HDR_META_PAGES] !== metadataPages(pages)
    ) {
      throw new PmpoolError(
        'EFAULT',
        `${at}: bitmap at +${hw[HDR_BITMAP_OFFSET]} of ${hw[HDR_BITMAP_LENGTH]} bytes in ${hw[HDR_META_PAGES]} pages does not fit a pool of ${pages} pages`,
      );
    }
    const pool = new CmaPool(device, basePhys, pages, hw[HDR_GENERATION], options);
    const report = pool.check({ repair: options.repair ?? true, strict: true });
    pool.attachReport = report;
    return pool;
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
      throw new PmpoolError('EINVAL', `alloc: count must be a positive integer, got ${count}`);
    }
    if (!isPowerOfTwo(align)) {
      throw new PmpoolError('EINVAL', `alloc: align must be a power of two, got ${align}`);
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
    this.store(w, INTENT_OP, INTENT_NONE);
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
        `release: pfn and count must be integers, count >= 1, got ${pfn}, ${count}`,
      );
    }
    const first = pfn - this.basePfn;
    if (first < this.metadataPages || first + count > this.pages) return false;
    const w = this.words();
    if (this.nextZero(w, first, first + count) < first + count) return false;
    this.assertIdle(w);
    this.beginIntent(w, INTENT_RELEASE, first, count);
    this.setRange(w, first, count, false);
    this.store(w, INTENT_OP, INTENT_NONE);
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
   * Checks the metadata (header crc, metadata and tail bits set, intent slot)
   * and reports the operation a killed process left in flight. With `repair`,
   * recovers it (an alloc is undone, a release completed: either way its
   * pages become free, since its caller never got them or gave them up),
   * clears a corrupt intent record (its pages, if any, stay leaked rather
   * than risk a double hand-out), and marks missing metadata bits used.
   * @throws PmpoolError EFAULT with `strict` (attach) for corruption.
   */
  check(options: { repair?: boolean; strict?: boolean } = {}): CheckReport {
    const repair = options.repair ?? false;
    const w = this.words();
    const problems: string[] = [];
    let repaired = false;
    const fail = (msg: string): void => {
      if (options.strict) throw new PmpoolError('EFAULT', `pmpool at 0x${this.at()}: ${msg}`);
      problems.push(msg);
    };
    if (get(w, HDR_MAGIC) !== PMPOOL_MAGIC || get(w, HDR_CRC) !== headerCrc(w, PMPOOL_MAGIC)) {
      fail('header magic or crc is wrong');
    }
    const metaEnd = this.nextZero(w, 0, this.metadataPages);
    if (metaEnd < this.metadataPages) {
      fail(`metadata page ${metaEnd} is marked free in the bitmap`);
      if (repair) {
        this.setRange(w, 0, this.metadataPages, true);
        repaired = true;
      }
    }
    const tailEnd = Math.ceil(this.pages / 32) * 32;
    if (this.nextZero(w, this.pages, tailEnd) < tailEnd) {
      fail('bitmap bits past the last page are clear');
      if (repair) {
        this.setRange(w, this.pages, tailEnd - this.pages, true);
        repaired = true;
      }
    }
    let intent: PendingIntent | null = null;
    let reclaimed = 0;
    const op = get(w, INTENT_OP);
    if (op !== INTENT_NONE) {
      const bad = this.intentProblem(w);
      if (bad !== null) {
        fail(`intent record is corrupt: ${bad}`);
        if (repair) {
          this.store(w, INTENT_OP, INTENT_NONE);
          repaired = true;
        }
      } else {
        const first = get(w, INTENT_FIRST);
        const count = get(w, INTENT_COUNT);
        intent = {
          op: op === INTENT_ALLOC ? 'alloc' : 'release',
          seq: get(w, INTENT_SEQ),
          pfn: this.basePfn + first,
          count,
        };
        problems.push(
          `${intent.op} of ${count} pages at pfn 0x${intent.pfn.toString(16)} (seq ${intent.seq}) was in flight`,
        );
        if (repair) {
          for (let i = first; i < first + count; ) {
            const s = this.nextSet(w, i, first + count);
            if (s >= first + count) break;
            const e = this.nextZero(w, s, first + count);
            reclaimed += e - s;
            i = e;
          }
          this.setRange(w, first, count, false);
          this.store(w, INTENT_OP, INTENT_NONE);
          repaired = true;
        }
      }
    }
    return { ok: problems.length === 0, intent, reclaimedPages: reclaimed, repaired, problems };
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
    const s = intentScratch;
    s[0] = op;
    s[1] = seq;
    s[2] = this.generation;
    s[3] = first;
    s[4] = count;
    const crc = crc32c(intentScratchBytes);
    this.store(w, INTENT_SEQ, seq);
    if (get(w, INTENT_GENERATION) !== this.generation) {
      this.store(w, INTENT_GENERATION, this.generation);
    }
    this.store(w, INTENT_FIRST, first);
    this.store(w, INTENT_COUNT, count);
    this.store(w, INTENT_CRC, crc);
    this.store(w, INTENT_OP, op);
  }

  /** Why the committed intent record cannot be trusted, or null when it can. */
  private intentProblem(w: DataView): string | null {
    const op = get(w, INTENT_OP);
    if (op !== INTENT_ALLOC && op !== INTENT_RELEASE) return `unknown op ${op}`;
    const s = intentScratch;
    for (let k = 0; k < INTENT_CRC_WORDS; k++) s[k] = get(w, INTENT_OP + k);
    if (crc32c(intentScratchBytes) !== get(w, INTENT_CRC)) return 'crc mismatch';
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

  /** Sets or clears bits [first, first + count): one store per word touched. */
  private setRange(w: DataView, first: number, count: number, used: boolean): void {
    const end = first + count;
    for (let i = first; i < end; ) {
      const bit = i & 31;
      const n = Math.min(32 - bit, end - i);
      const k = BM + (i >>> 5);
      if (n === 32) {
        this.store(w, k, used ? -1 : 0); // a whole word: no need to read it
      } else {
        const mask = ((1 << n) - 1) << bit;
        const cur = get(w, k);
        this.store(w, k, used ? cur | mask : cur & ~mask);
      }
      i += n;
    }
  }

  private at(): string {
    return this.basePhys.toString(16);
  }
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
      `pool [0x${basePhys.toString(16)}, +0x${size.toString(16)}) is outside ${device.name} (0x${device.size.toString(16)} bytes)`,
    );
  }
  const pages = size / PAGE_SIZE;
  if (pages > MAX_POOL_PAGES) {
    throw new PmpoolError('EINVAL', `a pool holds at most ${MAX_POOL_PAGES} pages, got ${pages}`);
  }
  return pages;
}

function checkOrder(order: number): void {
  if (!Number.isInteger(order) || order < 0 || order > MAX_ORDER_ARG) {
    throw new PmpoolError(
      'EINVAL',
      `order must be an integer in 0..${MAX_ORDER_ARG}, got ${order}`,
    );
  }
}

/** crc32c of the header's covered bytes, with `magic` in place of the stored magic word (format writes it last). */
function headerCrc(header: ArrayBufferView, magic: number): number {
  const copy = new Uint8Array(header.buffer, header.byteOffset, HDR_CRC_BYTES).slice();
  new DataView(copy.buffer).setUint32(0, magic, true);
  return crc32c(copy);
}

/** Word `index` of a little-endian metadata view (DataView accesses inline in V8). */
function get(w: DataView, index: number): number {
  return w.getUint32(index * 4, true);
}

function put(w: DataView, index: number, value: number): void {
  w.setUint32(index * 4, value, true);
}

function isPowerOfTwo(n: number): boolean {
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

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}
