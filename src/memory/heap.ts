import { show } from '../base/errors.js';
import { hex } from '../base/hex.js';
import type { PhysRange } from '../base/range.js';
import { checkRange } from './_range.js';
import { type MemoryDevice, PAGE_SIZE } from './device.js';
import { DeviceError, GeneralProtectionFault } from './errors.js';

/** A range of pages lent to an outside owner. */
export interface GuardedRange extends PhysRange {
  readonly owner: string;
}

/**
 * The emulator's memory: one ArrayBuffer (V8 commits it lazily, so a 16 GiB
 * device costs only what is touched). Views are created per call, never kept.
 *
 * The access guard lends pages to an outside owner; any view touching such a
 * page raises GeneralProtectionFault. Its per-page table (a Uint16Array of
 * owner indices) is only allocated at the first guard and only consulted while
 * at least one page is guarded.
 */
export class HeapDevice implements MemoryDevice {
  readonly pageSize = PAGE_SIZE;
  readonly pages: number;
  readonly name: string;
  private buffer: ArrayBuffer | null;
  /** Per pfn: 0 = not guarded, else 1 + index into `owners`. */
  private guardTable: Uint16Array | null = null;
  private guardedPages = 0;
  private readonly owners: string[] = [];

  /**
   * @param size bytes, a positive multiple of PAGE_SIZE.
   * @throws DeviceError EINVAL for a bad size; ENOMEM when V8 cannot reserve it.
   */
  constructor(
    readonly size: number,
    options: { name?: string } = {},
  ) {
    if (!Number.isSafeInteger(size) || size <= 0 || size % PAGE_SIZE !== 0) {
      throw new DeviceError(
        'EINVAL',
        `heap device size must be a positive multiple of ${PAGE_SIZE}, got ${show(size)}`,
      );
    }
    if (typeof options !== 'object' || options === null)
      throw new DeviceError(
        'EINVAL',
        `heap device options must be an object, got ${show(options)}`,
      );
    if (options.name !== undefined && typeof options.name !== 'string')
      throw new DeviceError('EINVAL', `a heap device name is a string, got ${show(options.name)}`);
    this.pages = size / PAGE_SIZE;
    this.name = options.name ?? `heap ${describeSize(size)}`;
    try {
      this.buffer = new ArrayBuffer(size);
    } catch {
      throw new DeviceError('ENOMEM', `cannot allocate a heap device of ${size} bytes`);
    }
  }

  /**
   * @throws DeviceError EBADF after close, EFAULT out of range;
   *   GeneralProtectionFault when the range touches a guarded page.
   */
  bytes(phys: number, length: number): Uint8Array {
    return new Uint8Array(this.access(phys, length), phys, length);
  }

  /** @throws as bytes(). */
  view(phys: number, length: number): DataView {
    return new DataView(this.access(phys, length), phys, length);
  }

  /** Nothing to make durable; still checks the range. @throws DeviceError EBADF, EFAULT. */
  flush(phys: number, length: number): void {
    this.live();
    checkRange(this.name, this.size, phys, length, false);
  }

  close(): void {
    this.buffer = null;
    this.guardTable = null;
    this.guardedPages = 0;
  }

  /**
   * Lends [phys, phys + length) to `owner`: from now on any view of those pages
   * faults, until unguard().
   * @throws DeviceError EINVAL for an unaligned or empty range, EFAULT outside
   *   the device, EBUSY when a page is already lent (nothing is changed then).
   */
  guard(phys: number, length: number, owner: string): void {
    if (typeof owner !== 'string')
      throw new DeviceError('EINVAL', `${this.name}: a guard owner is a name, got ${show(owner)}`);
    const [first, end] = this.pageSpan(phys, length);
    const table = this.guardTable ?? new Uint16Array(this.pages);
    for (let pfn = first; pfn < end; pfn++) {
      if (table[pfn] !== 0) {
        throw new DeviceError(
          'EBUSY',
          `${this.name}: page ${hex(pfn * PAGE_SIZE)} is already lent to ${this.owners[table[pfn] - 1]}`,
        );
      }
    }
    let idx = this.owners.indexOf(owner);
    if (idx < 0) {
      if (this.owners.length >= 0xffff) throw new DeviceError('ENOSPC', 'too many guard owners');
      idx = this.owners.push(owner) - 1;
    }
    table.fill(idx + 1, first, end);
    this.guardTable = table;
    this.guardedPages += end - first;
  }

  /**
   * Takes [phys, phys + length) back from its owner.
   * @throws DeviceError EINVAL when the range is unaligned or a page in it is
   *   not guarded (nothing is changed then), EFAULT outside the device.
   */
  unguard(phys: number, length: number): void {
    const [first, end] = this.pageSpan(phys, length);
    const table = this.guardTable;
    for (let pfn = first; pfn < end; pfn++) {
      if (table === null || table[pfn] === 0) {
        throw new DeviceError(
          'EINVAL',
          `${this.name}: page ${hex(pfn * PAGE_SIZE)} is not guarded`,
        );
      }
    }
    table!.fill(0, first, end);
    this.guardedPages -= end - first;
  }

  /** True when page `pfn` is lent out. */
  isGuarded(pfn: number): boolean {
    return this.guardTable !== null && pfn >= 0 && pfn < this.pages && this.guardTable[pfn] !== 0;
  }

  /** The lent ranges, ascending, adjacent pages of one owner merged. O(pages) while any is guarded. */
  guardedRanges(): GuardedRange[] {
    const out: GuardedRange[] = [];
    const table = this.guardTable;
    if (table === null || this.guardedPages === 0) return out;
    let pfn = 0;
    while (pfn < this.pages) {
      const o = table[pfn];
      if (o === 0) {
        pfn++;
        continue;
      }
      const start = pfn;
      while (pfn < this.pages && table[pfn] === o) pfn++;
      out.push({
        base: start * PAGE_SIZE,
        size: (pfn - start) * PAGE_SIZE,
        owner: this.owners[o - 1],
      });
    }
    return out;
  }

  private live(): ArrayBuffer {
    if (this.buffer === null) throw new DeviceError('EBADF', `${this.name}: device is closed`);
    return this.buffer;
  }

  private access(phys: number, length: number): ArrayBuffer {
    const buffer = this.live();
    checkRange(this.name, this.size, phys, length);
    if (this.guardedPages > 0 && length > 0) {
      const table = this.guardTable!;
      const last = Math.floor((phys + length - 1) / PAGE_SIZE);
      for (let pfn = Math.floor(phys / PAGE_SIZE); pfn <= last; pfn++) {
        const o = table[pfn];
        if (o !== 0) throw new GeneralProtectionFault(pfn * PAGE_SIZE, this.owners[o - 1]);
      }
    }
    return buffer;
  }

  private pageSpan(phys: number, length: number): [number, number] {
    this.live();
    checkRange(this.name, this.size, phys, 0);
    if (
      !Number.isSafeInteger(length) ||
      length <= 0 ||
      phys % PAGE_SIZE !== 0 ||
      length % PAGE_SIZE !== 0
    ) {
      throw new DeviceError(
        'EINVAL',
        `${this.name}: guard ranges are whole pages, got [${hex(phys)}, +${show(length)})`,
      );
    }
    if (phys + length > this.size) {
      throw new DeviceError(
        'EFAULT',
        `${this.name}: [${hex(phys)}, +${hex(length)}) is outside the device`,
      );
    }
    return [phys / PAGE_SIZE, (phys + length) / PAGE_SIZE];
  }
}

/** "64 MiB", "1.5 GiB", "12 KiB". */
export function describeSize(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} bytes` : `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[u]}`;
}
