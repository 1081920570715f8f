/**
 * A PKRAM object: a folio stream and a byte stream, in one object page
 * (layout in abi.ts). An object is opened either for saving (entries are
 * appended and the counts in the object page kept current) or for loading
 * (cursors walk the streams in order).
 */

import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import { getU64, setU64 } from './_u64.js';
import {
  LINK_OFF_COUNT,
  LINK_OFF_NEXT,
  OBJ_OFF_BYTE_HEAD,
  OBJ_OFF_BYTE_LEN,
  OBJ_OFF_FOLIO_HEAD,
  OBJ_OFF_MAGIC,
  OBJ_OFF_NR_FOLIOS,
  PKRAM_ENTRY_FL_RELOCATED,
  PKRAM_LINK_ENTRIES,
  PKRAM_MAX_ORDER,
  PKRAM_OBJ_MAGIC,
} from './abi.js';
import { PkramError } from './errors.js';
import type { Pkram } from './pkram.js';
import { sealPage } from './seal.js';
import { LinkCursor, type LinkEntry, LinkWriter, readEntry } from './stream.js';

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

type ObjectState = 'saving' | 'loading' | 'closed';

/** Formats a fresh object page. */
export function initObjectPage(device: MemoryDevice, pfn: number): void {
  const bytes = device.bytes(pfn * PAGE_SIZE, PAGE_SIZE);
  bytes.fill(0);
  device.view(pfn * PAGE_SIZE, 4).setUint32(OBJ_OFF_MAGIC, PKRAM_OBJ_MAGIC, true);
}

/**
 * Frees what an object held, as a load ends: its object page, link pages and
 * data pages, and the folios from entry `taken` on that PKRAM owns (all of
 * them when `inherited`, else only relocated copies: a folio saved in this
 * boot stays the program's).
 */
export function releaseObject(pkram: Pkram, pfn: number, taken: number, inherited: boolean): void {
  const device = pkram.device;
  const view = device.view(pfn * PAGE_SIZE, PAGE_SIZE);
  const frees: number[] = [];
  const orders: number[] = [];
  const collect = (head: number, folios: boolean): void => {
    let n = 0;
    let link = head;
    const e: LinkEntry = { pfn: 0, order: 0, flags: 0, index: 0 };
    // The walker validated these chains (or this kernel wrote them); the guard is a backstop.
    for (let guard = 0; link !== 0 && guard < device.pages; guard++) {
      const lv = device.view(link * PAGE_SIZE, PAGE_SIZE);
      const count = Math.min(lv.getUint32(LINK_OFF_COUNT, true), PKRAM_LINK_ENTRIES);
      for (let i = 0; i < count; i++, n++) {
        readEntry(lv, i, e);
        const owned = !folios || inherited || (e.flags & PKRAM_ENTRY_FL_RELOCATED) !== 0;
        if (owned && (!folios || n >= taken)) {
          frees.push(e.pfn);
          orders.push(e.order);
        }
      }
      frees.push(link);
      orders.push(0);
      link = getU64(lv, LINK_OFF_NEXT);
    }
  };
  collect(getU64(view, OBJ_OFF_FOLIO_HEAD), true);
  collect(getU64(view, OBJ_OFF_BYTE_HEAD), false);
  frees.push(pfn);
  orders.push(0);
  for (let i = 0; i < frees.length; i++) pkram._free(frees[i], orders[i]);
}

export class PkramObject {
  #state: ObjectState;
  // Saving.
  #folios: LinkWriter | null = null;
  #data: LinkWriter | null = null;
  #dataPfn = 0;
  #dataOff = PAGE_SIZE;
  #dataPages = 0;
  #nrFolios = 0;
  #bytes = 0;
  /** Spare link pages reserved ahead of an append that must not fail half-way. */
  readonly #spares: number[] = [];
  /** Pages this object copied folios into (so a failed rebuild can free them). */
  readonly _copies: number[] = [];
  // Loading.
  #folioCursor: LinkCursor | null = null;
  #byteCursor: LinkCursor | null = null;
  #bytesLeft = 0;
  #taken = 0;

