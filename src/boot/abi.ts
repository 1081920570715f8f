/**
 * The boot block: what `kexec load` writes into the device for the successor,
 * as a bootloader hands over boot_params (command line, e820 table, setup_data
 * chain). This file is the only place its layout is written down. All fields
 * are little-endian; offsets are relative to the start of the block, so a
 * block can be read wherever it was placed.
 *
 *   0x00 +--------------------------------+
 *        | u32 magic "LKBB"               |
 *   0x04 | u16 version                    |  the writer's format version
 *   0x06 | u16 last_comp_version          |  the oldest reader that understands it
 *   0x08 | u32 total_size                 |  bytes, header included
 *   0x0c | u32 crc32c                     |  over [0, total_size) with this field 0
 *   0x10 | u64 generation                 |  the generation this block boots
 *   0x18 | u8[16] boot_id                 |  the successor's boot id
 *   0x28 | u8[16] predecessor_boot_id     |  the writer's boot id
 *   0x38 | u32 header_size                |  0x60 in version 1; a reader skips more
 *   0x3c | u32 flags                      |  0 in version 1
 *   0x40 | u32 cmdline_off, cmdline_len   |  UTF-8, no NUL
 *   0x48 | u32 memmap_off, memmap_nr      |  memmap_nr entries of 24 bytes
 *   0x50 | u32 setup_data_off             |  first setup_data entry, 0 = none
 *   0x54 | u32 reserved (0)               |
 *   0x58 | u64 reserved (0)               |
 *   0x60 +--------------------------------+
 *        | command line                   |
 *        | memory map: { u64 addr, u64 size, u32 type, u32 0 } ...
 *        | setup_data: { u64 next, u32 type, u32 len, u8 data[len] } ...
 *        +--------------------------------+
 *
 * setup_data entries start 8-byte aligned; `next` is the offset of the next
 * entry (0 ends the chain) and must lie after the current entry's data, so
 * the chain is finite. The magic, `version`, `last_comp_version`,
 * `total_size` and `crc32c` stay where they are in every future version;
 * anything else may change with a version bump.
 */

/** "LKBB" as bytes 4c 4b 42 42. */
export const BOOT_BLOCK_MAGIC = 0x42424b4c;
export const BOOT_BLOCK_VERSION = 1;
/** The oldest format version a version-1 writer expects readers to have. */
export const BOOT_BLOCK_LAST_COMP_VERSION = 1;

export const BB_MAGIC = 0x00;
export const BB_VERSION = 0x04;
export const BB_LAST_COMP_VERSION = 0x06;
export const BB_TOTAL_SIZE = 0x08;
export const BB_CRC32C = 0x0c;
export const BB_GENERATION = 0x10;
export const BB_BOOT_ID = 0x18;
export const BB_PREDECESSOR_BOOT_ID = 0x28;
export const BB_HEADER_SIZE = 0x38;
export const BB_FLAGS = 0x3c;
export const BB_CMDLINE_OFF = 0x40;
export const BB_CMDLINE_LEN = 0x44;
export const BB_MEMMAP_OFF = 0x48;
export const BB_MEMMAP_NR = 0x4c;
export const BB_SETUP_DATA_OFF = 0x50;
/** The header's size in version 1. */
export const BOOT_BLOCK_HEADER_SIZE = 0x60;

export const BOOT_ID_SIZE = 16;

/** One memory map entry: u64 addr, u64 size, u32 type, u32 reserved. */
export const MEMMAP_ENTRY_SIZE = 24;
export const MEMMAP_ADDR = 0x00;
export const MEMMAP_SIZE = 0x08;
export const MEMMAP_TYPE = 0x10;
/** Reserved, 0. */
export const MEMMAP_RESERVED = 0x14;
/** A setup_data header: u64 next, u32 type, u32 len. */
export const SETUP_DATA_HEADER_SIZE = 16;
export const SETUP_DATA_NEXT = 0x00;
export const SETUP_DATA_TYPE = 0x08;
export const SETUP_DATA_LEN = 0x0c;
export const SETUP_DATA_ALIGN = 8;

