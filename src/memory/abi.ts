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
 *        | ... map_count entries, at most DEVICE_MAP_MAX
 *        +-----------------------------------------+ header_size
 *        | zero up to the end of page 0            |
 *        +-----------------------------------------+ 0x1000
 *
 * The map is the device's "firmware" memory map: it describes the device
 * itself (page 0 reserved, the rest usable), and every boot starts from it.
 */

/** "LKXD" in byte order. */
export const DEVICE_MAGIC = 0x44584b4c;
export const DEVICE_FORMAT_VERSION = 1;
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
