/**
 * PreservedStore: a hash map of byte keys and byte values whose table,
 * keys and values all live in preserved memory, so a successor serves its
 * first get right after attaching to one root (open.ts), with no work per
 * entry. Per-entry state is only in the device's pages: the JS object holds
 * views, never one object per entry.
 */
import { hex } from '../base/hex.js';
import {
  CLASS_LARGE,
  CLASS_SHIFT,
  FREE_OBJECT,
  KEY_MASK,
  MAX_TABLE_LOG2,
  PHASE_MIGRATING,
  PHASE_NONE,
  PHASE_ZEROING,
  R_EXPIRY,
  R_HASH,
  R_META,
  R_VLEN,
  REC_ACCESSED,
  REC_HEADER,
  SB_CLOCK,
  SB_CURSOR,
  SB_ENTRIES,
  SB_LIVE_HI,
  SB_LIVE_LO,
  SB_PHASE,
  SB_REC_HI,
  SB_REC_LO,
  SB_TABLE_CUR,
  SB_TABLE_OLD,
  SB_TTL_ENTRIES,
  SB_ZEROED,
  SLAB_PAGES,
  SLOT_DELETED,
  SLOT_EMPTY,
  TD_DIR,
  TD_LIVE,
  TD_LOG2,
  TD_TOMBS,
} from './abi.js';
import { CLASS_COUNT, CLASS_SIZES, classOf } from './classes.js';
import { damaged, StoreError } from './errors.js';
import { hashBytes } from './hash.js';
import type { StoreMemory } from './memory.js';
import { reclaimLeaks } from './reclaim.js';
import type { Slabs } from './slab.js';
import { Table } from './table.js';

const PAGE = 4096;
/** Resize work per update: bytes of the next table zeroed, or old slots moved. */
const ZERO_STEP = 128 * 1024;
const MOVE_STEP = 8;
/** Entries a delete moves back at most (each is two logged stores). */
const SHIFT_MAX = 32;
const encoder = new TextEncoder();

/**
 * The word a record keeps for its key's hash, bound to its length words: a
 * damaged header (or a slot pointing at another record) never matches.
 * Signed, as the hash (read it back through an Int32Array).
 */
function seal(h: number, meta: number, vlen: number): number {
  return h ^ Math.imul((meta & 0xffffff) ^ Math.imul(vlen, 0x9e3779b1), 0x85ebca6b);
}

export type StoreKey = string | Uint8Array;

export interface PutOptions {
  /** Time to live in milliseconds (rounded up to whole seconds); none by default. */
  ttl?: number;
}

/** What the store holds (for `status`, metrics and tests). */
export interface StoreStats {
  name: string;
  /** Physical address of the super block: the store's root. */
  root: number;
  entries: number;
  /** Key and value bytes of the entries. */
  liveBytes: number;
  /** Bytes the records take (their size classes and page spans). */
  recordBytes: number;
  tableSlots: number;
  tableBytes: number;
  extents: number;
  /** Bytes of memory the store owns. */
  bytes: number;
  pages: number;
  slabs: number;
  resizing: boolean;
  crashSafe: boolean;
  evict: 'none' | 'lru';
  budget: number | null;
}

/** How the store was set up (read from its super block). */
export interface StoreConfig {
  readonly name: string;
  readonly seed: number;
  readonly epoch: number;
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
  readonly evict: boolean;
  readonly crashSafe: boolean;
  readonly clock: () => number;
}

export class PreservedStore {
  readonly name: string;
  readonly #mem: StoreMemory;
  readonly #slabs: Slabs;
  readonly #cfg: StoreConfig;
  #cur: Table;
  #other: Table | null;
  #migrating: boolean;
  /** Key bytes of the operation under way: the caller's array or the scratch. */
  #karr: Uint8Array;
  readonly #kbuf: Uint8Array;
  /** Spans freed by the operation under way, released once it commits. */
  #pending: number[] = [];
  /** Numbers in #pending (the array is reused: setting its length is a runtime call). */
  #pendingCount = 0;
  /** Why the store refuses updates (frozen for a handover, closed), or null. */
  #refusal: StoreError | null = null;
  #closed = false;
  #onClose: () => void;
  /** Whether the generation that opened it still runs (checked only once frozen). */
  readonly #alive: () => boolean;

  /** @hidden built by openStore. */
  constructor(init: {
    mem: StoreMemory;
    slabs: Slabs;
    config: StoreConfig;
    cur: Table;
    other: Table | null;
    onClose: () => void;
    alive: () => boolean;
  }) {
    this.#alive = init.alive;
    this.#mem = init.mem;
    this.#slabs = init.slabs;
    this.#cfg = init.config;
    this.name = init.config.name;
    this.#cur = init.cur;
    this.#other = init.other;
    this.#migrating = init.other !== null && init.mem.sbGet(SB_PHASE) === PHASE_MIGRATING;
    this.#kbuf = new Uint8Array(init.config.maxKeyBytes + 4);
    this.#karr = this.#kbuf;
    this.#onClose = init.onClose;
  }

