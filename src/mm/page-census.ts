/**
 * Pages by state in cells of 2^shift pages, kept by the page allocator as
 * pages change state (O(1) for a block no larger than a cell), so that a
 * picture of the memory costs O(cells) whatever the size and the
 * fragmentation of the device: a running generation publishes one every
 * second (kernel/status-snapshot.ts).
 */

/** Most cells of a census: the resolution of a memory layout (a 64 GiB device: 32 MiB cells). */
export const CENSUS_CELLS = 2048;

/** A page's state as the census counts it; the values are the page allocator's memmap values. */
export const CENSUS_RESERVED = 0;
export const CENSUS_FREE = 1;
export const CENSUS_ALLOCATED = 2;
export const CENSUS_PRESERVED = 3;

export type CensusState = 'free' | 'allocated' | 'preserved' | 'reserved';
const STATE_OF: Record<CensusState, number> = {
  reserved: CENSUS_RESERVED,
  free: CENSUS_FREE,
  allocated: CENSUS_ALLOCATED,
  preserved: CENSUS_PRESERVED,
};

/** What readers of a census see. */
export type CensusView = Pick<PageCensus, 'npages' | 'shift' | 'cells' | 'cellPages' | 'count'>;

export class PageCensus {
  readonly npages: number;
  /** log2 of the pages of a cell. */
  readonly shift: number;
  readonly cells: number;
  /**
   * Pages per cell and state, four slots (CENSUS_* order) per cell, the
   * allocated one unused. A TS-private field: a #field costs the allocator ~10% more.
   */
  private readonly counts: Int32Array;

  /** A census of `npages` pages (at most 2^31 - 1), all reserved. */
  constructor(npages: number) {
    this.npages = npages;
    this.shift = npages <= CENSUS_CELLS ? 0 : Math.ceil(Math.log2(npages / CENSUS_CELLS));
    this.cells = Math.ceil(npages / 2 ** this.shift);
    const k = new Int32Array(this.cells * 4);
    this.counts = k;
    // Every cell full and reserved: one cell written, then copied doubling (native, not a
    // JS loop per cell, which a successor's boot ran interpreted twice), the last cell fixed.
    if (this.cells > 0) {
      k[CENSUS_RESERVED] = 2 ** this.shift;
      for (let done = 4; done < k.length; done *= 2) k.copyWithin(done, 0, done);
      k[(this.cells - 1) * 4 + CENSUS_RESERVED] = this.cellPages(this.cells - 1);
    }
  }

  /**
   * Pages [pfn, pfn + n) went from state `from` to state `to` (CENSUS_*
   * values). Called on every allocation and free: kept to two stores.
   */
  move(pfn: number, n: number, from: number, to: number): void {
    const c = pfn >>> this.shift;
    if ((pfn + n - 1) >>> this.shift !== c) {
      this.#moveAcross(pfn, n, from, to);
      return;
    }
    // Allocated pages are not stored (the rest of the cell): one store per allocation or free.
    const k = this.counts;
    const i = c << 2;
    if (from !== CENSUS_ALLOCATED) k[i + from] = (k[i + from] as number) - n;
    if (to !== CENSUS_ALLOCATED) k[i + to] = (k[i + to] as number) + n;
  }

  #moveAcross(pfn: number, n: number, from: number, to: number): void {
    const cellPages = 2 ** this.shift;
    for (let p = pfn, end = pfn + n; p < end; ) {
      const e = Math.min(end, ((p >>> this.shift) + 1) * cellPages);
      this.move(p, e - p, from, to);
      p = e;
    }
  }

  /** Pages of cell `c` (the last one may be short). */
  cellPages(c: number): number {
    const size = 2 ** this.shift;
    return Math.min(size, this.npages - c * size);
  }

  /** Pages of cell `c` in `state`. */
  count(c: number, state: CensusState): number {
    const i = c * 4;
    const k = this.counts;
    if (state !== 'allocated') return k[i + STATE_OF[state]] as number;
    return (
      this.cellPages(c) -
      (k[i + CENSUS_RESERVED] as number) -
      (k[i + CENSUS_FREE] as number) -
      (k[i + CENSUS_PRESERVED] as number)
    );
  }
}

/**
 * Adds `sign` x the pages [pfn, pfn + n) to a sparse per-cell count
 * (cell index -> pages) of cells of 2^shift pages, as subsystems count
 * their own pages in a census's cells.
 */
export function addToCells(
  cells: Map<number, number>,
  pfn: number,
  n: number,
  shift: number,
  sign = 1,
): void {
  const cellPages = 2 ** shift;
  for (let p = pfn, end = pfn + n; p < end; ) {
    const c = Math.floor(p / cellPages);
    const e = Math.min(end, (c + 1) * cellPages);
    const left = (cells.get(c) ?? 0) + sign * (e - p);
    if (left === 0) cells.delete(c);
    else cells.set(c, left);
    p = e;
  }
}
