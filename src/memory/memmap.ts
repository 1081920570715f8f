import { show } from '../base/errors.js';
import { hex } from '../base/hex.js';
import type { PhysRange } from '../base/range.js';
import { DeviceError } from './errors.js';
import { type E820Type, e820TypeName, isUsableType, type MemoryRange } from './memmap-types.js';

/**
 * An e820-style memory map: typed byte ranges, kept sanitized after every
 * change (sorted, non-overlapping, adjacent ranges of one type merged), as the
 * kernel's e820__update_table() leaves its table. Where ranges overlap, the
 * larger type number wins, as in the kernel, so adding "usable" over
 * "reserved" never frees anything. A plain sorted array: the map is metadata
 * (tens of entries), not per page.
 */
export class MemoryMap {
  private ranges: MemoryRange[] = [];

  /** A map holding `ranges`, sanitized. @throws DeviceError EINVAL for a bad range. */
  static from(ranges: Iterable<MemoryRange>): MemoryMap {
    const map = new MemoryMap();
    map.ranges = checkedRanges(ranges, 'from');
    return map.sanitize();
  }

  /**
   * Adds [addr, addr + size) as `type` (e820__range_add), resolving overlaps.
   * A zero size is ignored, as the kernel does.
   * @throws DeviceError EINVAL for a negative, fractional or unsafe range or a bad type.
   */
  add(addr: number, size: number, type: E820Type): this {
    checkArgs(addr, size);
    checkType(type);
    if (size === 0) return this;
    this.ranges.push({ base: addr, size, type });
    return this.sanitize();
  }

  /**
   * Adds every range, then sanitizes once: e820__range_add() for each and
   * one e820__update_table(), as the kernel's setup code does. Each add()
   * sweeps the whole map, so a loop of them is quadratic in the map's length.
   * @throws DeviceError EINVAL as add(), before anything is added.
   */
  addAll(ranges: Iterable<MemoryRange>): this {
    const added = checkedRanges(ranges, 'addAll');
    if (added.length === 0) return this;
    for (const r of added) this.ranges.push(r);
    return this.sanitize();
  }

  /**
   * Removes [addr, addr + size) from the map, or only the parts of type `type`
   * when given (e820__range_remove).
   * @throws DeviceError EINVAL as add().
   */
  remove(addr: number, size: number, type?: E820Type): this {
    checkArgs(addr, size);
    if (type !== undefined) checkType(type);
    const end = addr + size;
    const out: MemoryRange[] = [];
    for (const r of this.ranges) {
      const rEnd = r.base + r.size;
      if ((type !== undefined && r.type !== type) || rEnd <= addr || r.base >= end) {
        out.push(r);
        continue;
      }
      if (r.base < addr) out.push({ base: r.base, size: addr - r.base, type: r.type });
      if (rEnd > end) out.push({ base: end, size: rEnd - end, type: r.type });
    }
    this.ranges = out;
    return this.sanitize();
  }

  /**
   * Retypes the parts of [addr, addr + size) that are `oldType` to `newType`
   * (e820__range_update), splitting ranges at the edges.
   * @throws DeviceError EINVAL as add(), or when oldType === newType.
   */
  update(addr: number, size: number, oldType: E820Type, newType: E820Type): this {
    checkArgs(addr, size);
    checkType(oldType);
    checkType(newType);
    checkRetype(oldType, newType);
    this.#retype(addr, size, oldType, newType);
    return this.sanitize();
  }

  /**
   * update() of every range, then one sanitize (as addAll does for add).
   * @throws DeviceError EINVAL as update(), before anything is retyped.
   */
  updateAll(ranges: Iterable<PhysRange>, oldType: E820Type, newType: E820Type): this {
    checkType(oldType);
    checkType(newType);
    checkRetype(oldType, newType);
    const list = rangesOf(ranges, 'updateAll');
    for (const r of list) checkArgs(r.base, r.size);
    if (list.length === 0) return this;
    for (const r of list) this.#retype(r.base, r.size, oldType, newType);
    return this.sanitize();
  }

