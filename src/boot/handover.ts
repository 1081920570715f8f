import type { PhysRange } from '../memory/device.js';
import type { MemoryRange } from '../memory/memmap-types.js';
import type { SetupData } from './bootblock.js';

/** What one subsystem adds to the boot block it hands to the successor. */
export interface HandoverPart {
  /** setup_data entries (the handover FDT, scratch areas, ...). */
  readonly setupData?: readonly SetupData[];
  /** Ranges to mark in the memory map handed over (preserved, reserved by kernel). */
  readonly marks?: readonly MemoryRange[];
}

/** Memory set aside for kexec segments: what is free for one now, and claims on it. */
export interface SegmentArena {
  /** The ranges a segment may take now. */
  free(): readonly PhysRange[];
  /** Takes a segment's whole pages. @throws when they are not free. */
  claim(segment: PhysRange): void;
  /** Gives back what claim took. */
  release(segment: PhysRange): void;
}

/**
 * A subsystem that takes part in kexec (KHO, pmpool, PKRAM, LUO). The calls
 * come in complete sets: a freeze that succeeded is always followed by
 * either the successor's boot or an unfreeze.
 */
export interface HandoverSubsystem {
  readonly name: string;
  /**
   * Memory this subsystem sets aside for kexec segments (KHO: the scratch
   * areas, which the page allocator hands out only to transient
   * allocations). When one is given, segments go only there and the page
   * allocator is not asked.
   */
  segmentArena?(): SegmentArena | undefined;
  /** Told where the segments went (PKRAM moves preserved pages out of their way). */
  segmentsPlaced?(segments: readonly PhysRange[]): void;
  /** Stops changes and serializes what the successor needs (KHO finalize). Throws to cancel the exec. */
  freeze?(): HandoverPart;
  /** Undoes freeze after a later failure (KHO abort). */
  unfreeze?(): void;
}