  /** @internal Made by PkramNode.prepareSaveObj / prepareLoadObj. */
  constructor(
    private readonly pkram: Pkram,
    /** pfn of the object page. */
    readonly pfn: number,
    mode: 'save' | 'load',
    private readonly inherited: boolean,
    private readonly onClose: (obj: PkramObject) => void,
    private readonly onRelocate: (folios: number) => void,
  ) {
    const device = pkram.device;
    const view = (): DataView => device.view(pfn * PAGE_SIZE, PAGE_SIZE);
    this.#state = mode === 'save' ? 'saving' : 'loading';
    if (mode === 'save') {
      const alloc = (): number => this.#spares.pop() ?? pkram._allocPage();
      this.#folios = new LinkWriter(device, alloc, (p) => setU64(view(), OBJ_OFF_FOLIO_HEAD, p));
      this.#data = new LinkWriter(device, alloc, (p) => setU64(view(), OBJ_OFF_BYTE_HEAD, p));
    } else {
      const v = view();
      this.#folioCursor = new LinkCursor(device, getU64(v, OBJ_OFF_FOLIO_HEAD));
      this.#byteCursor = new LinkCursor(device, getU64(v, OBJ_OFF_BYTE_HEAD));
      this.#bytesLeft = getU64(v, OBJ_OFF_BYTE_LEN);
      this.#bytes = this.#bytesLeft;
    }
  }

  /**
   * Records a folio in the folio stream; the folio stays the program's and is
   * not copied, unless it lies in an avoided range: then it is copied into
   * new base pages (order-0 entries with consecutive indexes, flagged relocated).
   * @throws PkramError EINVAL (not saving; a bad pfn, order or index; the folio is
   *   already in PKRAM), EEXIST (KHO or a pool holds a page of it), ENOMEM
   *   (nothing is recorded then), ENODEV.
   */
  saveFolio(folio: Folio, index: number): void {
    this.#expect('saving', 'saveFolio');
    const device = this.pkram.device;
    const { pfn, order } = folio ?? ({} as Folio);
    if (!Number.isInteger(order) || order < 0 || order > PKRAM_MAX_ORDER) {
      throw new PkramError('EINVAL', `folio order ${order} is not in 0..${PKRAM_MAX_ORDER}`);
    }
    const size = 2 ** order;
    if (!Number.isSafeInteger(pfn) || pfn < 0 || pfn % size !== 0 || pfn + size > device.pages) {
      throw new PkramError(
        'EINVAL',
        `folio pfn ${pfn} order ${order} is misaligned or outside ${device.name}`,
      );
    }
    if (!Number.isSafeInteger(index) || index < 0 || index + size > Number.MAX_SAFE_INTEGER) {
      throw new PkramError('EINVAL', `folio index ${index} is not a non-negative integer`);
    }
    if (this.pkram._isPreserved(pfn, order)) {
      throw new PkramError('EINVAL', `folio pfn ${pfn} order ${order} is already preserved`);
    }
    this.pkram._checkNotHeld(pfn, order);
    if (this.pkram._collides(pfn, size)) this._saveCopy(pfn, order, index);
    else this._append(pfn, order, 0, index);
  }

