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
   *   already preserved, or transient: memory that is never preserved, such as
   *   `kernel.allocPages(order, { transient: true })` gives), ENOMEM (nothing
   *   is recorded then), ENODEV.
   */
  saveFolio(folio: Folio, index: number): void {
    const writer = this.#writer;
    if (this.#state !== 'saving' || writer === null) this.#expect('saving', 'saveFolio');
    const host = this.#owner.host;
    host.check();
    const { pfn, order } = folio ?? ({} as Folio);
    if (!Number.isInteger(order) || order < 0 || order > PKRAM_MAX_ORDER) {
      throw new PkramError('EINVAL', `folio order ${order} is not in 0..${PKRAM_MAX_ORDER}`);
    }
    const size = 1 << order;
    if (
      !Number.isSafeInteger(pfn) ||
      pfn < 0 ||
      Math.floor(pfn / size) * size !== pfn ||
      pfn + size > this.#device.pages
    ) {
      throw new PkramError(
        'EINVAL',
        `folio pfn ${pfn} order ${order} is misaligned or outside ${this.#device.name}`,
      );
    }
    if (!Number.isSafeInteger(index) || index < 0 || index + size > Number.MAX_SAFE_INTEGER) {
      throw new PkramError('EINVAL', `folio index ${index} is not a non-negative integer`);
    }
    if (host.isPreserved(pfn, order)) {
      throw new PkramError('EINVAL', `folio pfn ${pfn} order ${order} is already preserved`);
    }
    if (host.isTransient(pfn, size)) {
      throw new PkramError(
        'EINVAL',
        `folio pfn ${pfn} order ${order} is transient memory (KHO scratch), which is never preserved: allocate it without transient, or write its bytes`,
      );
    }
    const w = writer as ObjectWriter;
    if (host.collides(pfn, size)) w.saveCopy(pfn, order, index);
    else w.append(pfn, order, 0, index);
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
