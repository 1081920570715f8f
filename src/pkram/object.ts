/**
 * A PKRAM object: a folio stream and a byte stream, in one object page
 * (layout in abi.ts). An object is opened either for saving (entries are
 * appended by an ObjectWriter, writer.ts) or for loading (cursors walk the
 * streams in order).
 */

import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import {
  OBJ_OFF_BYTE_HEAD,
  OBJ_OFF_BYTE_LEN,
  OBJ_OFF_FOLIO_HEAD,
  PKRAM_ENTRY_FL_RELOCATED,
  PKRAM_ENTRY_ORDER_MASK,
  PKRAM_LINK_ENTRIES,
  PKRAM_MAX_ORDER,
} from './abi.js';
import { PkramError } from './errors.js';
import type { PkramHost } from './host.js';
import { RunList } from './runs.js';
import {
  entryLo,
  entryPfn,
  LinkCursor,
  linkCount,
  linkNext,
  NO_BYTES,
  pageWords,
  wordsU64,
} from './stream.js';
import type { ObjectWriter } from './writer.js';

/** A block of 2^order pages starting at pfn, as the page allocator hands out. */
export interface Folio {
  pfn: number;
  order: number;
}

/** One folio handed back by loadFolio, with the mapping index it was saved at. */
export interface LoadedFolio {
  folio: Folio;
  index: number;
}

/** What an object needs from the node that opened it. */
export interface ObjectOwner {
  readonly host: PkramHost;
  /** True when the node came from the predecessor: then PKRAM owns every folio in it. */
  readonly inherited: boolean;
  /** The object was finished (or closed by its node). */
  closed(obj: PkramObject): void;
}

type ObjectState = 'saving' | 'loading' | 'closed';

/**
 * Frees what an object held, as a load ends: its object page, link pages and
 * data pages, and the folios from entry `taken` on that PKRAM owns (all of
 * them when `inherited`, else only relocated copies: a folio saved in this
 * boot stays the program's).
 */
export function releaseObject(
  host: PkramHost,
  pfn: number,
  taken: number,
  inherited: boolean,
): void {
  const { device } = host;
  const frees = new RunList();
  const collect = (head: number, folios: boolean): void => {
    let n = 0;
    // The walker validated these chains (or this kernel wrote them); the guard is a backstop.
    for (let link = head, guard = 0; link !== 0 && guard < device.pages; guard++) {
      const w = pageWords(device, link);
      const count = Math.min(linkCount(w), PKRAM_LINK_ENTRIES);
      // Folios before `taken` were handed out: the caller has them.
      for (let i = folios ? Math.max(0, taken - n) : 0; i < count; i++) {
        const lo = entryLo(w, i);
        if (!folios || inherited || (lo & PKRAM_ENTRY_FL_RELOCATED) !== 0) {
          frees.add(entryPfn(w, i), lo & PKRAM_ENTRY_ORDER_MASK);
        }
      }
      n += count;
      frees.add(link, 0);
      link = linkNext(w);
    }
  };
  const words = pageWords(device, pfn);
  collect(wordsU64(words, OBJ_OFF_FOLIO_HEAD / 4), true);
  collect(wordsU64(words, OBJ_OFF_BYTE_HEAD / 4), false);
  frees.add(pfn, 0);
  freeRuns(host, frees, inherited);
}

/**
 * Returns runs of blocks to the page source: block by block as they were
 * allocated, or, for a predecessor's node (every page reserved since early
 * boot, nothing allocated as a block), as the largest aligned blocks that
 * tile each run: a few calls for a run of a thousand link pages.
 */
export function freeRuns(host: PkramHost, runs: RunList, inherited: boolean): void {
  for (let r = 0; r < runs.length; r++) {
    const size = 2 ** runs.orders[r];
    const start = runs.pfns[r];
    const end = start + runs.blocks[r] * size;
    if (!inherited) {
      for (let p = start; p < end; p += size) host.free(p, runs.orders[r]);
      continue;
    }
    for (let p = start; p < end; ) {
      let order = 0;
      while (order < PKRAM_MAX_ORDER && p % 2 ** (order + 1) === 0 && p + 2 ** (order + 1) <= end) {
        order++;
      }
      host.free(p, order);
      p += 2 ** order;
    }
  }
}

/**
 * Why saveFolio refuses a folio, or null: every check but the page
 * allocation (one message text for saveFolio and saveFolios).
 */
