/**
 * The PKRAM handover ABI: the only place its layout and magic numbers are
 * written. A contract between a kernel and its successor: ANY change here
 * bumps PKRAM_VERSION. Every structure is one 4096-byte device page, fields
 * little-endian; u64 fields hold physical addresses or pfns below 2^53.
 * A pointer of 0 means "none" (page 0 never holds PKRAM metadata).
 *
 * Super block page (its pfn is `pkram=<pfn>`):
 *
 *   0x00 u32 magic        PKRAM_MAGIC "mrkp" (PKRAM_MAGIC_CONSUMED once attached)
 *   0x04 u32 version      PKRAM_VERSION
 *   0x08 u64 generation   handover count, chosen by the kernel that wrote it
 *   0x10 u8[16] boot id   the writing kernel's boot id
 *   0x20 u64 node pfn     first node of the node list (0 = none)
 *   0x28 u64 region pfn   page of preserved ranges (see region list)
 *   0x30 u32 nr regions   entries used in the region page
 *   0x34 u32 nr nodes     nodes on the node list
 *   0x38 u64 table root   phys of the preserved-page table (a KHO radix tree)
 *   0x40 u32 table crc    CRC-32 of the table's pages (KHO's tree checksum, with
 *                         zlib's crc: ascending, each page's u64 LE address then its bytes)
 *   0x44 u32 region crc   CRC-32 of the nr regions entries of the region page
 *   0x48 u32 crc32c       of bytes 0x00..0x47
 *
 * Every node, object and link page carries a CRC-32 (zlib's; seal.ts says
 * why not crc32c) of its used bytes, the crc field itself excluded, written
 * once the page is complete (a link page when the next one is started or
 * its object finished, an object page when it is finished, a node page at
 * finishSave and whenever finalize links the node list). A successor checks
 * them all before it uses any entry, so a damaged index or count is a
 * refusal, never a wrong value.
 *
 * Node page:
 *
 *   0x00 u32 magic "PKND"   0x04 u32 flags (PKRAM_NODE_FL_SAVED)
 *   0x08 u64 next node pfn  0x10 u64 first object pfn
 *   0x18 u32 nr objects     0x1c u32 name length (bytes, 1..256)
 *   0x20 u8[256] name (UTF-8, zero-padded)
 *   0x120 u32 crc32 of 0x00..0x11f
 *
 * Object page:
 *
 *   0x00 u32 magic "PKOB"   0x04 u32 flags (0)
 *   0x08 u64 next object pfn
 *   0x10 u64 folio stream: first link page pfn
 *   0x18 u64 byte stream: first link page pfn
 *   0x20 u64 byte length    0x28 u64 folio entries
 *   0x30 u32 crc32 of 0x00..0x2f
 *
 * Link page (both streams):
 *
 *   0x00 u32 magic "PKLN"   0x04 u32 nr entries (<= PKRAM_LINK_ENTRIES)
 *   0x08 u64 next link pfn
 *   0x10 u32 crc32 of 0x00..0x0f then the nr entries used
 *   0x14 u32 0 (reserved)   0x18 u64 0 (reserved)
 *   0x20 entries, 16 bytes each:
 *        u64 entry = phys | flags | order     u64 index
 *
 *        63                         12 11        5 4     0
 *        |  page-aligned phys          |  flags   | order |
 *
 *   Folio stream: one entry per folio, index = the folio's mapping index.
 *   Byte stream: one order-0 entry per data page, index = page number in the
 *   stream; the object's byte length says how much of the last page counts.
 *
 * Region list page: nr regions x { u64 phys, u64 size }, sorted, the
 * coalesced preserved ranges (table pages included) for early boot to reserve
 * without walking the table.
 */

import { PAGE_SIZE } from '../memory/device.js';

/** "mrkp" read as a little-endian word, the RFC's magic. */
export const PKRAM_MAGIC = 0x706b726d;
/** Written over the magic by the successor that attached, so a second attach is refused. */
export const PKRAM_MAGIC_CONSUMED = 0x444d5243;
/**
 * 2: crc32c in node, object and link pages, table and region crcs in the super block.
 * 3: node, object and link pages sealed with CRC-32 instead.
 * 4: the table and region crcs CRC-32 too (the super block's own stays crc32c).
 */
export const PKRAM_VERSION = 4;
/** Longest node name, in bytes of UTF-8. */
export const PKRAM_NAME_MAX = 256;
/** Largest folio order a folio stream entry may carry (1 GiB folios). */
export const PKRAM_MAX_ORDER = 18;
export const PKRAM_BOOT_ID_SIZE = 16;

export const SB_OFF_MAGIC = 0x00;
export const SB_OFF_VERSION = 0x04;
export const SB_OFF_GENERATION = 0x08;
export const SB_OFF_BOOT_ID = 0x10;
export const SB_OFF_NODE_PFN = 0x20;
export const SB_OFF_REGION_PFN = 0x28;
export const SB_OFF_NR_REGIONS = 0x30;
export const SB_OFF_NR_NODES = 0x34;
export const SB_OFF_TABLE_ROOT = 0x38;
export const SB_OFF_TABLE_CRC = 0x40;
export const SB_OFF_REGION_CRC = 0x44;
export const SB_OFF_CRC = 0x48;
/** Bytes of the super block covered by the crc. */
export const SB_CRC_LEN = SB_OFF_CRC;