  /** Retypes without sanitizing: the ranges stay disjoint, only splits and runs of one type are left to merge. */
  #retype(addr: number, size: number, oldType: E820Type, newType: E820Type): void {
    const end = addr + size;
    const out: MemoryRange[] = [];
    for (const r of this.ranges) {
      const rEnd = r.base + r.size;
      if (r.type !== oldType || rEnd <= addr || r.base >= end) {
        out.push(r);
        continue;
      }
      const a = Math.max(addr, r.base);
      const b = Math.min(end, rEnd);
      if (r.base < a) out.push({ base: r.base, size: a - r.base, type: r.type });
      out.push({ base: a, size: b - a, type: newType });
      if (rEnd > b) out.push({ base: b, size: rEnd - b, type: r.type });
    }
    this.ranges = out;
  }

  /**
   * Resolves overlaps (larger type wins), drops empty ranges, merges adjacent
   * ranges of one type and sorts: e820__update_table(), by a sweep over the
   * change points in O(n log n).
   */
  sanitize(): this {
    // Typed arrays and plain loops: a kexec runs this in its downtime, and V8
    // compiles it there when its turn comes (built of a Map, point objects and
    // a sort callback, its TurboFan compile took 5-20 ms on a CPU the successor shares).
    const src = this.ranges;
    // Every range's type (an index into the distinct types: a handful) and its two change points.
    const types: number[] = [];
    const typeOf = new Int32Array(src.length);
    const points = new Float64Array(2 * src.length);
    let n = 0;
    for (let i = 0; i < src.length; i++) {
      const r = src[i];
      if (r.size <= 0) continue;
      let t = types.indexOf(r.type);
      if (t < 0) t = types.push(r.type) - 1;
      typeOf[i] = t;
      points[n++] = r.base;
      points[n++] = r.base + r.size;
    }
    const at = points.subarray(0, n).sort();
    let distinct = 0;
    for (let i = 0; i < n; i++)
      if (distinct === 0 || at[i] !== at[distinct - 1]) at[distinct++] = at[i];
    // Each range starts (+1) and ends (-1) a count of its type at a point: the
    // events grouped by point (a counting sort), those of point p at [first[p], first[p + 1]).
    const first = new Int32Array(distinct + 1);
    const startAt = new Int32Array(src.length);
    const endAt = new Int32Array(src.length);
    for (let i = 0; i < src.length; i++) {
      const r = src[i];
      if (r.size <= 0) continue;
      startAt[i] = pointIndex(at, distinct, r.base);
      endAt[i] = pointIndex(at, distinct, r.base + r.size);
      first[startAt[i] + 1]++;
      first[endAt[i] + 1]++;
    }
    for (let p = 0; p < distinct; p++) first[p + 1] += first[p];
    const next = first.slice(0, distinct);
    const eventType = new Int32Array(n);
    const eventDelta = new Int8Array(n);
    for (let i = 0; i < src.length; i++) {
      if (src[i].size <= 0) continue;
      let e = next[startAt[i]]++;
      eventType[e] = typeOf[i];
      eventDelta[e] = 1;
      e = next[endAt[i]]++;
      eventType[e] = typeOf[i];
      eventDelta[e] = -1;
    }
    const active = new Int32Array(types.length);
    const out: MemoryRange[] = [];
    let current = 0;
    let from = 0;
    for (let p = 0; p < distinct; p++) {
      for (let e = first[p]; e < first[p + 1]; e++) active[eventType[e]] += eventDelta[e];
      let top = 0;
      for (let t = 0; t < types.length; t++) if (active[t] > 0 && types[t] > top) top = types[t];
      if (top === current) continue;
      if (current !== 0) push(out, { base: from, size: at[p] - from, type: current });
      current = top;
      from = at[p];
    }
    this.ranges = out;
    return this;
  }

  /** The ranges, ascending by address. */
  entries(): MemoryRange[] {
    return this.ranges.map((r) => ({ ...r }));
  }

  get length(): number {
    return this.ranges.length;
  }

  /** The range holding `addr`, if any (binary search). */
  find(addr: number): MemoryRange | undefined {
    if (typeof addr !== 'number') return undefined;
    let lo = 0;
    let hi = this.ranges.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const r = this.ranges[mid];
      if (addr < r.base) hi = mid;
      else if (addr >= r.base + r.size) lo = mid + 1;
      else return { ...r };
    }
    return undefined;
  }

  /** Bytes mapped as `type`. */
  totalOf(type: E820Type): number {
    let n = 0;
    for (const r of this.ranges) if (r.type === type) n += r.size;
    return n;
  }

  /**
   * A copy with at most `max` entries, for a table that holds no more (the
   * device header's): the smallest usable gaps between two kept ranges are
   * given to the kept range before them, so nothing kept is ever lost and
   * only some usable memory is given up. When no such gap is left the copy
   * may still be longer than `max`; the caller checks.
   */
  coarsened(max: number): MemoryMap {
    if (!Number.isInteger(max) || max < 1)
      throw new DeviceError('EINVAL', `bad entry limit ${show(max)}`);
    const out = this.clone();
    while (out.ranges.length > max) {
      let best = -1;
      for (let i = 1; i + 1 < out.ranges.length; i++) {
        const gap = out.ranges[i];
        if (!isUsableType(gap.type)) continue;
        const before = out.ranges[i - 1];
        const after = out.ranges[i + 1];
        if (isUsableType(before.type) || isUsableType(after.type)) continue;
        if (before.base + before.size !== gap.base || gap.base + gap.size !== after.base) continue;
        if (best < 0 || gap.size < out.ranges[best].size) best = i;
      }
      if (best < 0) break;
      const before = out.ranges[best - 1];
      out.ranges[best] = { ...out.ranges[best], type: before.type };
      out.sanitize();
    }
    return out;
  }

  clone(): MemoryMap {
    const m = new MemoryMap();
    m.ranges = this.ranges.map((r) => ({ ...r }));
    return m;
  }

  /** Lines as the kernel prints its table: `BIOS-e820: [mem 0x...-0x...] usable` (inclusive end). */
  print(prefix = 'BIOS-e820'): string[] {
    if (typeof prefix !== 'string')
      throw new DeviceError('EINVAL', `print: the prefix must be a string, got ${show(prefix)}`);
    return this.ranges.map(
      (r) =>
        `${prefix}: [mem ${hex(r.base, 16)}-${hex(r.base + r.size - 1, 16)}] ${e820TypeName(r.type)}`,
    );
  }
}

