/**
 * Writing a node into device pages (layout in abi.ts): the save side of
 * PkramNode and PkramObject, and what relocation uses to copy a node. Every
 * page a writer takes and every folio it records goes into its run lists as
 * it is taken, so finishSave preserves the runs without walking the node
 * again, and a discard frees them the same way.
 */

import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import {
  NODE_OFF_FLAGS,
  NODE_OFF_MAGIC,
  NODE_OFF_NAME,
  NODE_OFF_NAME_LEN,
  NODE_OFF_NR_OBJS,
  NODE_OFF_OBJ,
  OBJ_OFF_BYTE_HEAD,
  OBJ_OFF_BYTE_LEN,
  OBJ_OFF_FOLIO_HEAD,
  OBJ_OFF_MAGIC,
  OBJ_OFF_NEXT,
  OBJ_OFF_NR_FOLIOS,
  PKRAM_ENTRY_FL_RELOCATED,
  PKRAM_LINK_ENTRIES,
  PKRAM_NODE_MAGIC,
  PKRAM_OBJ_MAGIC,
} from './abi.js';
import { RunList } from './runs.js';
import { sealPage } from './seal.js';
import {
  type LinkPages,
  LinkWriter,
  NO_BYTES,
  NO_WORDS,
  pageWords,
  setWordsU64,
} from './stream.js';

/** Where a writer takes its pages. */
export interface WriterPages {
  readonly device: MemoryDevice;
  /** One page for PKRAM's own use. @throws PkramError ENOMEM. */
  allocPage(): number;
  free(pfn: number, order: number): void;
}

const W_OBJ_NR_FOLIOS = OBJ_OFF_NR_FOLIOS / 4;
const W_OBJ_BYTE_LEN = OBJ_OFF_BYTE_LEN / 4;

/** Sets a node page's flags and seals it. */
export function sealNode(device: MemoryDevice, pfn: number, flags: number): void {
  pageWords(device, pfn)[NODE_OFF_FLAGS / 4] = flags;
  sealPage(device, pfn, 'node');
}

export class NodeWriter {
  /** PKRAM's pages of the node: node, object, link and data pages. */
  readonly meta = new RunList();
  /** Base pages folios were copied into (relocated copies): PKRAM's too. */
  readonly copies = new RunList();
  /** Folio entries recorded as they are: the program's, or carried over by a relocation. */
  readonly folios = new RunList();
  /** Folios copied away from avoided ranges (each counts once, whatever its order). */
  relocatedFolios = 0;
  readonly pfn: number;
  readonly #words: Uint32Array;
  #lastObj: Uint32Array = NO_WORDS;
  #lastObjPfn = 0;
  #nrObjs = 0;

  /** Takes and formats the node page (name already checked: 1..256 bytes). @throws PkramError ENOMEM. */
  constructor(
    readonly pages: WriterPages,
    name: Uint8Array,
  ) {
    const { device } = pages;
    this.pfn = pages.allocPage();
    device.bytes(this.pfn * PAGE_SIZE, PAGE_SIZE).fill(0);
    this.#words = pageWords(device, this.pfn);
    this.#words[NODE_OFF_MAGIC / 4] = PKRAM_NODE_MAGIC;
    this.#words[NODE_OFF_NAME_LEN / 4] = name.length;
    device.bytes(this.pfn * PAGE_SIZE + NODE_OFF_NAME, name.length).set(name);
    this.meta.add(this.pfn, 0);
  }

