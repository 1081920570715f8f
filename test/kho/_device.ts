/**
 * Test helpers for the KHO tracker: a page source carving pages out of a
 * device range, and a sparse device of any size up to 2^53 bytes (pages are
 * materialized on first touch) to exercise keys far beyond 32 bits.
 */

import type { KhoPageSource } from '../../src/kho/radix.js';
import { type MemoryDevice, PAGE_SIZE } from '../../src/memory/device.js';

/** Hands out pages of [start, end) (bytes), checking every free. */
export class RangePageSource implements KhoPageSource {
  readonly #free: number[] = [];
  readonly inUse = new Set<number>();
  allocs = 0;

  constructor(start: number, end: number) {
    for (let p = end - PAGE_SIZE; p >= start; p -= PAGE_SIZE) this.#free.push(p);
  }

  allocPage(): number {
    const p = this.#free.pop();
    if (p === undefined) return 0;
    this.inUse.add(p);
    this.allocs++;
    return p;
  }

  freePage(phys: number): void {
    if (!this.inUse.delete(phys)) throw new Error(`freePage(${phys}) of a page not handed out`);
    this.#free.push(phys);
  }
}

/** A device whose pages exist only once touched; accesses must stay inside one page. */
export class SparseDevice implements MemoryDevice {
  readonly pageSize = PAGE_SIZE;
  readonly pages: number;
  readonly name: string;
  readonly #pages = new Map<number, Uint8Array>();

  constructor(readonly size: number) {
    this.pages = size / PAGE_SIZE;
    this.name = `sparse ${size} bytes`;
  }

  bytes(phys: number, length: number): Uint8Array {
    const pfn = Math.floor(phys / PAGE_SIZE);
    const off = phys - pfn * PAGE_SIZE;
    if (phys < 0 || phys + length > this.size || off + length > PAGE_SIZE) {
      throw new Error(`sparse device: access ${phys}+${length} crosses a page or the end`);
    }
    let page = this.#pages.get(pfn);
    if (page === undefined) {
      page = new Uint8Array(PAGE_SIZE);
      this.#pages.set(pfn, page);
    }
    return page.subarray(off, off + length);
  }

  view(phys: number, length: number): DataView {
    const b = this.bytes(phys, length);
    return new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  flush(): void {}
  close(): void {}
}
