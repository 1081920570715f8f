/**
 * One open-addressing hash table in store memory: 2^log2 slots of
 * {tag, ref}, in segments of SEGMENT_BYTES listed by a directory page, so no
 * table needs more contiguous memory than a segment. Per-slot state lives
 * only in the device's pages; this object holds one view per segment.
 */
import { SEGMENT_BYTES, SEGMENT_SLOTS } from './abi.js';
import { damaged } from './errors.js';
import type { StoreMemory } from './memory.js';

const PAGE = 4096;
/** Segment pfns a directory page holds. */
const DIR_ENTRIES = PAGE / 4;

export class Table {
  readonly log2: number;
  readonly mask: number;
  readonly dirPfn: number;
  readonly segShift: number;
  readonly segMask: number;
  /**
   * Per segment: its slots' words (slot s is words 2s and 2s + 1 of its
   * segment), the same read signed (tags compare with signed hashes), and
   * its ref. Views over the segment alone: a slot is one index away.
   */
  readonly segWords: Uint32Array[] = [];
  readonly segTags: Int32Array[] = [];
  readonly segRef: number[] = [];

  private constructor(mem: StoreMemory, dirPfn: number, log2: number) {
    this.log2 = log2;
    this.mask = 2 ** log2 - 1;
    this.dirPfn = dirPfn;
    const slotsPerSeg = Math.min(2 ** log2, SEGMENT_SLOTS);
    this.segShift = Math.log2(slotsPerSeg);
    this.segMask = slotsPerSeg - 1;
    const dirRef = (dirPfn * PAGE) / 16;
    const n = segments(log2);
    for (let i = 0; i < n; i++) {
      const pfn = mem.get(dirRef, i);
      const ref = (pfn * PAGE) / 16;
      if (pfn === 0 || mem.extentAt(pfn) === undefined || !mem.inBounds(ref, slotsPerSeg * 8)) {
        throw damaged(
          dirPfn * PAGE,
          `table directory entry ${i} (pfn ${pfn}) is outside the store`,
        );
      }
      const at = (ref & 0x3ffffff) << 2;
      this.segWords.push(mem.u32[ref >>> 26].subarray(at, at + slotsPerSeg * 2));
      this.segTags.push(mem.i32[ref >>> 26].subarray(at, at + slotsPerSeg * 2));
      this.segRef.push(ref);
    }
  }

  get size(): number {
    return this.mask + 1;
  }

  /** Bytes of one segment. */
  get segmentBytes(): number {
    return (this.segMask + 1) * 8;
  }

  /**
   * Allocates a table of 2^log2 slots (not zeroed: see zero()).
   * @returns null when memory runs out (what was taken is given back).
   */
  static create(mem: StoreMemory, log2: number): Table | null {
    const dir = mem.allocSpan(1, 1);
    if (dir === null) return null;
    const n = segments(log2);
    const segPages = Math.min(2 ** log2 * 8, SEGMENT_BYTES) / PAGE;
    const dirRef = dir / 16;
    const taken: number[] = [];
    for (let i = 0; i < n; i++) {
      const seg = mem.allocSpan(segPages, 1);
      if (seg === null) {
        for (const s of taken) mem.releaseSpan(s, segPages);
        mem.releaseSpan(dir, 1);
        return null;
      }
      taken.push(seg);
      mem.put(dirRef, i, seg / PAGE);
    }
    return new Table(mem, dir / PAGE, log2);
  }

  /** @throws StoreError EFAULT when the directory points outside the store. */
  static attach(mem: StoreMemory, dirPfn: number, log2: number): Table {
    return new Table(mem, dirPfn, log2);
  }

  /** Zeroes bytes [from, to) of the table (slots are empty after it). */
  zero(mem: StoreMemory, from: number, to: number): void {
    const segBytes = this.segmentBytes;
    for (let at = from; at < to; ) {
      const s = Math.floor(at / segBytes);
      const end = Math.min(to, (s + 1) * segBytes);
      const ref = this.segRef[s];
      const off = mem.offsetOf(ref) + (at - s * segBytes);
      mem.bytesOf(ref).fill(0, off, off + (end - at));
      at = end;
    }
  }

  /** Gives its segments and directory back. */
  release(mem: StoreMemory): void {
    const segPages = this.segmentBytes / PAGE;
    for (const ref of this.segRef) mem.releaseSpan(ref * 16, segPages);
    mem.releaseSpan(this.dirPfn * PAGE, 1);
  }

  /** The slot's tag: the key's hash, signed (as hashBytes returns it). */
  tag(s: number): number {
    return this.segTags[s >>> this.segShift][(s & this.segMask) << 1];
  }

  ref(s: number): number {
    return this.segWords[s >>> this.segShift][((s & this.segMask) << 1) + 1];
  }

  /** Stores a slot: tag first, then ref (the ref says whether the slot is used). */
  set(mem: StoreMemory, s: number, tag: number, ref: number): void {
    const seg = this.segRef[s >>> this.segShift];
    const w = (s & this.segMask) * 2;
    mem.put(seg, w, tag);
    mem.put(seg, w + 1, ref);
  }

  setRef(mem: StoreMemory, s: number, ref: number): void {
    mem.put(this.segRef[s >>> this.segShift], (s & this.segMask) * 2 + 1, ref);
  }

  /** Physical address of slot s (for messages). */
  slotPhys(s: number): number {
    return this.segRef[s >>> this.segShift] * 16 + (s & this.segMask) * 8;
  }
}

/** Segments of a table of 2^log2 slots; a directory page holds at most DIR_ENTRIES. */
export function segments(log2: number): number {
  return Math.max(1, 2 ** log2 / SEGMENT_SLOTS);
}

export const MAX_SEGMENTS = DIR_ENTRIES;