  /** Starts the next object. @throws PkramError ENOMEM (nothing changed). */
  beginObject(): ObjectWriter {
    const obj = new ObjectWriter(this, this.pages.allocPage());
    this.meta.add(obj.pfn, 0);
    if (this.#lastObjPfn === 0) setWordsU64(this.#words, NODE_OFF_OBJ / 4, obj.pfn);
    else {
      // The previous object was sealed when it was finished; linking it changes it.
      setWordsU64(this.#lastObj, OBJ_OFF_NEXT / 4, obj.pfn);
      sealPage(this.pages.device, this.#lastObjPfn, 'object');
    }
    this.#lastObj = obj.words;
    this.#lastObjPfn = obj.pfn;
    this.#words[NODE_OFF_NR_OBJS / 4] = ++this.#nrObjs;
    return obj;
  }

  /** Frees what the writer took (its pages and copies), never the folios it recorded. */
  freePages(): void {
    for (const list of [this.meta, this.copies]) {
      const pairs = list.blockPairs();
      for (let i = 0; i < pairs.length; i += 2) this.pages.free(pairs[i], pairs[i + 1]);
    }
  }
}

export class ObjectWriter implements LinkPages {
  readonly words: Uint32Array;
  nrFolios = 0;
  bytes = 0;
  readonly #folioChain: LinkWriter;
  readonly #dataChain: LinkWriter;
  #data: Uint8Array = NO_BYTES;
  #dataOff = PAGE_SIZE;
  #dataPages = 0;
  /** Spare link pages reserved ahead of appends that must not fail half-way. */
  readonly #spares: number[] = [];
  /** A batch chunk's folios as runs (saveChunk's scratch). */
  readonly #chunk = new RunList();

  constructor(
    readonly node: NodeWriter,
    readonly pfn: number,
  ) {
    const { device } = node.pages;
    device.bytes(pfn * PAGE_SIZE, PAGE_SIZE).fill(0);
    this.words = pageWords(device, pfn);
    this.words[OBJ_OFF_MAGIC / 4] = PKRAM_OBJ_MAGIC;
    this.#folioChain = new LinkWriter(device, this);
    this.#dataChain = new LinkWriter(device, this);
  }

  takeLinkPage(): number {
    return this.#spares.pop() ?? this.node.pages.allocPage();
  }

  linkPageTaken(chain: LinkWriter, pfn: number): void {
    if (chain.head === pfn) {
      const head = chain === this.#folioChain ? OBJ_OFF_FOLIO_HEAD : OBJ_OFF_BYTE_HEAD;
      setWordsU64(this.words, head / 4, pfn);
    }
    this.node.meta.add(pfn, 0);
  }

  /**
   * Appends a folio entry as is (the pages are not copied); the count in the
   * object page is kept current, so the chain is walkable at any moment.
   * @throws PkramError ENOMEM (nothing appended).
   */
  append(pfn: number, order: number, flags: number, index: number): void {
    this.#folioChain.append(pfn, order, flags, index);
    this.node.folios.add(pfn, order);
    setWordsU64(this.words, W_OBJ_NR_FOLIOS, ++this.nrFolios);
  }

  /**
   * Records the folios of a batch from `from` on, up to a link page's worth:
   * written and checked by arithmetic (writeChecked), then a run at a time
   * by `clean` (table, scratch, avoided ranges); counted only if all pass.
   * Returns how many were recorded: 0 when folio `from` is refused or the
   * runs are not clean (the caller then takes the per-folio path).
   * @throws PkramError ENOMEM (nothing recorded).
   */
  saveChunk(
    pfns: ArrayLike<number>,
    order: number,
    orders: ArrayLike<number>,
    indexes: ArrayLike<number>,
    from: number,
    n: number,
    clean: (runs: RunList) => boolean,
  ): number {
    const chain = this.#folioChain;
    chain.ensureRoom();
    const runs = this.#chunk;
    runs.clear();
    const pages = this.node.pages.device.pages;
    const stop = chain.writeChecked(pfns, order, orders, indexes, from, n, pages, runs);
    if (stop === from || !clean(runs)) return 0;
    chain.commit(stop - from);
    for (let r = 0; r < runs.length; r++) {
      this.node.folios.addRun(runs.pfns[r], runs.blocks[r], runs.orders[r]);
    }
    this.nrFolios += stop - from;
    setWordsU64(this.words, W_OBJ_NR_FOLIOS, this.nrFolios);
    return stop - from;
  }

  /**
   * Copies a folio into new base pages and appends them (order-0 entries
   * with consecutive indexes, flagged relocated), all or nothing.
   * @throws PkramError ENOMEM.
   */
  saveCopy(pfn: number, order: number, index: number): void {
    const { device } = this.node.pages;
    const size = 2 ** order;
    this.#reserveLinks(size);
    const copies: number[] = [];
    try {
      for (let i = 0; i < size; i++) copies.push(this.node.pages.allocPage());
    } catch (err) {
      for (const p of copies) this.node.pages.free(p, 0);
      throw err;
    }
    for (let i = 0; i < size; i++) {
      device
        .bytes(copies[i] * PAGE_SIZE, PAGE_SIZE)
        .set(device.bytes((pfn + i) * PAGE_SIZE, PAGE_SIZE));
      this.#folioChain.append(copies[i], 0, PKRAM_ENTRY_FL_RELOCATED, index + i);
      this.node.copies.add(copies[i], 0);
    }
    this.nrFolios += size;
    setWordsU64(this.words, W_OBJ_NR_FOLIOS, this.nrFolios);
    this.node.relocatedFolios++;
  }

  /**
   * Appends bytes to the byte stream, copying them into data pages. On
   * ENOMEM the bytes before the failure stay written (the byte length says how many).
   * @throws PkramError ENOMEM.
   */
  write(bytes: Uint8Array): void {
    const { device } = this.node.pages;
    let done = 0;
    while (done < bytes.length) {
      if (this.#dataOff === PAGE_SIZE) {
        this.#reserveLinks(1);
        const page = this.node.pages.allocPage();
        this.#dataChain.append(page, 0, 0, this.#dataPages++);
        this.node.meta.add(page, 0);
        this.#data = device.bytes(page * PAGE_SIZE, PAGE_SIZE);
        this.#dataOff = 0;
      }
      const n = Math.min(bytes.length - done, PAGE_SIZE - this.#dataOff);
      this.#data.set(bytes.subarray(done, done + n), this.#dataOff);
      this.#dataOff += n;
      done += n;
      this.bytes += n;
      setWordsU64(this.words, W_OBJ_BYTE_LEN, this.bytes);
    }
  }

  /** Seals the chains and the object page, and returns the spare pages. */
  close(): void {
    this.#folioChain.seal();
    this.#dataChain.seal();
    sealPage(this.node.pages.device, this.pfn, 'object');
    for (const p of this.#spares.splice(0)) this.node.pages.free(p, 0);
  }

  /** Makes sure the next n entries of one chain can be appended without an allocation. */
  #reserveLinks(n: number): void {
    // n entries into one chain need at most one new link page per PKRAM_LINK_ENTRIES.
    const need = Math.ceil(n / PKRAM_LINK_ENTRIES);
    while (this.#spares.length < need) this.#spares.push(this.node.pages.allocPage());
  }
}
