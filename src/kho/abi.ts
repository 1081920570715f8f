/**
 * The KHO handover ABI: the only place its layout, magic numbers and property
 * names are written. This is a contract between a kernel and its successor:
 * ANY change to what is described here (key layout, node sizes, endianness,
 * property names or meanings) must bump KHO_FDT_COMPATIBLE, so that a
 * successor never misreads an older or newer handover; it boots cold instead.
 *
 * Root handover FDT (a real DTB; values are big-endian devicetree cells):
 *
 *   / {
 *       compatible = "livekexec,kho-v1";
 *       preserved-memory-map = <u64 phys of the radix tree root, 0 if empty>;
 *       preserved-memory-pages = <u64 phys of each tree page, ascending>;
 *       preserved-memory-csum = <u32 crc32c of the tree's pages>;
 *       <subtree-name> {
 *           fdt = <u64 phys of the subtree's own FDT, in preserved pages>;
 *       };
 *       ...
 *   };
 *
 * Preserved-memory map: a radix tree of bitmaps built in place in pages of the
 * device (little-endian), as the newest Linux KHO does. A block of 2^order
 * pages at `pfn` (pfn a multiple of 2^order) is the key
 *
 *   key = (1 << (52 - order)) | (pfn >> order)        (= pa >> (12 + order))
 *
 * so every order has its own marker bit and keys of all orders share one tree.
 * Keys are below 2^53 (a JS number holds them exactly). The key is split:
 *
 *   bit  52 51 | 50 ... 42 | 41 ... 33 | 32 ... 24 | 23 ... 15 | 14 ......... 0
 *      level 5 |  level 4  |  level 3  |  level 2  |  level 1  | bit in leaf
 *      (root)  |           |           |           |           |
 *
 *   inner node (levels 5..1) = one 4096-byte page: 512 x u64 LE physical
 *       addresses of children, 0 = no child (so page 0 is never a node).
 *       Only slots 0..3 of the root are in the key range.
 *   leaf = one 4096-byte page: a bitmap of 32768 bits, bit n at byte n >> 3,
 *       bit n & 7 (the same as LE u64 words); bit n set = the block whose key
 *       has n in bits 14..0 is preserved.
 *
 * The root is always a level-5 node; a path is exactly 5 inner nodes then a leaf.
 *
 * Mapping to Linux's KHO ABI (include/linux/kho/abi/kexec_handover.h), on purpose:
 *
 *   here                                 Linux
 *   -----------------------------------  -----------------------------------------
 *   root "livekexec,kho-v1"              "kho-v1" (bitmap chunks), "kho-v2" (this
 *                                        radix tree), "kho-v3"/"kho-v4" (blob-size,
 *                                        sub-compatibles). The vendor prefix says
 *                                        the layout is ours: no kernel reads it, and
 *                                        a tool that knows the kernel's must not
 *                                        take one for the other. Our v1 is the
 *                                        kernel's v2 tree plus the checks below.
 *   preserved-memory-map                 the same name and meaning
 *   preserved-memory-pages, -csum        none: a successor here checks the tree
 *                                        before it follows a pointer
 *   <subtree> { fdt }                    "fdt" (kho-v1), "preserved-data" (kho-v2 on)
 *   raw subtree: a descriptor FDT with   "preserved-data" + "blob-size" in the child
 *     preserved-data, blob-size,         node itself (kho-v3 on), no checksum, no
 *     blob-csum, compatible              version but the blob's own (see below)
 *   values: big-endian devicetree cells  native-endian u64, no #cells (little-endian
 *     (dtc and fdtget print them right)  on x86 and arm64): the same numbers on
 *                                        those machines, other bytes in the FDT
 *   tree nodes and leaves: little-endian native-endian: the same bytes on LE hosts
 *   key (1 << (52 - order)) | pfn>>order the same (KHO_ORDER_0_LOG2 = 64 - PAGE_SHIFT)
 *   handoff: setup_data KHO_FDT (10),    setup_data SETUP_KEXEC_KHO (10) holding
 *     KHO_SCRATCH (11), in the boot      the FDT and scratch addresses (x86), or
 *     block                              /chosen linux,kho-fdt / linux,kho-scratch
 *   restored marker: order + 1 per pfn   "KHOP" magic and order in struct page
 *     in a typed array
 *   page list: "KHOL" chunks with a      kho_vmalloc chunks: next + a zero-ended
 *     count, entries phys | order        array of phys, order in the descriptor
 */

import { PAGE_SHIFT, PAGE_SIZE } from '../memory/device.js';

/** Root compatible; bump on any layout change described in this file. */
export const KHO_FDT_COMPATIBLE = 'livekexec,kho-v1';
/** Root property: u64 physical address of the radix tree root (0 = nothing preserved). */
export const KHO_FDT_PROP_PRESERVED_MEMORY_MAP = 'preserved-memory-map';
/**
 * Root properties that let a successor check the tree before it follows a
 * single pointer: the addresses of all the tree's pages (u64 cells,
 * ascending) and a crc32c over them (for each page its u64 LE address then
 * its 4096 bytes). A tree damaged after finalize is refused instead of
 * trusted, and a damaged pointer is never followed into someone else's page.
 */
export const KHO_FDT_PROP_PRESERVED_MEMORY_PAGES = 'preserved-memory-pages';
export const KHO_FDT_PROP_PRESERVED_MEMORY_CSUM = 'preserved-memory-csum';
/** Subtree child property: u64 physical address of that subtree's FDT. */
export const KHO_FDT_PROP_SUBTREE_FDT = 'fdt';