  /** Entries in the store (expired ones count until they are removed). */
  get size(): number {
    this.#readable();
    return this.#mem.sbGet(SB_ENTRIES);
  }

  get maxKeyBytes(): number {
    return this.#cfg.maxKeyBytes;
  }

  get maxValueBytes(): number {
    return this.#cfg.maxValueBytes;
  }

  /**
   * A zero-copy view of the value. Valid until the next update of this
   * store (put, delete, clear, an eviction) or its handover: the memory may
   * then be reused. Copy it (or use get) to keep it longer.
   * @throws StoreError EINVAL bad key; EFAULT when the table or record is damaged.
   */
  getView(key: StoreKey): Uint8Array | undefined {
    this.#readable();
    const ref = this.#lookup(key);
    return ref === 0 ? undefined : this.#value(ref);
  }

  /** A copy of the value, or undefined. @throws as getView. */
  get(key: StoreKey): Buffer | undefined {
    const v = this.getView(key);
    if (v === undefined) return undefined;
    const out = Buffer.allocUnsafe(v.length);
    out.set(v);
    return out;
  }

  /** @throws as getView. */
  has(key: StoreKey): boolean {
    this.#readable();
    return this.#lookup(key) !== 0 && this.#value(this.#lookupRef) !== undefined;
  }

