/**
 * Range types of the device's memory map, in the spirit of e820. The numbers
 * are ABI: they are written into boot blocks. A reader treats any type it does
 * not know as reserved, so a newer predecessor can add types safely.
 */
export const E820 = {
  USABLE: 1,
  RESERVED: 2,
  /** Kept by a subsystem (pmpool v3) for the successor; never given to the page allocator. */
  RESERVED_KERN: 128,
  /** Preserved by KHO/PKRAM for the successor; never given out by one that cannot read the handover. */
  PRESERVED: 129,
  /** KHO scratch: the only memory a KHO successor allocates from before it has read the handover. */
  SCRATCH: 130,
  /** The running generation's status area (src/status/abi.ts), kept at its address across boots. */
  STATUS: 131,
} as const;

export type E820Type = number;

export interface MemoryRange {
  /** Physical address of the first byte. */
  readonly addr: number;
  /** Length in bytes (> 0). */
  readonly size: number;
  readonly type: E820Type;
}

/** The kernel's names for the types, as `BIOS-e820:` lines print them. */
export function e820TypeName(type: E820Type): string {
  switch (type) {
    case E820.USABLE:
      return 'usable';
    case E820.RESERVED:
      return 'reserved';
    case E820.RESERVED_KERN:
      return 'reserved by kernel';
    case E820.PRESERVED:
      return 'preserved';
    case E820.SCRATCH:
      return 'kho scratch';
    case E820.STATUS:
      return 'livekexec status';
    default:
      return `type ${type}`;
  }
}

/** True for the types the page allocator may use once the handover is read. */
export function isUsableType(type: E820Type): boolean {
  return type === E820.USABLE || type === E820.SCRATCH;
}