/**
 * A raw subtree: a blob that is not an FDT (upstream's kho_add_subtree
 * carries plain C structs, e.g. kexec_metadata.h). Its bytes live in their
 * own preserved block (allocPreserve: 2^order pages, zero past the end), and
 * the subtree's FDT is a small descriptor, so a root stays the same
 * `livekexec,kho-v1` and every reader of it (older ones too) lists, checks
 * and carries a raw subtree like any other:
 *
 *   / {
 *       compatible = "vendor,thing-v2", "vendor,thing-v1";  // the blob's versions, newest first
 *       preserved-data = <u64 phys of the blob's first byte, a preserved block>;
 *       blob-size = <u64 length in bytes, 1 .. the block's size>;
 *       blob-csum = <u32 crc32c of those bytes>;
 *   };
 *
 * `preserved-data` and `blob-size` are upstream's names for the same facts
 * (there they sit in the root's child node, under root "kho-v3" and later).
 */
export const KHO_BLOB_PROP_DATA = 'preserved-data';
export const KHO_BLOB_PROP_SIZE = 'blob-size';
export const KHO_BLOB_PROP_CSUM = 'blob-csum';
/** Longest compatible string of a raw subtree, in bytes (upstream's handler compatibles are shorter). */
export const KHO_BLOB_COMPATIBLE_MAX = 127;
/** Most compatible strings a raw subtree carries. */
export const KHO_BLOB_COMPATIBLES_MAX = 16;

/**
 * Scratch areas travel in the boot block's setup_data chain as an array of
 * `{ u64 phys, u64 size }` (LE), one lowmem area, one global and one per node
 * (the setup_data type numbers belong to the boot block ABI). A slot of
 * zeros says there is no area of that kind (`kho_scratch=` forms without
 * lowmem or per-node areas); successors before it refused such a list.
 */
export const KHO_SCRATCH_ENTRY_SIZE = 16;
export const KHO_SCRATCH_OFF_PHYS = 0;
export const KHO_SCRATCH_OFF_SIZE = 8;
/** Names used for scratch areas in status output and on the command line (`kho_scratch=`). */
export const KHO_SCRATCH_KINDS = ['lowmem', 'global', 'pernode'] as const;

/** Marks a restored block (with its order) so that a second restore fails: ASCII "KHOP". */
export const KHO_PAGE_MAGIC = 0x4b484f50;

/** log2 of the number of order-0 keys: the marker bit of order 0 (64 - PAGE_SHIFT in Linux). */
export const KHO_ORDER_0_LOG2 = 52;
/** Bits in a key (the marker bit included). */
export const KHO_KEY_BITS = KHO_ORDER_0_LOG2 + 1;
/** Largest order the key layout can hold. */
export const KHO_MAX_ORDER = KHO_ORDER_0_LOG2;

/** Bytes per inner-node slot (a u64 physical address). */
export const KHO_TABLE_ENTRY_SIZE = 8;
/** log2 of the slots per inner node (4096 / 8 = 512). */
export const KHO_TABLE_SHIFT = 9;
export const KHO_TABLE_ENTRIES = 1 << KHO_TABLE_SHIFT;
/** log2 of the bits per leaf bitmap (4096 * 8 = 32768). */
export const KHO_BITMAP_SHIFT = PAGE_SHIFT + 3;
export const KHO_BITMAP_BITS = 1 << KHO_BITMAP_SHIFT;
/** Inner levels above the leaves: ceil((53 - 15) / 9) = 5. */
export const KHO_INNER_LEVELS = Math.ceil((KHO_KEY_BITS - KHO_BITMAP_SHIFT) / KHO_TABLE_SHIFT);
/** Nodes on a root-to-leaf path, the leaf included. */
export const KHO_TREE_DEPTH = KHO_INNER_LEVELS + 1;
/** Root slots that the key range can reach (keys < 2^53). */
export const KHO_ROOT_SLOTS_USED =
  2 ** (KHO_KEY_BITS - KHO_BITMAP_SHIFT - (KHO_INNER_LEVELS - 1) * KHO_TABLE_SHIFT);
/** Every node, inner or leaf, is exactly one page. */
export const KHO_NODE_SIZE = PAGE_SIZE;

/**
 * Most entries the preserved memory may take in the memory map handed over:
 * coalesced extents, rounded outwards past this. The successor recomputes
 * the same extents from the tree, so the number is part of the ABI.
 */
export const KHO_MAX_MAP_MARKS = 64;

/**
 * A preserved page list (the kernel's vmalloc preservation): a chain of
 * preserved order-0 chunk pages, each
 *   0x00 u32 magic "KHOL" | u32 count
 *   0x08 u64 next chunk phys (0 = last)
 *   0x10 u64 entries[count]: phys | order (order in bits 0..11; phys page-aligned)
 */
export const KHO_PAGE_LIST_MAGIC = 0x4c4f484b;
export const KHO_PAGE_LIST_OFF_MAGIC = 0x00;
export const KHO_PAGE_LIST_OFF_COUNT = 0x04;
export const KHO_PAGE_LIST_OFF_NEXT = 0x08;
export const KHO_PAGE_LIST_OFF_ENTRIES = 0x10;
export const KHO_PAGE_LIST_ENTRIES_PER_CHUNK = (PAGE_SIZE - KHO_PAGE_LIST_OFF_ENTRIES) / 8;

/**
 * The reserve_mem subtree: `compatible = "livekexec,reserve-mem-v1"` and one
 * child per region, named after it, with `start` and `size` (u64).
 */
export const KHO_RESERVE_MEM_SUBTREE = 'reserve_mem';
export const KHO_RESERVE_MEM_COMPATIBLE = 'livekexec,reserve-mem-v1';