  /**
   * Stores a copy of `value` (a string is stored as UTF-8) under `key`. A
   * full store that evicts makes room by evicting the least recently used
   * entries; one that does not throws, unchanged.
   * @throws StoreError EINVAL bad key or ttl; E2BIG value over the limit;
   *   ENOSPC budget spent; ENOMEM memory full; EBUSY frozen for a handover;
   *   EFAULT damaged store memory.
   */
  put(key: StoreKey, value: Uint8Array | string, options?: PutOptions): void {
    if (this.#refusal !== null) throw this.#refusal;
    const klen = this.#setKey(key);
    let val = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    if (!(val instanceof Uint8Array))
      throw new StoreError('EINVAL', 'a value is a Uint8Array or a string');
    if (val.length > this.#cfg.maxValueBytes) {
      throw new StoreError(
        'E2BIG',
        `a value is at most ${this.#cfg.maxValueBytes} bytes, got ${val.length}`,
      );
    }
    // A put copies the value before it frees anything, but an eviction comes
    // first: a view of this store (getView) it may free is copied out before.
    if (this.#cfg.evict && this.#mem.holds(val)) val = Uint8Array.from(val);
    const expiry =
      options === undefined || options.ttl === undefined ? 0 : this.#expiryOf(options.ttl);
    const h = hashBytes(this.#karr, 0, klen, this.#cfg.seed);
    // An eviction for the table's room used the key scratch: encode this key again.
    if (this.#step(true)) this.#setKey(key);
    const mem = this.#mem;
    for (;;) {
      mem.begin();
      let done: boolean;
      try {
        done = this.#putOp(h, klen, val, expiry);
      } catch (err) {
        this.#abort();
        throw err;
      }
      if (done) {
        mem.commit();
        this.#release();
        return;
      }
      this.#abort();
      if (!this.#cfg.evict || !this.#evictOne()) throw this.#full(REC_HEADER + klen + val.length);
      // The eviction used the key scratch: encode this key again.
      this.#setKey(key);
    }
  }

  /** Alias of put, for Map-like use. */
  set(key: StoreKey, value: Uint8Array | string, options?: PutOptions): this {
    this.put(key, value, options);
    return this;
  }

  /**
   * Removes `key`. @returns whether it was there.
   * @throws StoreError EINVAL, EBUSY, EFAULT as put.
   */
  delete(key: StoreKey): boolean {
    this.#writable();
    const klen = this.#setKey(key);
    const h = hashBytes(this.#karr, 0, klen, this.#cfg.seed);
    this.#step();
    this.#mem.begin();
    let found: boolean;
    try {
      found = this.#deleteOp(h, klen);
    } catch (err) {
      this.#abort();
      throw err;
    }
    this.#mem.commit();
    this.#release();
    return found;
  }

  /**
   * Removes every entry (one by one: each removal is an operation of its
   * own), in one sweep of the tables: O(slots + entries).
   * @throws StoreError EFAULT for a damaged entry (those before it are gone).
   */
  clear(): void {
    this.#writable();
    // A removal moves later entries of its cluster back into the slot it
    // emptied (read again), or, for a cluster wrapping past the table's end,
    // behind the sweep; a resize step moves entries too: what a sweep
    // leaves, the next one meets.
    while (this.#mem.sbGet(SB_ENTRIES) > 0) {
      let removed = 0;
      for (const t of this.#migrating ? [this.#cur, this.#other as Table] : [this.#cur]) {
        for (let s = 0; s <= t.mask && (t === this.#cur || t === this.#other); ) {
          const ref = t.ref(s);
          if (ref <= SLOT_DELETED) {
            s++;
            continue;
          }
          this.#checkRecord(t, s, ref);
          this.#removeRef(ref);
          if (t.ref(s) === ref) throw damaged(t.slotPhys(s), `table slot ${s} holds a key twice`);
          removed++;
        }
      }
      if (removed === 0) {
        throw damaged(
          this.#mem.sb * 16,
          `the super block counts ${this.#mem.sbGet(SB_ENTRIES)} entries, the tables hold none`,
        );
      }
    }
  }

  /**
   * Removes up to `max` expired entries.
   * @returns how many were removed.
   */
  purgeExpired(max = Number.POSITIVE_INFINITY): number {
    this.#writable();
    if (this.#mem.sbGet(SB_TTL_ENTRIES) === 0) return 0;
    const now = this.#now();
    const expired: number[] = [];
    for (const ref of this.#refs()) {
      if (expired.length >= max) break;
      const e = this.#mem.get(ref, R_EXPIRY);
      if (e !== 0 && e <= now) expired.push(ref);
    }
    for (const ref of expired) this.#removeRef(ref);
    return expired.length;
  }

  /** Keys (copies), in table order. Updates while iterating may skip or repeat entries. */
  *keys(): IterableIterator<Buffer> {
    for (const ref of this.#refs()) {
      const k = this.#keyView(ref);
      if (this.#value(ref) !== undefined) yield Buffer.from(k);
    }
  }

  /** [key, value] copies, in table order. */
  *entries(): IterableIterator<[Buffer, Buffer]> {
    for (const ref of this.#refs()) {
      const v = this.#value(ref);
      if (v !== undefined) yield [Buffer.from(this.#keyView(ref)), Buffer.from(v)];
    }
  }

  [Symbol.iterator](): IterableIterator<[Buffer, Buffer]> {
    return this.entries();
  }

  /** Counts, sizes and the root, from the super block: O(size classes). */
  stats(): StoreStats {
    const mem = this.#mem;
    const s = this.#slabs.counts();
    const pages = mem.extentPages;
    return {
      name: this.name,
      root: mem.sb * 16,
      entries: mem.sbGet(SB_ENTRIES),
      liveBytes: mem.sbGet(SB_LIVE_HI) * 2 ** 32 + mem.sbGet(SB_LIVE_LO),
      recordBytes: mem.sbGet(SB_REC_HI) * 2 ** 32 + mem.sbGet(SB_REC_LO),
      tableSlots: this.#cur.size + (this.#other?.size ?? 0),
      tableBytes: (this.#cur.size + (this.#other?.size ?? 0)) * 8,
      extents: mem.extents.length,
      bytes: pages * PAGE,
      pages,
      slabs: s.slabs,
      resizing: mem.sbGet(SB_PHASE) !== PHASE_NONE,
      crashSafe: this.#cfg.crashSafe,
      evict: this.#cfg.evict ? 'lru' : 'none',
      budget: Number.isFinite(mem.budgetPages) ? mem.budgetPages * PAGE : null,
    };
  }

  /** The physical ranges the store owns (its extents), ascending: for a memory map picture. */
  ranges(): { base: number; size: number }[] {
    return this.#mem.extents.map((e) => ({ base: e.basePfn * PAGE, size: e.pages * PAGE }));
  }

  /** True until closed (or its generation handed over). */
  get open(): boolean {
    return !this.#closed;
  }

  /**
   * Detaches this handle. The store stays where it is (and preserved): it
   * can be opened again, in this generation or the next.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#refusal = new StoreError('ESRCH', `store '${this.name}' was closed`);
    this.#onClose();
  }

  /** @internal the handover freezes updates (finalize) and lets them go again (abort). */
  freeze(reason: StoreError | null): void {
    if (this.#closed) return;
    this.#refusal = reason;
  }

  /** @internal the handover retires the handle once a successor took over. */
  retire(reason: StoreError): void {
    this.#closed = true;
    this.#refusal = reason;
  }

  // ------------------------------------------------------------ lookups

  /** Ref of the last successful #lookup. */
  #lookupRef = 0;

  #lookup(key: StoreKey): number {
    const klen = this.#setKey(key);
    const h = hashBytes(this.#karr, 0, klen, this.#cfg.seed);
    let t = this.#cur;
    let s = this.#find(t, h, klen);
    if (s < 0 && this.#migrating) {
      t = this.#other as Table;
      s = this.#find(t, h, klen);
    }
    const ref = s < 0 ? 0 : t.ref(s);
    this.#lookupRef = ref;
    return ref;
  }

  /** Where #find would insert the key it did not find: the first empty or deleted slot on its probe, or -1. */
  #hole = -1;

  /**
   * The slot of the key in `t`, or -1 (then #hole is where it goes).
   * @throws StoreError EFAULT for a slot that names no record of its tag.
   */
  #find(t: Table, h: number, klen: number): number {
    const mask = t.mask;
    let s = h & mask;
    let hole = -1;
    for (let n = 0; n <= mask; n++) {
      const ref = t.ref(s);
      if (ref === SLOT_EMPTY) {
        this.#hole = hole < 0 ? s : hole;
        return -1;
      }
      if (ref === SLOT_DELETED) {
        if (hole < 0) hole = s;
      } else if (t.tag(s) === h && this.#matches(t, s, ref, h, klen)) return s;
      s = (s + 1) & mask;
    }
    this.#hole = hole;
    return -1;
  }

  #matches(t: Table, s: number, ref: number, h: number, klen: number): boolean {
    const mem = this.#mem;
    const k = ref >>> 26;
    const words = mem.u32[k];
    const i = (ref & 0x3ffffff) << 2;
    if (words === undefined || i + 4 > words.length) {
      throw damaged(
        t.slotPhys(s),
        `table slot ${s} points at ${hex(ref * 16)}, outside the device`,
      );
    }
    const meta = words[i];
    if (mem.i32[k][i + R_HASH] !== seal(h, meta, words[i + R_VLEN]) || meta === FREE_OBJECT) {
      throw damaged(
        t.slotPhys(s),
        `table slot ${s} points at ${hex(ref * 16)}, which holds no record of its hash`,
      );
    }
    if ((meta & KEY_MASK) !== klen) return false;
    const b = mem.u8[k];
    const o = (i << 2) + REC_HEADER;
    if (o + klen > b.length) throw damaged(ref * 16, 'record key runs past the device');
    const key = this.#karr;
    for (let j = 0; j < klen; j++) if (b[o + j] !== key[j]) return false;
    return true;
  }

  /**
   * The value of the record at `ref`, or undefined when it expired. A peek
   * (a check, iteration) takes expired values too and does not count as a use.
   * @throws StoreError EFAULT.
   */
  #value(ref: number, peek = false): Uint8Array | undefined {
    const mem = this.#mem;
    const k = ref >>> 26;
    const words = mem.u32[k];
    const i = (ref & 0x3ffffff) << 2;
    const meta = words[i];
    const vlen = words[i + R_VLEN];
    const klen = meta & KEY_MASK;
    const cls = (meta >>> CLASS_SHIFT) & 0xff;
    const size = REC_HEADER + klen + vlen;
    if (cls !== CLASS_LARGE && (cls >= CLASS_COUNT || CLASS_SIZES[cls] < size)) {
      throw damaged(ref * 16, `record of ${size} bytes does not fit its class ${cls}`);
    }
    const b = mem.u8[k];
    const off = (i << 2) + REC_HEADER + klen;
    if (off + vlen > b.length) throw damaged(ref * 16, 'record value runs past the device');
    const expiry = words[i + R_EXPIRY];
    if (peek) return b.subarray(off, off + vlen);
    if (expiry !== 0 && expiry <= this.#now()) return undefined;
    if (this.#cfg.evict && (meta & REC_ACCESSED) === 0) words[i] = meta | REC_ACCESSED;
    return b.subarray(off, off + vlen);
  }

  #keyView(ref: number): Uint8Array {
    const b = this.#mem.bytesOf(ref);
    const off = this.#mem.offsetOf(ref) + REC_HEADER;
    return b.subarray(off, off + (this.#mem.get(ref, R_META) & KEY_MASK));
  }

  /** Live refs of both tables, each checked against its slot's tag. @throws StoreError EFAULT. */
  *#refs(): Generator<number> {
    for (const t of this.#other !== null && this.#migrating
      ? [this.#cur, this.#other]
      : [this.#cur]) {
      for (let s = 0; s <= t.mask; s++) {
        const ref = t.ref(s);
        if (ref > SLOT_DELETED) {
          this.#checkRecord(t, s, ref);
          yield ref;
        }
      }
    }
  }

  /** @throws StoreError EFAULT unless slot s of t points at a sound record of its tag. */
  #checkRecord(t: Table, s: number, ref: number): void {
    const mem = this.#mem;
    if (!mem.inBounds(ref, REC_HEADER)) {
      throw damaged(
        t.slotPhys(s),
        `table slot ${s} points at ${hex(ref * 16)}, outside the device`,
      );
    }
    const meta = mem.get(ref, R_META);
    if (
      meta === FREE_OBJECT ||
      (mem.get(ref, R_HASH) | 0) !== seal(t.tag(s), meta, mem.get(ref, R_VLEN))
    ) {
      throw damaged(
        t.slotPhys(s),
        `table slot ${s} points at ${hex(ref * 16)}, which holds no record of its hash`,
      );
    }
    this.#value(ref, true);
  }

  /**
   * Gives back pages no entry, slab list, table or directory refers to: what
   * a killed update of a crash-safe store can leave allocated. O(entries +
   * pages): for after a crash (or from a tool), never on the hot path.
   * @returns the pages given back.
   * @throws StoreError EFAULT for a damaged entry (nothing is released then).
   */
  reclaim(): number {
    this.#writable();
    const refs = [...this.#refs()];
    const tables = this.#other === null ? [this.#cur] : [this.#cur, this.#other];
    return reclaimLeaks(this.#mem, tables, refs);
  }

  /**
   * Walks every entry and checks it against the super block's counts: O(entries).
   * @returns what it counted and the problems found (none: the store is sound).
   */
  check(): { entries: number; liveBytes: number; problems: string[] } {
    this.#readable();
    const mem = this.#mem;
    const problems: string[] = [];
    let entries = 0;
    let live = 0;
    try {
      for (const ref of this.#refs()) {
        entries++;
        live += (mem.get(ref, R_META) & KEY_MASK) + mem.get(ref, R_VLEN);
      }
    } catch (err) {
      if (!(err instanceof StoreError)) throw err;
      problems.push(err.message);
    }
    const s = this.stats();
    if (problems.length === 0 && entries !== s.entries) {
      problems.push(`${entries} entries in the table, the super block counts ${s.entries}`);
    }
    if (problems.length === 0 && live !== s.liveBytes) {
      problems.push(`${live} bytes of keys and values, the super block counts ${s.liveBytes}`);
    }
    return { entries, liveBytes: live, problems };
  }

  // ------------------------------------------------------------ updates

  /** @returns false, having changed nothing, when no memory could be had for the record. */
  #putOp(h: number, klen: number, val: Uint8Array, expiry: number): boolean {
    const mem = this.#mem;
    const vlen = val.length;
    const size = REC_HEADER + klen + vlen;
    const cls = classOf(size);
    let ref: number;
    if (cls >= 0) {
      ref = this.#slabs.alloc(cls);
      if (ref === 0) return false;
    } else {
      const phys = mem.allocSpan(Math.ceil(size / PAGE), 1);
      if (phys === null) return false;
      ref = phys / 16;
    }
    const b = mem.bytesOf(ref);
    const off = mem.offsetOf(ref);
    const key = this.#karr;
    if (klen <= 64) for (let j = 0; j < klen; j++) b[off + REC_HEADER + j] = key[j];
    else b.set(klen === key.length ? key : key.subarray(0, klen), off + REC_HEADER);
    b.set(val, off + REC_HEADER + klen);
    mem.put(ref, R_META, klen | ((cls < 0 ? CLASS_LARGE : cls) << CLASS_SHIFT));
    mem.put(ref, R_VLEN, vlen);
    mem.put(ref, R_HASH, seal(h, klen | ((cls < 0 ? CLASS_LARGE : cls) << CLASS_SHIFT), vlen));
    mem.put(ref, R_EXPIRY, expiry);

    const cur = this.#cur;
    let old = 0;
    const s = this.#find(cur, h, klen);
    if (s >= 0) {
      old = cur.ref(s);
      cur.setRef(mem, s, ref);
    } else {
      const hole = this.#hole;
      if (this.#migrating) {
        const other = this.#other as Table;
        const o = this.#find(other, h, klen);
        if (o >= 0) {
          old = other.ref(o);
          other.setRef(mem, o, SLOT_DELETED);
          this.#count(SB_TABLE_OLD, -1, 1);
        }
      }
      if (hole < 0) throw new StoreError('ENOMEM', 'the table is full and could not grow');
      const was = cur.ref(hole);
      cur.set(mem, hole, h, ref);
      this.#count(SB_TABLE_CUR, 1, was === SLOT_DELETED ? -1 : 0);
    }
    if (old === 0) mem.sbSet(SB_ENTRIES, mem.sbGet(SB_ENTRIES) + 1);
    this.#addBytes(klen + vlen, cls < 0 ? Math.ceil(size / PAGE) * PAGE : CLASS_SIZES[cls]);
    if (expiry !== 0) mem.sbSet(SB_TTL_ENTRIES, mem.sbGet(SB_TTL_ENTRIES) + 1);
    if (old !== 0) this.#freeRecord(old);
    return true;
  }

  #deleteOp(h: number, klen: number): boolean {
    const mem = this.#mem;
    let t = this.#cur;
    let desc = SB_TABLE_CUR;
    let s = this.#find(t, h, klen);
    if (s < 0 && this.#migrating) {
      t = this.#other as Table;
      desc = SB_TABLE_OLD;
      s = this.#find(t, h, klen);
    }
    if (s < 0) return false;
    const ref = t.ref(s);
    if (t === this.#cur) this.#closeHole(t, s);
    else {
      t.setRef(mem, s, SLOT_DELETED);
      this.#count(desc, -1, 1);
    }
    mem.sbSet(SB_ENTRIES, mem.sbGet(SB_ENTRIES) - 1);
    this.#freeRecord(ref);
    return true;
  }

  /**
   * Empties slot s of the current table without leaving a deleted mark
   * (Knuth's algorithm R: later entries of its cluster move back into the
   * hole), so deletes never fill the table. Past SHIFT_MAX moves (an update
   * logs a bounded number of stores) the last hole is marked deleted instead.
   */
  #closeHole(t: Table, s: number): void {
    const mem = this.#mem;
    const mask = t.mask;
    let hole = s;
    let moves = 0;
    for (let j = (s + 1) & mask; j !== s; j = (j + 1) & mask) {
      const r = t.ref(j);
      if (r === SLOT_EMPTY) break;
      if (r === SLOT_DELETED || moves === SHIFT_MAX) {
        t.setRef(mem, hole, SLOT_DELETED);
        this.#count(SB_TABLE_CUR, -1, 1);
        return;
      }
      const tag = t.tag(j);
      // The entry may move back unless its home lies after the hole, up to j.
      if (((j - (tag & mask)) & mask) >= ((j - hole) & mask)) {
        t.set(mem, hole, tag, r);
        hole = j;
        moves++;
      }
    }
    t.setRef(mem, hole, SLOT_EMPTY);
    this.#count(SB_TABLE_CUR, -1, 0);
  }

  /** Removes the entry whose record is at `ref` (its own operation). */
  #removeRef(ref: number): void {
    const klen = this.#mem.get(ref, R_META) & KEY_MASK;
    const key = Buffer.from(this.#keyView(ref));
    if (klen !== key.length || !this.delete(key)) {
      throw damaged(ref * 16, 'a record in the table cannot be found by its key');
    }
  }

  /** Inserts into a slot known to hold no entry of the key. */
  #insert(t: Table, desc: number, h: number, ref: number): void {
    const mask = t.mask;
    let s = h & mask;
    for (let n = 0; n <= mask; n++) {
      const r = t.ref(s);
      if (r === SLOT_EMPTY || r === SLOT_DELETED) {
        t.set(this.#mem, s, h, ref);
        this.#count(desc, 1, r === SLOT_DELETED ? -1 : 0);
        return;
      }
      s = (s + 1) & mask;
    }
    throw new StoreError('ENOMEM', 'the table is full and could not grow');
  }

  #count(desc: number, live: number, tombs: number): void {
    const mem = this.#mem;
    if (live !== 0) mem.sbSet(desc + TD_LIVE, mem.sbGet(desc + TD_LIVE) + live);
    if (tombs !== 0) mem.sbSet(desc + TD_TOMBS, mem.sbGet(desc + TD_TOMBS) + tombs);
  }

  #addBytes(live: number, rec: number): void {
    this.#add64(SB_LIVE_LO, SB_LIVE_HI, live);
    this.#add64(SB_REC_LO, SB_REC_HI, rec);
  }

  /** Adds `delta` (|delta| < 2^32) to the u64 counter at words lo, hi: the high word changes only on a carry. */
  #add64(lo: number, hi: number, delta: number): void {
    const mem = this.#mem;
    const sum = mem.sbGet(lo) + delta;
    if (sum >= 0 && sum < 2 ** 32) {
      mem.sbSet(lo, sum);
      return;
    }
    const carry = Math.floor(sum / 2 ** 32);
    mem.sbSet(lo, sum - carry * 2 ** 32);
    mem.sbSet(hi, mem.sbGet(hi) + carry);
  }

  /** Frees a record no slot points at any more; spans wait for the commit. */
  #freeRecord(ref: number): void {
    const mem = this.#mem;
    const meta = mem.get(ref, R_META);
    const klen = meta & KEY_MASK;
    const vlen = mem.get(ref, R_VLEN);
    const cls = (meta >>> CLASS_SHIFT) & 0xff;
    const size = REC_HEADER + klen + vlen;
    if (mem.get(ref, R_EXPIRY) !== 0) mem.sbSet(SB_TTL_ENTRIES, mem.sbGet(SB_TTL_ENTRIES) - 1);
    if (cls === CLASS_LARGE) {
      const pages = Math.ceil(size / PAGE);
      mem.put(ref, R_META, FREE_OBJECT);
      this.#addBytes(-(klen + vlen), -pages * PAGE);
      this.#defer(ref * 16, pages);
      return;
    }
    if (cls >= CLASS_COUNT) throw damaged(ref * 16, `record of class ${cls}`);
    this.#addBytes(-(klen + vlen), -CLASS_SIZES[cls]);
    const slab = this.#slabs.free(ref, cls);
    if (slab >= 0) this.#defer(slab, SLAB_PAGES);
  }

  /** A span to give back once the operation commits. */
  #defer(phys: number, pages: number): void {
    const n = this.#pendingCount;
    this.#pending[n] = phys;
    this.#pending[n + 1] = pages;
    this.#pendingCount = n + 2;
  }

  /** Releases the spans the committed operation freed. */
  #release(): void {
    const p = this.#pending;
    const n = this.#pendingCount;
    if (n === 0) return;
    this.#pendingCount = 0;
    for (let i = 0; i < n; i += 2) this.#mem.releaseSpan(p[i], p[i + 1]);
  }

  #abort(): void {
    this.#mem.rollback();
    this.#pendingCount = 0;
  }

  /**
   * Evicts one entry, least recently used first (CLOCK: an entry read since
   * the hand last passed gets a second chance). During a resize the old
   * table, which holds the older entries, goes first.
   * @returns false when there is none.
   */
  #evictOne(): boolean {
    const mem = this.#mem;
    const tables = this.#migrating ? [this.#other as Table, this.#cur] : [this.#cur];
    const now = mem.sbGet(SB_TTL_ENTRIES) === 0 ? 0 : this.#now();
    for (const t of tables) {
      const mask = t.mask;
      let hand = mem.sbGet(SB_CLOCK) & mask;
      for (let n = 0; n <= 2 * (mask + 1); n++) {
        const s = hand;
        hand = (hand + 1) & mask;
        const ref = t.ref(s);
        if (ref <= SLOT_DELETED) continue;
        this.#checkRecord(t, s, ref);
        const words = mem.u32[ref >>> 26];
        const i = (ref & 0x3ffffff) << 2;
        const meta = words[i];
        const expiry = words[i + R_EXPIRY];
        if ((meta & REC_ACCESSED) !== 0 && !(expiry !== 0 && expiry <= now)) {
          // A second chance: a hint only, outside any operation.
          words[i] = meta & ~REC_ACCESSED;
          continue;
        }
        mem.sbSet(SB_CLOCK, hand);
        this.#removeRef(ref);
        return true;
      }
    }
    return false;
  }

  #full(size: number): StoreError {
    if (this.#mem.overBudget) {
      return new StoreError(
        'ENOSPC',
        `the store's memory budget is spent (a record of ${size} bytes did not fit)`,
      );
    }
    return new StoreError('ENOMEM', `no memory for a record of ${size} bytes`);
  }

  // ------------------------------------------------------------ resize

  /**
   * One bounded piece of resize work, before an update (its own operation).
   * @returns true when it evicted an entry instead (a cache whose table cannot grow).
   */
  #step(forPut = false): boolean {
    const mem = this.#mem;
    const phase = mem.sbGet(SB_PHASE);
    const cur = this.#cur;
    const used = mem.sbGet(SB_TABLE_CUR + TD_LIVE) + mem.sbGet(SB_TABLE_CUR + TD_TOMBS) + 1;
    if (phase === PHASE_NONE) {
      if (used * 8 <= cur.size * 5) return false;
      const live = mem.sbGet(SB_TABLE_CUR + TD_LIVE);
      const log2 = Math.min(MAX_TABLE_LOG2, cur.log2 + (live * 8 >= cur.size * 3 ? 1 : 0));
      const next = Table.create(mem, log2);
      if (next === null) {
        if (used * 10 <= cur.size * 9) return false;
        // A cache that cannot grow its table makes room in it.
        if (forPut && this.#cfg.evict && this.#evictOne()) return true;
        throw new StoreError(
          this.#mem.overBudget ? 'ENOSPC' : 'ENOMEM',
          'no memory to grow the table',
        );
      }
      mem.begin();
      mem.sbSet(SB_TABLE_OLD + TD_DIR, next.dirPfn);
      mem.sbSet(SB_TABLE_OLD + TD_LOG2, log2);
      mem.sbSet(SB_TABLE_OLD + TD_LIVE, 0);
      mem.sbSet(SB_TABLE_OLD + TD_TOMBS, 0);
      mem.sbSet(SB_ZEROED, 0);
      mem.sbSet(SB_PHASE, PHASE_ZEROING);
      mem.commit();
      this.#other = next;
      return false;
    }
    mem.begin();
    if (phase === PHASE_ZEROING) {
      const next = this.#other as Table;
      const total = next.size * 8;
      const from = mem.sbGet(SB_ZEROED);
      // Past 85% load the rest is zeroed now: a bound, not the common case.
      const to = used * 20 > cur.size * 17 ? total : Math.min(total, from + ZERO_STEP);
      next.zero(mem, from, to);
      mem.sbSet(SB_ZEROED, to);
      if (to === total) {
        for (const w of [TD_DIR, TD_LOG2, TD_LIVE, TD_TOMBS]) {
          const c = mem.sbGet(SB_TABLE_CUR + w);
          mem.sbSet(SB_TABLE_CUR + w, mem.sbGet(SB_TABLE_OLD + w));
          mem.sbSet(SB_TABLE_OLD + w, c);
        }
        mem.sbSet(SB_CURSOR, 0);
        mem.sbSet(SB_PHASE, PHASE_MIGRATING);
        mem.commit();
        this.#other = cur;
        this.#cur = next;
        this.#migrating = true;
        return false;
      }
    } else {
      const old = this.#other as Table;
      let c = mem.sbGet(SB_CURSOR);
      // Past 85% load of the new table, the rest moves now (bounded by the old table).
      const rest = used * 20 > cur.size * 17;
      const end = rest ? old.size : Math.min(old.size, c + MOVE_STEP);
      for (; c < end; c++) {
        const ref = old.ref(c);
        if (ref <= SLOT_DELETED) continue;
        this.#insert(cur, SB_TABLE_CUR, old.tag(c), ref);
        old.setRef(mem, c, SLOT_DELETED);
        this.#count(SB_TABLE_OLD, -1, 1);
        if (rest) {
          mem.commit();
          mem.begin();
        }
      }
      mem.sbSet(SB_CURSOR, c);
      if (c === old.size) {
        mem.sbSet(SB_PHASE, PHASE_NONE);
        mem.sbSet(SB_TABLE_OLD + TD_DIR, 0);
        mem.sbSet(SB_TABLE_OLD + TD_LOG2, 0);
        mem.sbSet(SB_TABLE_OLD + TD_LIVE, 0);
        mem.sbSet(SB_TABLE_OLD + TD_TOMBS, 0);
        mem.commit();
        this.#other = null;
        this.#migrating = false;
        old.release(mem);
        return false;
      }
    }
    mem.commit();
    return false;
  }

  // ------------------------------------------------------------ keys, time, state

  /** Puts the key's bytes where #karr points. @returns its length. @throws StoreError EINVAL. */
  #setKey(key: StoreKey): number {
    const max = this.#cfg.maxKeyBytes;
    if (typeof key === 'string') {
      const n = key.length;
      const b = this.#kbuf;
      let i = 0;
      if (n <= max) {
        for (; i < n; i++) {
          const c = key.charCodeAt(i);
          if (c > 127) break;
          b[i] = c;
        }
      }
      let len = i;
      if (i < n) {
        const r = encoder.encodeInto(key, b);
        len = r.written;
        if (r.read < n || len > max) throw this.#badKey(Buffer.byteLength(key));
      }
      if (len === 0) throw this.#badKey(0);
      this.#karr = b;
      return len;
    }
    if (!(key instanceof Uint8Array))
      throw new StoreError('EINVAL', 'a key is a string or a Uint8Array');
    if (key.length === 0 || key.length > max) throw this.#badKey(key.length);
    this.#karr = key;
    return key.length;
  }

  #badKey(n: number): StoreError {
    return new StoreError('EINVAL', `a key is 1..${this.#cfg.maxKeyBytes} bytes, got ${n}`);
  }

  /** Seconds since the epoch, plus one (0 means "never expires"). */
  #now(): number {
    return Math.floor(this.#cfg.clock() / 1000) - this.#cfg.epoch + 1;
  }

  #expiryOf(ttl: number): number {
    if (!(typeof ttl === 'number' && ttl > 0 && ttl <= 2 ** 31 * 1000)) {
      throw new StoreError(
        'EINVAL',
        `ttl is a positive number of milliseconds, got ${String(ttl)}`,
      );
    }
    return this.#now() + Math.ceil(ttl / 1000);
  }

  #readable(): void {
    if (this.#refusal === null) return;
    if (this.#closed) throw this.#refusal;
    if (!this.#alive())
      throw new StoreError('ESRCH', `store '${this.name}': its generation was replaced`);
  }

  #writable(): void {
    if (this.#refusal !== null) throw this.#refusal;
  }
}
