/**
 * The record allocator, after the kernel's SLUB: objects of one size class
 * in slabs of SLAB_BYTES, each slab with its own free list and live count in
 * its header; a class keeps a list of its slabs with room. A slab whose
 * last object is freed goes back to its extent (unless it is the class's
 * only slab with room), so deleted records give their memory back to every
 * class and to page spans.
 */
import {
  CL_OBJECTS,
  CL_PARTIAL,
  CL_SLABS,
  CLASS_WORDS,
  FREE_OBJECT,
  S_BUMP,
  S_CAPACITY,
  S_FREE,
  S_LIVE,
  S_MAGIC,
  S_NEXT,
  S_PREV,
  SB_CLASSES,
  SLAB_HEADER,
  SLAB_MAGIC,
  SLAB_PAGES,
  SLAB_REF_MASK,
} from './abi.js';
import { CLASS_CAPACITY, CLASS_COUNT, CLASS_SIZES } from './classes.js';
import { damaged } from './errors.js';
import type { StoreMemory } from './memory.js';

export class Slabs {
  readonly #mem: StoreMemory;

  constructor(mem: StoreMemory) {
    this.#mem = mem;
  }

  /**
   * An object of class `cls` (its contents are not cleared).
   * @returns its ref, or 0 when no slab can be had.
   */
  alloc(cls: number): number {
    const mem = this.#mem;
    const cw = SB_CLASSES + cls * CLASS_WORDS;
    let slab = mem.sbGet(cw + CL_PARTIAL);
    if (slab === 0) {
      slab = this.#newSlab(cls);
      if (slab === 0) return 0;
    } else {
      this.#check(slab, cls);
    }
    const free = mem.get(slab, S_FREE);
    let obj: number;
    if (free !== 0) {
      obj = slab + free / 16;
      if (free >= SLAB_PAGES * 4096 || mem.get(obj, 0) !== FREE_OBJECT) {
        throw damaged(slab * 16, `slab free list points at offset ${free}, not a free object`);
      }
      mem.put(slab, S_FREE, mem.get(obj, 1));
    } else {
      const bump = mem.get(slab, S_BUMP);
      if (bump + CLASS_SIZES[cls] > SLAB_PAGES * 4096) {
        throw damaged(
          slab * 16,
          `slab of class ${cls} has no free object but is on the partial list`,
        );
      }
      obj = slab + bump / 16;
      mem.put(slab, S_BUMP, bump + CLASS_SIZES[cls]);
    }
    const live = mem.get(slab, S_LIVE) + 1;
    mem.put(slab, S_LIVE, live);
    if (live === CLASS_CAPACITY[cls]) this.#unlink(cls, slab);
    mem.sbSet(cw + CL_OBJECTS, mem.sbGet(cw + CL_OBJECTS) + 1);
    return obj;
  }

  /**
   * Frees the object at `ref` of class `cls`.
   * @returns the physical address of a slab that became empty and was
   *   unlinked (the caller releases its pages once the operation commits), or -1.
   * @throws StoreError EFAULT when the object is not in a slab of that class.
   */
  free(ref: number, cls: number): number {
    const mem = this.#mem;
    const slab = (ref & ~SLAB_REF_MASK) >>> 0;
    this.#check(slab, cls);
    const off = (ref - slab) * 16;
    if (off < SLAB_HEADER || (off - SLAB_HEADER) % CLASS_SIZES[cls] !== 0) {
      throw damaged(ref * 16, `record at offset ${off} is not an object of its slab`);
    }
    const cw = SB_CLASSES + cls * CLASS_WORDS;
    const live = mem.get(slab, S_LIVE);
    if (live === 0) throw damaged(slab * 16, 'freeing an object of an empty slab');
    mem.put(ref, 0, FREE_OBJECT);
    mem.put(ref, 1, mem.get(slab, S_FREE));
    mem.put(slab, S_FREE, off);
    mem.put(slab, S_LIVE, live - 1);
    mem.sbSet(cw + CL_OBJECTS, mem.sbGet(cw + CL_OBJECTS) - 1);
    if (live === CLASS_CAPACITY[cls]) this.#link(cls, slab);
    if (live === 1) {
      // Keep a class's only slab with room: a put after a delete would otherwise churn pages.
      const only = mem.sbGet(cw + CL_PARTIAL) === slab && mem.get(slab, S_NEXT) === 0;
      if (!only) {
        this.#unlink(cls, slab);
        mem.put(slab, S_MAGIC, 0);
        mem.sbSet(cw + CL_SLABS, mem.sbGet(cw + CL_SLABS) - 1);
        return slab * 16;
      }
    }
    return -1;
  }

  /** Slabs and objects per class (for stats). */
  counts(): { slabs: number; objects: number; bytes: number } {
    let slabs = 0;
    let objects = 0;
    let bytes = 0;
    for (let c = 0; c < CLASS_COUNT; c++) {
      const cw = SB_CLASSES + c * CLASS_WORDS;
      slabs += this.#mem.sbGet(cw + CL_SLABS);
      const n = this.#mem.sbGet(cw + CL_OBJECTS);
      objects += n;
      bytes += n * CLASS_SIZES[c];
    }
    return { slabs, objects, bytes };
  }

  #newSlab(cls: number): number {
    const mem = this.#mem;
    const phys = mem.allocSpan(SLAB_PAGES, SLAB_PAGES);
    if (phys === null) return 0;
    const slab = phys / 16;
    mem.put(slab, S_MAGIC, SLAB_MAGIC | cls);
    mem.put(slab, S_LIVE, 0);
    mem.put(slab, S_FREE, 0);
    mem.put(slab, S_BUMP, SLAB_HEADER);
    mem.put(slab, S_PREV, 0);
    mem.put(slab, S_NEXT, 0);
    mem.put(slab, S_CAPACITY, CLASS_CAPACITY[cls]);
    const cw = SB_CLASSES + cls * CLASS_WORDS;
    mem.sbSet(cw + CL_SLABS, mem.sbGet(cw + CL_SLABS) + 1);
    this.#link(cls, slab);
    return slab;
  }

  #link(cls: number, slab: number): void {
    const mem = this.#mem;
    const cw = SB_CLASSES + cls * CLASS_WORDS;
    const head = mem.sbGet(cw + CL_PARTIAL);
    mem.put(slab, S_PREV, 0);
    mem.put(slab, S_NEXT, head);
    if (head !== 0) mem.put(head, S_PREV, slab);
    mem.sbSet(cw + CL_PARTIAL, slab);
  }

  #unlink(cls: number, slab: number): void {
    const mem = this.#mem;
    const prev = mem.get(slab, S_PREV);
    const next = mem.get(slab, S_NEXT);
    if (prev !== 0) mem.put(prev, S_NEXT, next);
    else mem.sbSet(SB_CLASSES + cls * CLASS_WORDS + CL_PARTIAL, next);
    if (next !== 0) mem.put(next, S_PREV, prev);
    mem.put(slab, S_PREV, 0);
    mem.put(slab, S_NEXT, 0);
  }

  #check(slab: number, cls: number): void {
    const mem = this.#mem;
    if (
      !mem.inBounds(slab, SLAB_PAGES * 4096) ||
      mem.get(slab, S_MAGIC) !== (SLAB_MAGIC | cls) >>> 0
    ) {
      throw damaged(slab * 16, `no slab of class ${cls} here`);
    }
  }
}
