/**
 * The preserved store's in-memory layout: a contract between a generation
 * and its successor. Any change here bumps STORE_VERSION (and the subtree's
 * compatible string). All words are little-endian u32.
 *
 * Memory comes in extents: contiguous page runs, each run by a CMA-style
 * bitmap allocator living in its own first pages (pmpool's CmaPool), so a
 * successor re-attaches to every extent from its base and size alone. In
 * kernel memory an extent is a run of pages claimed from the page allocator
 * and preserved with KHO; on a pmpool the pool itself is the extent. The
 * first extent's first data page is the super block, the store's one root.
 *
 *   super block (one page)
 *   0x000 magic "LKST"         \
 *   0x004 version               |
 *   0x008 flags                 |  written once at create,
 *   0x00c seed (hash)           |  covered by the header crc
 *   0x010 epoch (unix seconds)  |
 *   0x014 max key bytes         |
 *   0x018 max value bytes       |
 *   0x01c budget, pages         |
 *   0x020 name length           |
 *   0x024 name (32 bytes)       |
 *   0x044 header crc           /
 *   0x080 state, owner generation, owner boot id (16 bytes)
 *   0x0a0 counters: entries, live bytes (lo, hi), record bytes (lo, hi)
 *   0x0c0 extents: count, first directory pfn, pages (lo, hi)
 *   0x0e0 tables: current (dir pfn, log2 slots, live, tombs), other (same)
 *   0x100 resize: cursor, bytes zeroed, phase
 *   0x120 clock hand, ttl entries
 *   0x200 size classes: CLASS_COUNT x {partial slab ref, slabs, objects, -}
 *   0x800 intent log: op, count, then entries {addr lo, addr hi, old, new}
 *
 * A ref is a physical address divided by 16 (records are 16-byte aligned):
 * a u32 reaches 64 GiB of device.
 *
 *   record (16-byte header, then key, then value)
 *   w0 key length (bits 0-15) | class (16-23, LARGE for a page span) | flags (24-31)
 *   w1 value length
 *   w2 hash of the key
 *   w3 expiry: seconds after the epoch + 1, 0 = never
 *
 *   slab (SLAB_BYTES, aligned to SLAB_BYTES; objects of one class after a 32-byte header)
 *   w0 SLAB_MAGIC | class, w1 live objects, w2 free head (offset, 0 = none),
 *   w3 bump offset, w4 prev partial slab (ref), w5 next partial slab (ref), w6 capacity
 *   A free object: w0 FREE_OBJECT, w1 next free offset.
 *
 *   table: 2^log2 slots of {tag (hash), ref}; ref 0 = empty, 1 = deleted.
 *   Its directory page lists the pfns of its segments (SEGMENT_BYTES each,
 *   or the whole table when smaller).
 *
 *   extent directory page: w0 next directory pfn, w1 entries here, then
 *   entries {base pfn, pages, kind, -} from word 4.
 */

/** "LKST" read as a little-endian word. */
export const STORE_MAGIC = 0x54534b4c;
export const STORE_VERSION = 1;
/** The KHO subtree's compatible string. */
export const STORE_COMPATIBLE = 'livekexec,store-v1';
/** Subtree names are `store_<name>` (FDT node names: 31 characters). */
export const SUBTREE_PREFIX = 'store_';
export const PROP_COMPATIBLE = 'compatible';
export const PROP_ROOT = 'root';

export const FLAG_CRASH_SAFE = 1;
export const FLAG_EVICT = 2;

// Super block word indices.
export const SB_MAGIC = 0x000 >> 2;
export const SB_VERSION = 0x004 >> 2;
export const SB_FLAGS = 0x008 >> 2;
export const SB_SEED = 0x00c >> 2;
export const SB_EPOCH = 0x010 >> 2;
export const SB_MAX_KEY = 0x014 >> 2;
export const SB_MAX_VALUE = 0x018 >> 2;
export const SB_BUDGET_PAGES = 0x01c >> 2;
export const SB_NAME_LEN = 0x020 >> 2;
export const SB_NAME = 0x024;
export const NAME_MAX = 32;
export const SB_CRC = 0x044 >> 2;
export const SB_CRC_BYTES = 0x044;

