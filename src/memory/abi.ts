/**
 * The device header: the only layout this layer writes into a device, in
 * page 0. All fields little-endian. Any layout change bumps
 * DEVICE_FORMAT_VERSION; a change an older reader can safely ignore (a field
 * appended inside header_size) keeps DEVICE_LAST_COMPAT_VERSION.
 *
 *   0x00 +--------------------+--------------------+
 *        | magic u32 "LKXD"   | version u32        |
 *   0x08 +--------------------+--------------------+
 *        | last_comp u32      | header_size u32    |   header_size = bytes covered by crc
 *   0x10 +--------------------+--------------------+
 *        | device_size u64                         |
 *   0x18 +--------------------+--------------------+
 *        | page_size u32      | crc32c u32         |   crc over [0, header_size), this field as 0
 *   0x20 +--------------------+--------------------+
 *        | uuid (16 bytes)                         |
 *   0x30 +-----------------------------------------+
 *        | created u64 (ms since the epoch)        |
 *   0x38 +-----------------------------------------+
 *        | generation u64                          |
 *   0x40 +-----------------------------------------+
 *        | boot_block u64 (phys; 0 = none pending) |
 *   0x48 +--------------------+--------------------+
 *        | owner_pid u32      | map_count u32      |
 *   0x50 +-----------------------------------------+
 *        | boot_id (16 bytes): the running boot's id |   all zero before the first boot
 *   0x60 +--------------------+--------------------+
 *        | map[0]: addr u64, size u64, type u32, pad u32 (24 bytes)
 *        | ... map_count entries, at most DEVICE_MAP_MAX (ends by 0xc60)
 *  0xc80 +-----------------------------------------+  boot record (version 2; absent when
 *        | magic u32 "LKBR"   | size u32           |  header_size ends before it)
 *  0xc88 | kexec_count u32    | last_outcome u32   |  outcome: 0 none, 1 good, 2 fell back
 *  0xc90 | last_tries u32     | trial_state u32    |  state: 0 none, 1 on trial, 2 falling back
 *  0xc98 | trial_tries u32    | trial_max_tries u32|  tries started / allowed
 *  0xca0 | trial_pid u32      | trial_deadline u32 |  (ms)
 *  0xca8 | trial_boot_block u64                    |  the pending block the trial boots
 *  0xcb0 | trial_started u64 (ms since the epoch)  |
 *  0xcb8 | last_at u64 (ms since the epoch)        |
 *  0xcc0 | release: u8 len + 64 bytes (72)         |  the generation that last booted
 *  0xd08 | trial_release (72)                      |  the successor on trial
 *  0xd50 | last_successor (72)                     |  the successor of the last handover
 *  0xd98 | trial_reason: u16 len + 254 bytes (256) |  its last failure
 *  0xe98 | last_reason (256)                       |  why the last handover fell back
 *  0xf98 | trial_base_generation u64               |  the generation and boot id a try's
 *  0xfa0 | trial_base_boot_id (16 bytes)           |  boot block was written by
 *  0xfb0 +-----------------------------------------+ header_size
 *        | zero up to the end of page 0            |
 *        +-----------------------------------------+ 0x1000
 *
 * The map is the device's "firmware" memory map: it describes the device
 * itself (page 0 reserved, the rest usable), and every boot starts from it.
 *
 * The boot record is A/B boot counting (systemd-boot's +N-M tries) for the
 * pending handover: a successor on trial names itself in the header
 * (generation, boot id) but leaves the boot block pending, and counts its
 * tries here with the generation and boot id the block was written by, so a
 * retry or the fallback boots the same, untouched handover. Version 1 readers ignore it (it lies inside header_size, after
 * the map); a version 1 writer drops it.
 */

/** "LKXD" in byte order. */
export const DEVICE_MAGIC = 0x44584b4c;
export const DEVICE_FORMAT_VERSION = 2;
export const DEVICE_LAST_COMPAT_VERSION = 1;

export const HDR_MAGIC = 0x00;
export const HDR_VERSION = 0x04;
export const HDR_LAST_COMP = 0x08;
export const HDR_HEADER_SIZE = 0x0c;
export const HDR_DEVICE_SIZE = 0x10;
export const HDR_PAGE_SIZE = 0x18;
export const HDR_CRC = 0x1c;
export const HDR_UUID = 0x20;
export const HDR_CREATED = 0x30;
export const HDR_GENERATION = 0x38;
export const HDR_BOOT_BLOCK = 0x40;
export const HDR_OWNER_PID = 0x48;
export const HDR_MAP_COUNT = 0x4c;
export const HDR_BOOT_ID = 0x50;
export const HDR_MAP = 0x60;

export const MAP_ENTRY_SIZE = 24;
export const MAP_ENTRY_ADDR = 0;
export const MAP_ENTRY_SIZE_FIELD = 8;
export const MAP_ENTRY_TYPE = 16;
/** Like the kernel's E820_MAX_ENTRIES_ZEROPAGE: what fits the boot page. */
export const DEVICE_MAP_MAX = 128;

/** The boot record (format version 2), at a fixed offset past the largest map. */
export const HDR_RECORD = 0xc80;
/** "LKBR" in byte order. */
export const RECORD_MAGIC = 0x52424b4c;
export const RECORD_SIZE = 0x330;
export const REC_MAGIC = 0x00;
export const REC_SIZE = 0x04;
export const REC_KEXEC_COUNT = 0x08;
export const REC_LAST_OUTCOME = 0x0c;
export const REC_LAST_TRIES = 0x10;
export const REC_TRIAL_STATE = 0x14;
export const REC_TRIAL_TRIES = 0x18;
export const REC_TRIAL_MAX_TRIES = 0x1c;
export const REC_TRIAL_PID = 0x20;
export const REC_TRIAL_DEADLINE = 0x24;
export const REC_TRIAL_BOOT_BLOCK = 0x28;
export const REC_TRIAL_STARTED = 0x30;
export const REC_LAST_AT = 0x38;
export const REC_RELEASE = 0x40;
export const REC_TRIAL_RELEASE = 0x88;
export const REC_LAST_SUCCESSOR = 0xd0;
export const REC_TRIAL_REASON = 0x118;
export const REC_LAST_REASON = 0x218;
export const REC_TRIAL_BASE_GENERATION = 0x318;
export const REC_TRIAL_BASE_BOOT_ID = 0x320;
/** A release slot: u8 length, then at most 64 bytes of UTF-8 (upstream's __NEW_UTS_LEN). */
export const REC_RELEASE_SLOT = 72;
export const RELEASE_MAX = 64;
/** A reason slot: u16 length, then at most 254 bytes of UTF-8. */
export const REC_REASON_SLOT = 256;
export const REASON_MAX = 254;