/** The index of `x` among the first `n` of the ascending, distinct `at` (it is there). */
function pointIndex(at: Float64Array, n: number, x: number): number {
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (at[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function push(out: MemoryRange[], r: MemoryRange): void {
  const last = out[out.length - 1];
  if (last !== undefined && last.type === r.type && last.base + last.size === r.base) {
    out[out.length - 1] = { base: last.base, size: last.size + r.size, type: r.type };
  } else out.push(r);
}

function checkArgs(addr: number, size: number): void {
  if (
    !Number.isSafeInteger(addr) ||
    !Number.isSafeInteger(size) ||
    addr < 0 ||
    size < 0 ||
    !Number.isSafeInteger(addr + size)
  ) {
    throw new DeviceError('EINVAL', `memory map: bad range [${show(addr)}, +${show(size)})`);
  }
}

/** The ranges of an iterable, each an object. @throws DeviceError EINVAL */
function rangesOf<T extends PhysRange>(ranges: Iterable<T>, what: string): T[] {
  if (
    typeof ranges !== 'object' ||
    ranges === null ||
    typeof (ranges as Partial<Iterable<T>>)[Symbol.iterator] !== 'function'
  ) {
    throw new DeviceError('EINVAL', `memory map ${what}: expected ranges, got ${show(ranges)}`);
  }
  const list = [...ranges];
  for (const r of list) {
    if (typeof r !== 'object' || r === null) {
      throw new DeviceError('EINVAL', `memory map ${what}: expected a range, got ${show(r)}`);
    }
  }
  return list;
}

/** Copies of the non-empty ranges, each checked as add() checks it. @throws DeviceError EINVAL */
function checkedRanges(ranges: Iterable<MemoryRange>, what: string): MemoryRange[] {
  const out: MemoryRange[] = [];
  for (const r of rangesOf(ranges, what)) {
    checkArgs(r.base, r.size);
    checkType(r.type);
    if (r.size > 0) out.push({ base: r.base, size: r.size, type: r.type });
  }
  return out;
}

function checkRetype(oldType: E820Type, newType: E820Type): void {
  if (oldType === newType) {
    throw new DeviceError(
      'EINVAL',
      `memory map update: old and new type are both ${e820TypeName(oldType)}`,
    );
  }
}

function checkType(type: E820Type): void {
  if (!Number.isInteger(type) || type < 1 || type > 0xffffffff) {
    throw new DeviceError('EINVAL', `memory map: bad type ${show(type)} (a u32 above 0)`);
  }
}