  /** @internal Appends an entry as is (pages not copied). @throws PkramError ENOMEM. */
  _append(pfn: number, order: number, flags: number, index: number): void {
    this.#reserveLinks(1);
    this.#folios!.append(pfn, order, flags, index);
    this.#nrFolios++;
    setU64(this.#view(), OBJ_OFF_NR_FOLIOS, this.#nrFolios);
  }

  /** @internal Copies a folio into new base pages and appends them, all or nothing. @throws PkramError ENOMEM. */
  _saveCopy(pfn: number, order: number, index: number): void {
    const device = this.pkram.device;
    const size = 2 ** order;
    this.#reserveLinks(size);
    const copies: number[] = [];
    try {
      for (let i = 0; i < size; i++) copies.push(this.pkram._allocPage());
    } catch (err) {
      for (const p of copies) this.pkram._free(p, 0);
      throw err;
    }
    for (let i = 0; i < size; i++) {
      device
        .bytes(copies[i] * PAGE_SIZE, PAGE_SIZE)
        .set(device.bytes((pfn + i) * PAGE_SIZE, PAGE_SIZE));
      this.#folios!.append(copies[i], 0, PKRAM_ENTRY_FL_RELOCATED, index + i);
      this._copies.push(copies[i]);
    }
    this.#nrFolios += size;
    setU64(this.#view(), OBJ_OFF_NR_FOLIOS, this.#nrFolios);
    this.onRelocate(1);
  }

  /**
   * Appends bytes to the byte stream, copying them into data pages PKRAM allocates.
   * On ENOMEM the bytes before the failure stay written (the byte length says how many).
   * @throws PkramError EINVAL (not saving, not a Uint8Array), ENOMEM, ENODEV.
   */
  write(bytes: Uint8Array): void {
    this.#expect('saving', 'write');
    if (!(bytes instanceof Uint8Array)) throw new PkramError('EINVAL', 'write takes a Uint8Array');
    const device = this.pkram.device;
    let done = 0;
    while (done < bytes.length) {
      if (this.#dataOff === PAGE_SIZE) {
        this.#reserveLinks(1);
        const page = this.pkram._allocPage();
        this.#data!.append(page, 0, 0, this.#dataPages++);
        this.#dataPfn = page;
        this.#dataOff = 0;
      }
      const n = Math.min(bytes.length - done, PAGE_SIZE - this.#dataOff);
      device
        .bytes(this.#dataPfn * PAGE_SIZE + this.#dataOff, n)
        .set(bytes.subarray(done, done + n));
      this.#dataOff += n;
      done += n;
      this.#bytes += n;
      setU64(this.#view(), OBJ_OFF_BYTE_LEN, this.#bytes);
    }
  }

  /** Ends saving this object. @throws PkramError EINVAL (not saving), ENODEV. */
  finishSaveObj(): void {
    this.#expect('saving', 'finishSaveObj');
    this._close();
  }

  /**
   * The next folio of the folio stream, now the caller's; null at the end.
   * @throws PkramError EINVAL (not loading), ENODEV.
   */
  loadFolio(): LoadedFolio | null {
    this.#expect('loading', 'loadFolio');
    const e = this.#folioCursor!.next();
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
    const device = this.pkram.device;
    let done = 0;
    while (done < buf.length && this.#bytesLeft > 0) {
      if (this.#dataOff === PAGE_SIZE) {
        const e = this.#byteCursor!.next();
        if (e === null)
          throw new PkramError('EFAULT', `object ${this.pfn}: byte stream ends early`);
        this.#dataPfn = e.pfn;
        this.#dataOff = 0;
      }
      const n = Math.min(buf.length - done, PAGE_SIZE - this.#dataOff, this.#bytesLeft);
      buf.set(device.bytes(this.#dataPfn * PAGE_SIZE + this.#dataOff, n), done);
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
    this._close();
  }

  /** @internal Closes the object in any state (a node's finish or discard does this). */
  _close(): void {
    if (this.#state === 'closed') return;
    if (this.#state === 'saving') {
      this.#folios!.seal();
      this.#data!.seal();
      sealPage(this.pkram.device, this.pfn, 'object');
    }
    if (this.#state === 'loading') releaseObject(this.pkram, this.pfn, this.#taken, this.inherited);
    for (const p of this.#spares.splice(0)) this.pkram._free(p, 0);
    this.#state = 'closed';
    this.onClose(this);
  }

  /** Bytes in the byte stream so far (saving) or in total (loading, before any read). */
  get byteLength(): number {
    return this.#bytes;
  }

  #view(): DataView {
    return this.pkram.device.view(this.pfn * PAGE_SIZE, PAGE_SIZE);
  }

  /** Makes sure the next n folio or data entries can be appended without an allocation. */
  #reserveLinks(n: number): void {
    // n entries into one chain need at most one new link page per PKRAM_LINK_ENTRIES.
    const need = Math.ceil(n / PKRAM_LINK_ENTRIES);
    while (this.#spares.length < need) this.#spares.push(this.pkram._allocPage());
  }

  #expect(state: ObjectState, op: string): void {
    this.pkram._check();
    if (this.#state !== state) {
      throw new PkramError('EINVAL', `${op}: object ${this.pfn} is ${this.#state}, not ${state}`);
    }
  }
}
