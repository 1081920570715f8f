/**
 * One memblock region list (struct memblock_type): sorted, non-overlapping
 * regions with flags, adjacent regions of equal flags merged. Kept in typed
 * arrays; every edit touches only the window of regions it overlaps, found by
 * binary search, so appending in ascending order is amortised O(log n).
 */

export interface MemblockRegion {
  readonly base: number;
  readonly size: number;
  readonly flags: number;
}

/**
 * Room for this many regions before a list first doubles (the kernel's
 * INIT_MEMBLOCK_REGIONS; memblock_double_array() grows it after). A list that
 * grows replaces its arrays, and V8 then throws away code compiled for the
 * arrays a list was made with: at 16, a successor whose predecessor's
 * preserved pages made 16 reservations did that in its boot, in the downtime.
 */
const INIT_MEMBLOCK_REGIONS = 128;

export class RegionList {
  #base = new Float64Array(INIT_MEMBLOCK_REGIONS);
  #size = new Float64Array(INIT_MEMBLOCK_REGIONS);
  #flags = new Uint32Array(INIT_MEMBLOCK_REGIONS);
  #cnt = 0;
  #total = 0;

  constructor(readonly name: string) {}

  get cnt(): number {
    return this.#cnt;
  }

  /** Bytes covered by all regions. */
  get totalSize(): number {
    return this.#total;
  }

  base(i: number): number {
    return this.#base[i];
  }

  end(i: number): number {
    return this.#base[i] + this.#size[i];
  }

  flags(i: number): number {
    return this.#flags[i];
  }

  region(i: number): MemblockRegion {
    return { base: this.#base[i], size: this.#size[i], flags: this.#flags[i] };
  }

  *[Symbol.iterator](): IterableIterator<MemblockRegion> {
    for (let i = 0; i < this.#cnt; i++) yield this.region(i);
  }

  /** The first region that ends above `addr` (cnt when none). */
  firstEndAbove(addr: number): number {
    let lo = 0;
    let hi = this.#cnt;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#base[mid] + this.#size[mid] > addr) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** The first region that starts at or above `addr` (cnt when none). */
  firstBaseAtOrAbove(addr: number): number {
    let lo = 0;
    let hi = this.#cnt;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#base[mid] >= addr) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** True when any region overlaps [base, base + size). */
  overlaps(base: number, size: number): boolean {
    const i = this.firstEndAbove(base);
    return i < this.#cnt && this.#base[i] < base + size;
  }

  /** memblock_add_range(): covers the parts of [base, end) no region covers yet. */
  add(base: number, size: number, flags: number): void {
    const end = base + size;
    const lo = this.firstEndAbove(base);
    const hi = this.firstBaseAtOrAbove(end);
    const pieces: MemblockRegion[] = [];
    let cursor = base;
    for (let i = lo; i < hi; i++) {
      if (this.#base[i] > cursor)
        pieces.push({ base: cursor, size: this.#base[i] - cursor, flags });
      pieces.push(this.region(i));
      cursor = Math.max(cursor, this.end(i));
    }
    if (cursor < end) pieces.push({ base: cursor, size: end - cursor, flags });
    this.#replace(lo, hi, pieces);
  }

  /** memblock_remove_range(): cuts [base, end) out of every region. */
  remove(base: number, size: number): void {
    const end = base + size;
    const lo = this.firstEndAbove(base);
    const hi = this.firstBaseAtOrAbove(end);
    if (lo >= hi) return;
    const pieces: MemblockRegion[] = [];
    if (this.#base[lo] < base)
      pieces.push({ base: this.#base[lo], size: base - this.#base[lo], flags: this.#flags[lo] });
    const lastEnd = this.end(hi - 1);
    if (lastEnd > end) pieces.push({ base: end, size: lastEnd - end, flags: this.#flags[hi - 1] });
    this.#replace(lo, hi, pieces);
  }

  /** memblock_setclr_flag(): sets or clears `flag` on the parts inside [base, end). */
  setClearFlag(base: number, size: number, flag: number, set: boolean): void {
    const end = base + size;
    const lo = this.firstEndAbove(base);
    const hi = this.firstBaseAtOrAbove(end);
    if (lo >= hi) return;
    const pieces: MemblockRegion[] = [];
    for (let i = lo; i < hi; i++) {
      const b = this.#base[i];
      const e = this.end(i);
      const f = this.#flags[i];
      const mb = Math.max(b, base);
      const me = Math.min(e, end);
      if (b < mb) pieces.push({ base: b, size: mb - b, flags: f });
      pieces.push({ base: mb, size: me - mb, flags: set ? (f | flag) >>> 0 : (f & ~flag) >>> 0 });
      if (me < e) pieces.push({ base: me, size: e - me, flags: f });
    }
    this.#replace(lo, hi, pieces);
  }

  /** Replaces regions [lo, hi) by sorted `pieces`, merging equal-flag neighbours. */
  #replace(lo: number, hi: number, pieces: MemblockRegion[]): void {
    let from = lo;
    let to = hi;
    const merged: MemblockRegion[] = [];
    if (from > 0) {
      merged.push(this.region(from - 1));
      from--;
    }
    for (const p of pieces) mergePush(merged, p);
    if (to < this.#cnt) {
      mergePush(merged, this.region(to));
      to++;
    }
    let removed = 0;
    for (let i = from; i < to; i++) removed += this.#size[i];
    let added = 0;
    for (const p of merged) added += p.size;
    const delta = merged.length - (to - from);
    this.#ensure(this.#cnt + delta);
    if (delta !== 0 && to < this.#cnt) {
      this.#base.copyWithin(to + delta, to, this.#cnt);
      this.#size.copyWithin(to + delta, to, this.#cnt);
      this.#flags.copyWithin(to + delta, to, this.#cnt);
    }
    merged.forEach((p, k) => {
      this.#base[from + k] = p.base;
      this.#size[from + k] = p.size;
      this.#flags[from + k] = p.flags;
    });
    this.#cnt += delta;
    this.#total += added - removed;
  }

  #ensure(n: number): void {
    if (n <= this.#base.length) return;
    const cap = Math.max(n, this.#base.length * 2);
    const grow = <T extends Float64Array | Uint32Array>(a: T, make: (n: number) => T): T => {
      const b = make(cap);
      b.set(a.subarray(0, this.#cnt) as never);
      return b;
    };
    this.#base = grow(this.#base, (c) => new Float64Array(c));
    this.#size = grow(this.#size, (c) => new Float64Array(c));
    this.#flags = grow(this.#flags, (c) => new Uint32Array(c));
  }
}

/** Appends `r`, merging it into the previous region when they touch with equal flags. */
function mergePush(list: MemblockRegion[], r: MemblockRegion): void {
  if (r.size === 0) return;
  const last = list[list.length - 1];
  if (last && last.base + last.size === r.base && last.flags === r.flags) {
    list[list.length - 1] = { base: last.base, size: last.size + r.size, flags: last.flags };
  } else {
    list.push(r);
  }
}
