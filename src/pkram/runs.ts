/**
 * A growable list of runs of blocks in typed arrays: `blocks[i]` blocks of
 * 2^orders[i] pages from pfns[i]. A node keeps the runs it preserves from the
 * moment its pages are taken (save) or checked (attach), so preserving and
 * unpreserving it are a few bit fills per run (KhoRadixTree.preserveRun), and
 * loading it never walks it again. Consecutive blocks of one order extend
 * the last run: a step and no allocation per block.
 */
/** compacted() sorts runs by pfn * SORT_INDEX_SPAN + index: exact below these. */
const SORT_INDEX_SPAN = 2 ** 21;
const SORT_PFN_LIMIT = 2 ** 32;

export class RunList {
  pfns = new Float64Array(8);
  blocks = new Float64Array(8);
  orders = new Uint8Array(8);
  length = 0;
  /** Where the last run would continue, and its order. */
  #next = -1;
  #order = -1;

  constructor() {
    // Each array stored a second time: V8 compiles code that takes a field stored only once
    // as a constant, and #grow's store then threw that code away in the middle of a cold
    // save (1 GiB of order-0 folios: saveFolios 34-42 -> 18-34 ms in a fresh process).
    this.pfns = new Float64Array(8);
    this.blocks = new Float64Array(8);
    this.orders = new Uint8Array(8);
  }

  /** Adds one block of 2^order pages (order <= 30: PKRAM's are at most 18). */
  add(pfn: number, order: number): void {
    if (pfn === this.#next && order === this.#order) {
      this.blocks[this.length - 1]++;
      this.#next += 1 << order;
    } else this.#start(pfn, order);
  }

  /** A new run: out of line, so code optimized while runs only grew is not thrown away when one starts. */
  #start(pfn: number, order: number): void {
    if (this.length === this.pfns.length) this.#grow();
    this.pfns[this.length] = pfn;
    this.blocks[this.length] = 1;
    this.orders[this.length++] = order;
    this.#next = pfn + (1 << order);
    this.#order = order;
  }

  /** Empties the list (keeping its arrays). */
  clear(): void {
    this.length = 0;
    this.#next = -1;
    this.#order = -1;
  }

  /** Adds `blocks` consecutive blocks of 2^order pages from pfn. */
  addRun(pfn: number, blocks: number, order: number): void {
    if (blocks === 0) return;
    this.add(pfn, order);
    this.blocks[this.length - 1] += blocks - 1;
    this.#next = pfn + blocks * (1 << order);
  }

  /**
   * The same blocks with the runs in ascending pfn order, neighbours of one
   * order merged: how the table holds them, so a node's folios saved in a
   * scattered order (order-9 folios as the allocator hands them out) are
   * preserved and unpreserved in a few runs instead of one per folio. This
   * list itself when it is ascending already (what a save mostly makes), or
   * when the sort could not tell runs apart (a pfn past 2^32, two runs from
   * one pfn: then preserving refuses them as it would have).
   */
  compacted(): RunList {
    const n = this.length;
    let ascending = true;
    for (let i = 1; i < n && ascending; i++) ascending = this.pfns[i] > this.pfns[i - 1];
    if (ascending || n >= SORT_INDEX_SPAN) return this;
    // pfn * 2^21 + i sorts by pfn and keeps i, exactly while pfn < 2^32 and i < 2^21.
    const keys = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      if (this.pfns[i] >= SORT_PFN_LIMIT) return this;
      keys[i] = this.pfns[i] * SORT_INDEX_SPAN + i;
    }
    keys.sort();
    const out = new RunList();
    for (let k = 0; k < n; k++) {
      const pfn = Math.floor(keys[k] / SORT_INDEX_SPAN);
      if (k > 0 && pfn === Math.floor(keys[k - 1] / SORT_INDEX_SPAN)) return this;
      const i = keys[k] - pfn * SORT_INDEX_SPAN;
      out.addRun(pfn, this.blocks[i], this.orders[i]);
    }
    return out;
  }

  /** Pages in all runs. */
  pages(): number {
    let n = 0;
    for (let i = 0; i < this.length; i++) n += this.blocks[i] * 2 ** this.orders[i];
    return n;
  }

  /** Every block as (pfn, order) pairs (for the rare paths that compare blocks). */
  blockPairs(out: number[] = []): number[] {
    for (let i = 0; i < this.length; i++) {
      const size = 2 ** this.orders[i];
      for (let b = 0; b < this.blocks[i]; b++) out.push(this.pfns[i] + b * size, this.orders[i]);
    }
    return out;
  }

  #grow(): void {
    const n = this.pfns.length * 2;
    const pfns = new Float64Array(n);
    pfns.set(this.pfns);
    this.pfns = pfns;
    const blocks = new Float64Array(n);
    blocks.set(this.blocks);
    this.blocks = blocks;
    const orders = new Uint8Array(n);
    orders.set(this.orders);
    this.orders = orders;
  }
}