// Limits, so that decoding a hostile block is bounded work.
/** Bytes of command line (the kernel's COMMAND_LINE_SIZE is 2048 on x86; ours carries program argv too). */
export const MAX_CMDLINE = 4096;
/** Memory map entries (the handed-over map coalesces preserved extents to stay below this). */
export const MAX_MEMMAP_ENTRIES = 8192;
export const MAX_SETUP_DATA_ENTRIES = 64;
/** The whole block. */
export const MAX_BOOT_BLOCK_SIZE = 4 * 1024 * 1024;

/**
 * setup_data types. Numbers follow the kernel's where there is one; 1..9 are
 * left unused (the kernel's e820 extension, DTB, PCI, ...) and 16 and up are
 * free for later subsystems. A reader keeps and ignores a type it does not know.
 */
export const SETUP = {
  /** Never written: marks "no entry". */
  NONE: 0,
  /** The handover FDT (like the kernel's SETUP_KEXEC_KHO = 10). */
  KHO_FDT: 10,
  /** The KHO scratch areas the successor boots in. */
  KHO_SCRATCH: 11,
  /** PKRAM's super block. */
  PKRAM: 12,
  /** Reserved for pmpool. */
  PMPOOL: 13,
  /** Reserved for LUO sessions. */
  LUO: 14,
  /** When the predecessor's exec began (the successor's downtime starts there): src/status/abi.ts. */
  HANDOVER_CLOCK: 15,
  /** Kexec metadata: the writer's release, the kexec count, boot counting and the fallback (kexec-metadata.ts). */
  KEXEC_METADATA: 16,
} as const;

/**
 * Kexec metadata (setup_data SETUP.KEXEC_METADATA), little-endian. Upstream
 * carries its `struct kho_kexec_metadata` { u32 version; char
 * previous_release[65]; u32 kexec_count } as a raw KHO subtree named
 * "kexec-metadata"; here it rides in the boot block, because the fallback
 * must read it before KHO (which `kho=off` disables) and the CLI reads it
 * from a device at rest. The first fields mirror upstream's, aligned:
 *
 *   0x00 u32 version (1)
 *   0x04 u32 kexec_count        kexec boots since the last cold boot, this one included
 *   0x08 u8[65] previous_release  NUL-terminated: the release that wrote the block
 *   0x49 u8[3] 0
 *   0x4c u32 flags              bit 0: boot counting (the successor boots on trial);
 *                               bit 1: a try must be marked good by the deadline
 *   0x50 u32 tries              tries of the successor before the fallback
 *   0x54 u32 deadline_ms        how long each try has to be marked good
 *   0x58 u32 successor_off, successor_len   command: NUL-terminated strings
 *   0x60 u32 fallback_off, fallback_len     cwd, file, argv[0], argv[1], ...
 *   0x68 ...                    the two commands
 *
 * A reader takes a version it knows and ignores bytes past the fields it
 * knows; flags it does not know make it refuse the boot counting, not the boot.
 */
export const KMETA_VERSION = 1;
/** Where the version is (KMETA_VERSION is its value). */
export const KMETA_VERSION_OFF = 0x00;
export const KMETA_KEXEC_COUNT = 0x04;
export const KMETA_PREVIOUS_RELEASE = 0x08;
/** Upstream's __NEW_UTS_LEN + 1. */
export const KMETA_RELEASE_SIZE = 65;
export const KMETA_FLAGS = 0x4c;
export const KMETA_TRIES = 0x50;
export const KMETA_DEADLINE_MS = 0x54;
export const KMETA_SUCCESSOR = 0x58;
export const KMETA_FALLBACK = 0x60;
/** A command field: u32 offset of the command in the entry, u32 its length. */
export const KMETA_COMMAND_OFF = 0x00;
export const KMETA_COMMAND_LEN = 0x04;
export const KMETA_HEADER_SIZE = 0x68;
/** flags: the successor boots on trial, with a fallback. */
export const KMETA_FLAG_TRIAL = 1;
/** flags: a try not marked good by the deadline fails (else living that long marks it good). */
export const KMETA_FLAG_REQUIRE_GOOD = 2;
/** Bytes of one command, so that decoding a hostile entry is bounded. */
export const KMETA_COMMAND_MAX = 64 * 1024;
