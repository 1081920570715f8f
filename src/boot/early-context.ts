import type { PhysRange } from '../base/range.js';
import type { SetupData } from '../boot/bootblock.js';
import type { Memblock } from '../boot/memblock.js';
import type { EarlyParamValues } from '../boot/params.js';
import type { MemoryDevice } from '../memory/device.js';
import type { MemoryMap } from '../memory/memmap.js';

/**
 * What the early boot of each subsystem sees: the memory map and memblock
 * before the page allocator exists. Whatever it must keep it reserves in
 * memblock here, so the page allocator is never given it.
 */
export interface EarlyContext {
  readonly device: MemoryDevice;
  /** This boot's memory map; early code may retype ranges (KHO scratch, preserved extents). */
  readonly memoryMap: MemoryMap;
  readonly memblock: Memblock;
  readonly params: EarlyParamValues;
  /** setup_data of the boot block this boot consumed (empty on a cold boot). */
  readonly setupData: readonly SetupData[];
  readonly nodes: readonly PhysRange[];
  /** Appends a line to the boot log (the kernel's dmesg). */
  log(line: string): void;
}
