/**
 * A memory device is the machine's physical memory: a byte range addressed by
 * physical address (a JS number, exact below 2^53, never a 32-bit int),
 * split into 4 KiB pages numbered by pfn.
 *
 * Views are zero-copy. Code must take a view for each access rather than keep
 * one, so that an access guard (pages lent to another owner) is honoured.
 */

import { DeviceError } from './errors.js';

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;

/** A physical range [base, base + size). */
export interface PhysRange {
  readonly base: number;
  readonly size: number;
}

export interface MemoryDevice {
  /** Size in bytes, a multiple of PAGE_SIZE. */
  readonly size: number;
  /** Always PAGE_SIZE; kept as a field so layouts can record it. */
  readonly pageSize: number;
  /** Number of pages (size / pageSize). */
  readonly pages: number;
  /** A short description for messages ("heap 64 MiB", "/dev/shm/app"). */
  readonly name: string;
  /**
   * Set by a device one process owns until it exits or execs (a mapped
   * device): the kernel booted on it lives as long as the process, so its
   * per-page arrays are never garbage and stay out of V8's accounting
   * (mm/page-array.ts). Unset on emulated devices, where one process boots
   * many generations and the dead ones' arrays must count towards a collection.
   */
  readonly ownedForLife?: boolean;

  /**
   * A zero-copy byte view of [phys, phys + length). A view that starts on a
   * page boundary starts 4-byte aligned in its buffer: the kernel reads
   * on-device tables as 32-bit words (checkDeviceViews).
   * @throws RangeError-free: a range outside the device is a DeviceError (EFAULT);
   *   a guarded page in the range is a GeneralProtectionFault.
   */
  bytes(phys: number, length: number): Uint8Array;
  /** A DataView over the same range, for little-endian in-device structures. */
  view(phys: number, length: number): DataView;

  /** Make [phys, phys + length) durable (msync on a mapped device; no-op on the heap). */
  flush(phys: number, length: number): void;
  /**
   * Optional hint: fault [phys, phys + length) in for writing now, in one
   * call, rather than one page fault at a time later (MADV_POPULATE_WRITE on
   * a mapped device). Does nothing where it cannot.
   */
  populate?(phys: number, length: number): void;
  /**
   * Optional hint: drop this process's page-table entries for the range,
   * off the main thread, keeping every byte (a shared mapping's pages are
   * the file's; the next access maps them again). An in-place exec tears
   * down every page the process has mapped, while nothing serves: done
   * ahead, while the process still serves, that cost leaves the handover.
   * Resolves when done; never rejects.
   */
  zap?(phys: number, length: number): Promise<void>;
  /** Release the mapping and the ownership lock. Further access is an error. */
  close(): void;
}

/**
 * Refuses a device whose page views are not 4-byte aligned in their buffer
 * (a third-party MemoryDevice): the KHO tree and pmpool's headers are read
 * as Uint32Arrays, which would otherwise fail deep inside with a RangeError.
 * @throws DeviceError EINVAL.
 */
export function checkDeviceViews(device: MemoryDevice): void {
  const offset = device.bytes(0, PAGE_SIZE).byteOffset;
  if (offset % 4 !== 0) {
    throw new DeviceError(
      'EINVAL',
      `${device.name}: a page's view starts at byte ${offset} of its buffer, not on a 4-byte boundary`,
    );
  }
}

export function pfnToPhys(pfn: number): number {
  return pfn * PAGE_SIZE;
}

export function physToPfn(phys: number): number {
  return Math.floor(phys / PAGE_SIZE);
}

export function isPageAligned(phys: number): boolean {
  return phys % PAGE_SIZE === 0;
}

export function pageAlignUp(n: number): number {
  return Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;
}

export function pageAlignDown(n: number): number {
  return Math.floor(n / PAGE_SIZE) * PAGE_SIZE;
}