export const SB_STATE = 0x080 >> 2;
export const SB_OWNER_GEN = 0x084 >> 2;
export const SB_OWNER_BOOT = 0x088;
export const SB_ENTRIES = 0x0a0 >> 2;
export const SB_LIVE_LO = 0x0a4 >> 2;
export const SB_LIVE_HI = 0x0a8 >> 2;
export const SB_REC_LO = 0x0ac >> 2;
export const SB_REC_HI = 0x0b0 >> 2;
export const SB_EXT_COUNT = 0x0c0 >> 2;
export const SB_EXT_DIR = 0x0c4 >> 2;
export const SB_EXT_PAGES_LO = 0x0c8 >> 2;
export const SB_EXT_PAGES_HI = 0x0cc >> 2;
/** Table descriptors: dir pfn, log2 slots, live, tombs. */
export const SB_TABLE_CUR = 0x0e0 >> 2;
export const SB_TABLE_OLD = 0x0f0 >> 2;
export const TD_DIR = 0;
export const TD_LOG2 = 1;
export const TD_LIVE = 2;
export const TD_TOMBS = 3;
/** Resize: slots of the old table migrated (phase 2), bytes of the new one zeroed (phase 1). */
export const SB_CURSOR = 0x100 >> 2;
export const SB_ZEROED = 0x104 >> 2;
export const SB_PHASE = 0x108 >> 2;
export const PHASE_NONE = 0;
/** The next table (SB_TABLE_OLD) is being zeroed, a bounded piece per update. */
export const PHASE_ZEROING = 1;
/** The current table is the new one; the old one (SB_TABLE_OLD) is being moved into it. */
export const PHASE_MIGRATING = 2;
export const SB_CLOCK = 0x120 >> 2;
export const SB_TTL_ENTRIES = 0x124 >> 2;
export const SB_CLASSES = 0x200 >> 2;
export const CLASS_WORDS = 4;
export const CL_PARTIAL = 0;
export const CL_SLABS = 1;
export const CL_OBJECTS = 2;
export const SB_LOG = 0x800 >> 2;
export const LOG_OP = 0;
export const LOG_COUNT = 1;
export const LOG_FIRST = 4;
export const LOG_ENTRY_WORDS = 4;
/** Entries of the intent log (the rest of the super block). */
export const LOG_MAX = (4096 - 0x800 - LOG_FIRST * 4) / (LOG_ENTRY_WORDS * 4);
export const OP_NONE = 0;
export const OP_PREPARED = 1;
export const OP_COMMITTED = 2;

export const STATE_OPEN = 1;
/** Frozen by its owner's kexec finalize: consistent, waiting for the successor. */
export const STATE_HANDED_OVER = 2;
export const STATE_CLOSED = 3;

// Records.
export const REC_HEADER = 16;
export const R_META = 0;
export const R_VLEN = 1;
export const R_HASH = 2;
export const R_EXPIRY = 3;
export const KEY_MASK = 0xffff;
export const CLASS_SHIFT = 16;
export const CLASS_LARGE = 0xff;
export const FLAG_SHIFT = 24;
export const REC_ACCESSED = 1 << 24;
/** Largest key any store takes (the header holds 16 bits; keys are names, not data). */
export const KEY_LIMIT = 4096;
/** Largest value: a u32 length, kept clear of 4 GiB so a record's end is exact. */
export const VALUE_LIMIT = 2 ** 32 - 2 ** 20;

// Slabs.
export const SLAB_BYTES = 65536;
export const SLAB_PAGES = SLAB_BYTES / 4096;
/** Ref units per slab: a slab's ref is an object's ref with these low bits clear. */
export const SLAB_REF_MASK = SLAB_BYTES / 16 - 1;
export const SLAB_HEADER = 32;
export const SLAB_MAGIC = 0x51ab0000;
export const S_MAGIC = 0;
export const S_LIVE = 1;
export const S_FREE = 2;
export const S_BUMP = 3;
export const S_PREV = 4;
export const S_NEXT = 5;
export const S_CAPACITY = 6;
export const FREE_OBJECT = 0xfee1f4ee;

// Tables.
export const SLOT_EMPTY = 0;
export const SLOT_DELETED = 1;
export const SEGMENT_BYTES = 2 * 1024 * 1024;
export const SEGMENT_SLOTS = SEGMENT_BYTES / 8;
export const MIN_TABLE_LOG2 = 10;
/** Segment pfns in one directory page. */
export const MAX_TABLE_LOG2 = 18 + 10;

// Extents.
export const EXT_NEXT = 0;
export const EXT_HERE = 1;
export const EXT_FIRST = 4;
export const EXT_ENTRY_WORDS = 4;
export const EXT_PER_PAGE = (4096 / 4 - EXT_FIRST) / EXT_ENTRY_WORDS;
export const EXTENT_KERNEL = 1;
export const EXTENT_POOL = 2;
