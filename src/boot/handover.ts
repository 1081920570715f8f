import type { SetupData } from '../boot/bootblock.js';
import type { MemoryRange } from '../memory/memmap-types.js';
import type { PhysRange } from './placement.js';

/** What one subsystem adds to the boot block it hands to the successor. */
export interface HandoverPart {
  /** setup_data entries (the handover FDT, scratch areas, ...). */
  readonly setupData?: readonly SetupData[];
  /** Ranges to mark in the memory map handed over (preserved, reserved by kernel). */
  readonly marks?: readonly MemoryRange[];
}

/**
 * A subsystem that takes part in kexec (KHO, pmpool, PKRAM, LUO). The calls
 * come in complete sets: a freeze that succeeded is always followed by
 * either the successor's boot or an unfreeze.
 */
export interface HandoverSubsystem {
  readonly name: string;
  /**
   * Where kexec may place its segments, when this subsystem restricts it
   * (KHO: inside the scratch areas). The intersection of all answers is used.
   */
  segmentWindows?(): readonly PhysRange[] | undefined;
  /** Ranges kexec segments must not overlap, beyond what is already not free. */
  segmentsPlaced?(segments: readonly PhysRange[]): void;
  /** Stops changes and serializes what the successor needs (KHO finalize). Throws to cancel the exec. */
  freeze?(): HandoverPart;
  /** Undoes freeze after a later failure (KHO abort). */
  unfreeze?(): void;
}