function folioRefusal(host: PkramHost, pfn: number, order: number, index: number): string | null {
  if (!Number.isInteger(order) || order < 0 || order > PKRAM_MAX_ORDER) {
    return `folio order ${order} is not in 0..${PKRAM_MAX_ORDER}`;
  }
  const size = 1 << order;
  if (
    !Number.isSafeInteger(pfn) ||
    pfn < 0 ||
    Math.floor(pfn / size) * size !== pfn ||
    pfn + size > host.device.pages
  ) {
    return `folio pfn ${pfn} order ${order} is misaligned or outside ${host.device.name}`;
  }
  if (!Number.isSafeInteger(index) || index < 0 || index + size > Number.MAX_SAFE_INTEGER) {
    return `folio index ${index} is not a non-negative integer`;
  }
  if (host.isPreserved(pfn, order)) return `folio pfn ${pfn} order ${order} is already preserved`;
  if (host.isTransient(pfn, size)) {
    return `folio pfn ${pfn} order ${order} is transient memory (KHO scratch), which is never preserved: allocate it without transient, or write its bytes`;
  }
  return null;
}

const NO_ORDERS: ArrayLike<number> = new Uint8Array(0);

/** ObjectWriter.saveChunk, with ENOMEM left to the per-folio path (which says EINVAL first for a bad folio). */
function saveChunk(
  w: ObjectWriter,
  pfns: ArrayLike<number>,
  order: number,
  orders: ArrayLike<number>,
  indexes: ArrayLike<number>,
  from: number,
  n: number,
  clean: (runs: RunList) => boolean,
): number {
  try {
    return w.saveChunk(pfns, order, orders, indexes, from, n, clean);
  } catch (err) {
    if (err instanceof PkramError && err.code === 'ENOMEM') return 0;
    throw err;
  }
}

/** Whether no run is transient, avoided or already preserved. */
function runsClean(host: PkramHost, runs: RunList): boolean {
  // The span of all runs first: mostly it touches no scratch or avoided range and nothing is
  // preserved yet, and then a page of folios in scattered runs costs a few checks, not one a run.
  let lo = Number.POSITIVE_INFINITY;
  let hi = 0;
  for (let r = 0; r < runs.length; r++) {
    lo = Math.min(lo, runs.pfns[r]);
    hi = Math.max(hi, runs.pfns[r] + runs.blocks[r] * 2 ** runs.orders[r]);
  }
  const ranges =
    host.isTransient(lo, hi - lo) || host.collides(lo, hi - lo) || host.heldByOther(lo, hi - lo);
  const table = !host.preservesNothing();
  for (let r = 0; (ranges || table) && r < runs.length; r++) {
    const pfn = runs.pfns[r];
    const pages = runs.blocks[r] * 2 ** runs.orders[r];
    if (
      ranges &&
      (host.isTransient(pfn, pages) || host.collides(pfn, pages) || host.heldByOther(pfn, pages))
    )
      return false;
    if (table && host.anyPreserved(pfn, runs.blocks[r], runs.orders[r])) return false;
  }
  return true;
}

export class PkramObject {
  /** pfn of the object page. */
  readonly pfn: number;
  readonly #owner: ObjectOwner;
  readonly #device: MemoryDevice;
  #state: ObjectState;
  /** Saving. */
  readonly #writer: ObjectWriter | null;
  // Loading.
  #folioCursor: LinkCursor;
  #byteCursor: LinkCursor;
  #bytes = 0;
  #bytesLeft = 0;
  #taken = 0;
  #data: Uint8Array = NO_BYTES;
  #dataOff = PAGE_SIZE;