/** "PKND". */
export const PKRAM_NODE_MAGIC = 0x444e4b50;
export const NODE_OFF_MAGIC = 0x00;
export const NODE_OFF_FLAGS = 0x04;
export const NODE_OFF_NEXT = 0x08;
export const NODE_OFF_OBJ = 0x10;
export const NODE_OFF_NR_OBJS = 0x18;
export const NODE_OFF_NAME_LEN = 0x1c;
export const NODE_OFF_NAME = 0x20;
export const NODE_OFF_CRC = 0x120;
/** Set by finishSave: only saved nodes are on the node list. */
export const PKRAM_NODE_FL_SAVED = 0x1;

/** "PKOB". */
export const PKRAM_OBJ_MAGIC = 0x424f4b50;
export const OBJ_OFF_MAGIC = 0x00;
export const OBJ_OFF_FLAGS = 0x04;
export const OBJ_OFF_NEXT = 0x08;
export const OBJ_OFF_FOLIO_HEAD = 0x10;
export const OBJ_OFF_BYTE_HEAD = 0x18;
export const OBJ_OFF_BYTE_LEN = 0x20;
export const OBJ_OFF_NR_FOLIOS = 0x28;
export const OBJ_OFF_CRC = 0x30;

/** "PKLN". */
export const PKRAM_LINK_MAGIC = 0x4e4c4b50;
export const LINK_OFF_MAGIC = 0x00;
export const LINK_OFF_COUNT = 0x04;
export const LINK_OFF_NEXT = 0x08;
export const LINK_OFF_CRC = 0x10;
export const LINK_OFF_ENTRIES = 0x20;
export const LINK_ENTRY_SIZE = 16;
/** Offset of the mapping index within an entry. */
export const LINK_ENTRY_OFF_INDEX = 8;
/** Entries per link page: (4096 - 32) / 16 = 254. */
export const PKRAM_LINK_ENTRIES = (PAGE_SIZE - LINK_OFF_ENTRIES) / LINK_ENTRY_SIZE;

/** Low 12 bits of an entry: order in bits 0..4, flags in bits 5..11. */
export const PKRAM_ENTRY_ORDER_MASK = 0x1f;
export const PKRAM_ENTRY_FLAGS_MASK = 0xfe0;
/** The folio is a copy PKRAM made away from an avoided range; PKRAM owns the page. */
export const PKRAM_ENTRY_FL_RELOCATED = 0x20;
/** Every flag this version knows; others are corrupt. */
export const PKRAM_ENTRY_FLAGS_KNOWN = PKRAM_ENTRY_FL_RELOCATED;

export const REGION_ENTRY_SIZE = 16;
export const REGION_OFF_PHYS = 0;
export const REGION_OFF_SIZE = 8;
/** Ranges per region page: 4096 / 16 = 256. */
export const PKRAM_REGIONS_MAX = PAGE_SIZE / REGION_ENTRY_SIZE;

/*
 * Kernel handover of the super block (kernel-early.ts, kernel-pkram.ts).
 * These name how a successor finds the super block; the pages it points at
 * keep PKRAM_VERSION's layout, so adding them changed nothing above.
 *
 * KHO subtree `pkram` (default):
 *   / { compatible = "livekexec,pkram-v1"; super = <u64 phys of the super block>; };
 *
 * setup_data SETUP.PKRAM (always written at freeze; read by `pkram ls|rm` on
 * a pending boot block, and by a successor that must keep the ranges reserved):
 *   0x00 u64 super block pfn
 *   0x08 u32 nr marks (<= PKRAM_MAX_MAP_MARKS)   0x0c u32 0
 *   0x10 nr marks x { u64 phys, u64 size }: the PRESERVED marks put in the handed-over map
 */

/** Name of PKRAM's KHO subtree. */
export const PKRAM_KHO_SUBTREE = 'pkram';
/** Its compatible; bump on any change to the subtree's properties. */
export const PKRAM_KHO_COMPATIBLE = 'livekexec,pkram-v1';
/** Subtree property: u64 physical address of the super block page. */
export const PKRAM_KHO_PROP_SUPER = 'super';
/**
 * Most PRESERVED entries PKRAM puts in the handed-over memory map: the
 * table's coalesced extents, rounded outwards past this. The successor
 * recomputes the same extents from the table, so the number is part of the ABI.
 */
export const PKRAM_MAX_MAP_MARKS = 64;
export const PKRAM_SETUP_OFF_SUPER = 0x00;
export const PKRAM_SETUP_OFF_NR = 0x08;
export const PKRAM_SETUP_OFF_MARKS = 0x10;
export const PKRAM_SETUP_MARK_SIZE = 16;
/** A mark: u64 phys, u64 size. */
export const PKRAM_SETUP_MARK_PHYS = 0x00;
export const PKRAM_SETUP_MARK_BYTES = 0x08;
