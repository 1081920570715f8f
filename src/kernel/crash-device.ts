import type { PhysRange } from '../base/range.js';
import type { MemoryDevice } from '../memory/device.js';
import { DeviceError } from '../memory/errors.js';

/**
 * The device as a crash (kdump) kernel sees it: its own reserved area is
 * ordinary memory; everything else is the dead generation's memory, readable
 * (views are copies, like reading /proc/vmcore) but never written.
 */
export class CrashDevice implements MemoryDevice {
  readonly size: number;
  readonly pageSize: number;
  readonly pages: number;
  readonly name: string;

  constructor(
    private readonly inner: MemoryDevice,
    readonly area: PhysRange,
  ) {
    this.size = inner.size;
    this.pageSize = inner.pageSize;
    this.pages = inner.pages;
    this.name = `${inner.name} (crash kernel)`;
  }

  #inside(phys: number, length: number): boolean {
    return phys >= this.area.base && phys + length <= this.area.base + this.area.size;
  }

  bytes(phys: number, length: number): Uint8Array {
    const v = this.inner.bytes(phys, length);
    return this.#inside(phys, length) ? v : v.slice();
  }

  view(phys: number, length: number): DataView {
    const b = this.bytes(phys, length);
    return new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  flush(phys: number, length: number): void {
    if (!this.#inside(phys, length)) {
      throw new DeviceError('EFAULT', `crash kernel: the old generation's memory is read-only`);
    }
    this.inner.flush(phys, length);
  }

  close(): void {
    // The device belongs to the machine, not to the crash kernel.
  }
}
