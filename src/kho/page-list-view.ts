import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import type { Folio } from '../mm/folio.js';
import { KhoError } from './errors.js';
import type { PageListEntries } from './page-list.js';

/**
 * A restored page list as one buffer, the answer to the kernel's
 * `kho_restore_vmalloc` (which maps the preserved pages at one virtually
 * contiguous address). A process cannot remap pages cheaply, so:
 *
 * - where the folios lie back to back in the device, in list order, the
 *   buffer is one zero-copy view (`contiguous`, `bytes()`): O(1) per call;
 * - otherwise it is a gather view over its runs (folios that happen to be
 *   adjacent are merged into one run): `read`/`write` copy between a caller's
 *   buffer and the runs a byte range touches, O(log runs + runs touched +
 *   bytes copied); `runBytes(i)` is each run's zero-copy view; `copy()` makes
 *   one contiguous copy, O(bytes).
 *
 * Building it is O(folios); its index of runs is made on first use,
 * O(folios) once. The folios belong to the caller (allocated
 * blocks of the page allocator): `pfn`/`order` say which, to free them.
 * Views are taken from the device at each call, never kept.
 */
export class PageListView implements PageListEntries {
  readonly pfn: Float64Array;
  readonly order: Uint8Array;
  /** Bytes in all folios, in list order. */
  readonly byteLength: number;
  readonly #device: MemoryDevice;
  /** Physical start of each run, and its offset in the buffer (one more: the end); made on first use. */
  #runs: { phys: Float64Array; offset: Float64Array } | null = null;

  /** `pages`: the folios' pages when the caller counted them already. */
  constructor(device: MemoryDevice, entries: PageListEntries, pages?: number) {
    this.#device = device;
    this.pfn = entries.pfn;
    this.order = entries.order;
    if (pages === undefined) {
      pages = 0;
      for (let i = 0; i < this.order.length; i++) pages += 2 ** this.order[i];
    }
    this.byteLength = pages * PAGE_SIZE;
  }

  /** The runs, found on first use (not part of the restore): O(folios) once. */
  #index(): { phys: Float64Array; offset: Float64Array } {
    if (this.#runs !== null) return this.#runs;
    const n = this.pfn.length;
    let runs = 0;
    for (let i = 0, end = -1; i < n; i++) {
      if (this.pfn[i] !== end) runs++;
      end = this.pfn[i] + 2 ** this.order[i];
    }
    const phys = new Float64Array(runs);
    const offset = new Float64Array(runs + 1);
    let bytes = 0;
    for (let i = 0, r = 0, end = -1; i < n; i++) {
      if (this.pfn[i] !== end) {
        phys[r] = this.pfn[i] * PAGE_SIZE;
        offset[r++] = bytes;
      }
      bytes += 2 ** this.order[i] * PAGE_SIZE;
      end = this.pfn[i] + 2 ** this.order[i];
    }
    offset[runs] = bytes;
    this.#runs = { phys, offset };
    return this.#runs;
  }

  /** Number of folios. */
  get length(): number {
    return this.pfn.length;
  }

  /** Folio `i` of the list. */
  folio(i: number): Folio {
    if (!Number.isInteger(i) || i < 0 || i >= this.pfn.length) {
      throw new KhoError('EINVAL', `folio ${i} is not in 0..${this.pfn.length - 1}`);
    }
    return { pfn: this.pfn[i], order: this.order[i] };
  }

  /** Number of runs: folios back to back in the device are one run. */
  get runs(): number {
    return this.#index().phys.length;
  }

  /** Whether the whole list is one run, so `bytes()` is one zero-copy view. */
  get contiguous(): boolean {
    return this.runs <= 1;
  }

  /**
   * The whole buffer as one zero-copy view.
   * @throws KhoError EINVAL when the folios are not contiguous (use read/write, runBytes or copy).
   */
  bytes(): Uint8Array {
    if (!this.contiguous) {
      throw new KhoError(
        'EINVAL',
        `the page list lies in ${this.runs} runs, not one: use read(), write(), runBytes() or copy()`,
      );
    }
    return this.runs === 0
      ? new Uint8Array(0)
      : this.#device.bytes(this.#index().phys[0], this.byteLength);
  }

  /** Run `i` as a zero-copy view, and where it starts in the buffer. */
  runBytes(i: number): { offset: number; bytes: Uint8Array } {
    if (!Number.isInteger(i) || i < 0 || i >= this.runs) {
      throw new KhoError('EINVAL', `run ${i} is not in 0..${this.runs - 1}`);
    }
    const { phys, offset } = this.#index();
    return { offset: offset[i], bytes: this.#device.bytes(phys[i], offset[i + 1] - offset[i]) };
  }

  /** Copies buffer bytes [offset, offset + target.length) into `target`. @throws KhoError EINVAL (out of range). */
  read(offset: number, target: Uint8Array): void {
    this.#each(offset, target.length, (dev, at) => {
      target.set(dev, at);
    });
  }

  /** Copies `source` into buffer bytes from `offset`. @throws KhoError EINVAL (out of range). */
  write(offset: number, source: Uint8Array): void {
    this.#each(offset, source.length, (dev, at) => {
      dev.set(source.subarray(at, at + dev.length));
    });
  }

  /** The whole buffer in one new ArrayBuffer: a copy, O(bytes). */
  copy(): Uint8Array {
    const out = new Uint8Array(this.byteLength);
    this.read(0, out);
    return out;
  }

  /** Calls fn(device view, offset in the caller's buffer) for each run piece of [offset, +length). */
  #each(offset: number, length: number, fn: (dev: Uint8Array, at: number) => void): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + length > this.byteLength) {
      throw new KhoError(
        'EINVAL',
        `bytes [${offset}, +${length}) are not inside the page list's ${this.byteLength} bytes`,
      );
    }
    const { phys, offset: offsets } = this.#index();
    // The last run starting at or before offset.
    let lo = 0;
    let hi = this.runs - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (offsets[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    let done = 0;
    for (let r = lo; done < length; r++) {
      const from = offset + done - offsets[r];
      const n = Math.min(offsets[r + 1] - offsets[r] - from, length - done);
      fn(this.#device.bytes(phys[r] + from, n), done);
      done += n;
    }
  }
}