  /** @internal Made by PkramNode.prepareSaveObj (with its writer) / prepareLoadObj (without). */
  constructor(owner: ObjectOwner, pfn: number, writer: ObjectWriter | null) {
    this.#owner = owner;
    this.#device = owner.host.device;
    this.pfn = pfn;
    this.#writer = writer;
    this.#state = writer !== null ? 'saving' : 'loading';
    // Both modes set every field, so saving and loading objects share one hidden class.
    const w = pageWords(this.#device, pfn);
    const loading = writer === null;
    this.#folioCursor = new LinkCursor(
      this.#device,
      loading ? wordsU64(w, OBJ_OFF_FOLIO_HEAD / 4) : 0,
    );
    this.#byteCursor = new LinkCursor(
      this.#device,
      loading ? wordsU64(w, OBJ_OFF_BYTE_HEAD / 4) : 0,
    );
    this.#bytes = this.#bytesLeft = loading ? wordsU64(w, OBJ_OFF_BYTE_LEN / 4) : 0;
  }

  /**
   * Records a folio in the folio stream; the folio stays the program's and is
   * not copied, unless it lies in an avoided range: then it is copied into
   * new base pages (order-0 entries with consecutive indexes, flagged relocated).
   * @throws PkramError EINVAL (not saving; a bad pfn, order or index; the folio is
   *   already in PKRAM, or transient: memory that is never preserved, such as
   *   `kernel.allocPages(order, { transient: true })` gives), EEXIST (KHO or a
   *   pool holds a page of it), ENOMEM (nothing is recorded then), ENODEV.
   */
  saveFolio(folio: Folio, index: number): void {
    const writer = this.#writer;
    if (this.#state !== 'saving' || writer === null) this.#expect('saving', 'saveFolio');
    const host = this.#owner.host;
    host.check();
    const { pfn, order } = folio ?? ({} as Folio);
    const why = folioRefusal(host, pfn, order, index);
    if (why !== null) throw new PkramError('EINVAL', why);
    host.checkNotHeld(pfn, order);
    this.#record(writer as ObjectWriter, host, pfn, order, index);
  }

  /**
   * Records many folios, as saveFolio does each in turn: folio i is the
   * block of 2^order pages at `pfns[i]` (order `orders[i]`, or `orders` for
   * all), saved at mapping index `indexes[i]`. Nothing is allocated per
   * folio: for large saves, from typed arrays, this is the fast way.
   * As with saveFolio called for each, a folio that is refused (EINVAL) or
   * cannot be recorded (ENOMEM) leaves the folios before it recorded and
   * the rest not; the message says which folio it was.
   * @throws PkramError EINVAL (not saving; arrays of different lengths; a
   *   folio saveFolio would refuse), EEXIST (KHO or a pool holds a page of
   *   a folio), ENOMEM, ENODEV.
   */
  saveFolios(
    pfns: ArrayLike<number>,
    orders: ArrayLike<number> | number,
    indexes: ArrayLike<number>,
  ): void {
    const writer = this.#writer;
    if (this.#state !== 'saving' || writer === null) this.#expect('saving', 'saveFolios');
    const host = this.#owner.host;
    host.check();
    const n = pfns?.length;
    const one = typeof orders === 'number';
    if (
      !Number.isSafeInteger(n) ||
      indexes?.length !== n ||
      (!one && (orders as ArrayLike<number> | undefined)?.length !== n)
    ) {
      throw new PkramError('EINVAL', 'saveFolios takes pfns, orders and indexes of one length');
    }
    const order = one ? (orders as number) : -1;
    const list = one ? NO_ORDERS : (orders as ArrayLike<number>);
    const w = writer as ObjectWriter;
    const clean = (runs: RunList): boolean => runsClean(host, runs);
    for (let i = 0; i < n; ) {
      // A link page's worth at a time: checked by arithmetic a folio at a time, against
      // the table, scratch and avoided ranges a run at a time, then a few stores each.
      const done = saveChunk(w, pfns, order, list, indexes, i, n, clean);
      if (done > 0) {
        i += done;
        continue;
      }
      // Refused, or a run touches something: folio by folio, as saveFolio, for a chunk.
      for (const end = Math.min(n, i + PKRAM_LINK_ENTRIES); i < end; i++) {
        const o = one ? order : list[i];
        const why = folioRefusal(host, pfns[i], o, indexes[i]);
        if (why !== null) throw new PkramError('EINVAL', `folio ${i} of ${n}: ${why}`);
        host.checkNotHeld(pfns[i], o);
        try {
          this.#record(w, host, pfns[i], o, indexes[i]);
        } catch (err) {
          if (!(err instanceof PkramError) || err.code !== 'ENOMEM') throw err;
          throw new PkramError('ENOMEM', `folio ${i} of ${n}: ${err.message}`, undefined, {
            cause: err,
          });
        }
      }
    }
  }

  /** Appends a checked folio, or a copy of it when it lies in an avoided range. */
  #record(writer: ObjectWriter, host: PkramHost, pfn: number, order: number, index: number): void {
    if (host.collides(pfn, 1 << order)) writer.saveCopy(pfn, order, index);
    else writer.append(pfn, order, 0, index);
  }

  /**
   * Appends bytes to the byte stream, copying them into data pages PKRAM allocates.
   * On ENOMEM the bytes before the failure stay written (the byte length says how many).
   * @throws PkramError EINVAL (not saving, not a Uint8Array), ENOMEM, ENODEV.
   */
  write(bytes: Uint8Array): void {
    this.#expect('saving', 'write');
    if (!(bytes instanceof Uint8Array)) throw new PkramError('EINVAL', 'write takes a Uint8Array');
    (this.#writer as ObjectWriter).write(bytes);
  }

  /** Ends saving this object. @throws PkramError EINVAL (not saving), ENODEV. */
  finishSaveObj(): void {
    this.#expect('saving', 'finishSaveObj');
    (this.#writer as ObjectWriter).close();
    this.#close();
  }

  /**
   * The next folio of the folio stream, now the caller's; null at the end.
   * @throws PkramError EINVAL (not loading), ENODEV.
   */
  loadFolio(): LoadedFolio | null {
    this.#expect('loading', 'loadFolio');
    const e = this.#folioCursor.next();
    if (e === null) return null;
    this.#taken++;
    return { folio: { pfn: e.pfn, order: e.order }, index: e.index };
  }

  /**
   * Loads up to `pfns.length` folios at once, as loadFolio does each in
   * turn, into the arrays: folio i is the block of 2^orders[i] pages at
   * pfns[i], saved at indexes[i]. No object per folio.
   * @returns how many were loaded: fewer than asked at the end of the stream, then 0.
   * @throws PkramError EINVAL (not loading; arrays shorter than pfns), EFAULT, ENODEV.
   */
  loadFolios(pfns: Float64Array, orders: Uint8Array, indexes: Float64Array): number {
    this.#expect('loading', 'loadFolios');
    if (
      !(pfns instanceof Float64Array) ||
      !(orders instanceof Uint8Array) ||
      !(indexes instanceof Float64Array) ||
      orders.length < pfns.length ||
      indexes.length < pfns.length
    ) {
      throw new PkramError(
        'EINVAL',
        'loadFolios takes a Float64Array of pfns, a Uint8Array of orders and a Float64Array of indexes, as long',
      );
    }
    const n = this.#folioCursor.nextInto(pfns, orders, indexes);
    this.#taken += n;
    return n;
  }

  /**
   * Reads the byte stream into buf from where the last read stopped.
   * @returns bytes read: buf.length, or fewer at the end of the stream (0 once at the end).
   * @throws PkramError EINVAL (not loading, not a Uint8Array), EFAULT, ENODEV.
   */
  read(buf: Uint8Array): number {
    this.#expect('loading', 'read');
    if (!(buf instanceof Uint8Array)) throw new PkramError('EINVAL', 'read takes a Uint8Array');
    let done = 0;
    while (done < buf.length && this.#bytesLeft > 0) {
      if (this.#dataOff === PAGE_SIZE) {
        const e = this.#byteCursor.next();
        if (e === null)
          throw new PkramError('EFAULT', `object ${this.pfn}: byte stream ends early`);
        this.#data = this.#device.bytes(e.pfn * PAGE_SIZE, PAGE_SIZE);
        this.#dataOff = 0;
      }
      const n = Math.min(buf.length - done, PAGE_SIZE - this.#dataOff, this.#bytesLeft);
      buf.set(this.#data.subarray(this.#dataOff, this.#dataOff + n), done);
      this.#dataOff += n;
      this.#bytesLeft -= n;
      done += n;
    }
    return done;
  }

  /**
   * Ends loading this object: its link and data pages are freed, and the
   * folios not taken that PKRAM owns.
   * @throws PkramError EINVAL (not loading), ENODEV.
   */
  finishLoadObj(): void {
    this.#expect('loading', 'finishLoadObj');
    releaseObject(this.#owner.host, this.pfn, this.#taken, this.#owner.inherited);
    this.#close();
  }

  /** Bytes in the byte stream so far (saving) or in total (loading, before any read). */
  get byteLength(): number {
    return this.#writer !== null ? this.#writer.bytes : this.#bytes;
  }

  #close(): void {
    this.#state = 'closed';
    this.#owner.closed(this);
  }

  #expect(state: ObjectState, op: string): void {
    this.#owner.host.check();
    if (this.#state !== state) {
      throw new PkramError('EINVAL', `${op}: object ${this.pfn} is ${this.#state}, not ${state}`);
    }
  }
}
