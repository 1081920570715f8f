/**
 * The pmpool's in-region layout: a contract between a kernel and its
 * successor. Any change here bumps PMPOOL_VERSION.
 *
 * All allocator state lives inside the pool's own first pages (v2's fix-up of
 * the CMA bitmap), so a successor re-attaches to it from `base` and `size`
 * alone. All fields are little-endian 32-bit words.
 *
 *   base                                                     base + size
 *   | header page | bitmap pages ...      | data pages ...              |
 *   |<------- metadata pages ------------>|
 *
 *   header page
 *   0x00 magic       "PMPL"                  \
 *   0x04 version     PMPOOL_VERSION           |
 *   0x08 page size   4096                     |
 *   0x0c flags       0 (reserved)             |
 *   0x10 base lo     physical base address    |  written once by format,
 *   0x14 base hi                              |  covered by header crc
 *   0x18 pages       pool size in pages       |
 *   0x1c bitmap off  bytes from base          |
 *   0x20 bitmap len  bytes, a multiple of 4   |
 *   0x24 meta pages  header + bitmap pages    |
 *   0x28 generation  chosen at format         |
 *   0x2c chunk words bitmap words per chunk   |
 *   0x30 chunks      bitmap chunks            |
 *   0x34 header crc  crc32c of 0x00..0x33    /
 *
 *   0x40 intent slot: the one in-flight operation (redo/undo record)
 *   0x40 op          INTENT_NONE / ALLOC / RELEASE: the commit word, stored last
 *   0x44 seq         sequence number, +1 per operation
 *   0x48 generation  must equal the header's (a record of another pool is garbage)
 *   0x4c first       first page, as an index into the pool
 *   0x50 count       pages
 *   0x54 check first the check word of the range's first chunk before the operation
 *   0x58 check last  the check word of the range's last chunk before the operation
 *   0x5c crc         crc32c of 0x40..0x5b with op already set; once retired,
 *                    the inverse of that crc taken with op = ALLOC, so no
 *                    damage to op revives a finished record
 *
 *   0x80 check words, one per bitmap chunk (at most CHECK_MAX_CHUNKS): the
 *        XOR over the chunk's words k of checkMix(k, word k). A chunk is
 *        chunk words consecutive bitmap words (a power of two, the least
 *        that fits every chunk's word in the header page). An operation
 *        updates the words of the chunks it touched, O(words changed); a
 *        successor recomputes them all, O(bitmap), before it trusts the
 *        bitmap. checkMix is a bijection of the word for each k, so damage
 *        inside one word is always seen; damage over several words escapes
 *        with odds of 2^-32. A chunk that fails is made all "in use" (its
 *        pages may be held), never guessed free.
 *
 *   bitmap: bit i (word i >> 5, bit i & 31) set = pool page i in use. The
 *   metadata pages are set, and so are the bits past the last page in the
 *   last word, so a scan never has to test the pool's end.
 *
 * Crash protocol (process level: a killed process, not a lost cache line).
 * Every store is one aligned 32-bit word. An operation writes the intent's
 * fields and crc while op is still NONE, then op (the commit), then the
 * bitmap words, then op = NONE and the crc made invalid (retire). Every prefix is recoverable: before
 * the commit nothing happened; after it, recovery undoes an alloc (clears its
 * bits: the caller never got the pages) or redoes a release (clears its bits:
 * the caller gave them up). Both are idempotent, so a kill during recovery is
 * recovered the same way. The check words of the chunks an operation touched
 * are stored after its bitmap words; recovery checks the untouched chunks as
 * they are, the range's edge chunks as they were before the operation (the
 * intent's two check words), and rewrites the check words of the range.
 */
import { PAGE_SIZE } from '../memory/device.js';

/** "PMPL" read as a little-endian word. */
export const PMPOOL_MAGIC = 0x4c504d50;
/** 2: bitmap check words, the intent's edge checks. */
export const PMPOOL_VERSION = 2;

/** Word indices (byte offset / 4) of the header fields. */
export const HDR_MAGIC = 0x00 >> 2;
export const HDR_VERSION = 0x04 >> 2;
export const HDR_PAGE_SIZE = 0x08 >> 2;
export const HDR_FLAGS = 0x0c >> 2;
export const HDR_BASE_LO = 0x10 >> 2;
export const HDR_BASE_HI = 0x14 >> 2;
export const HDR_PAGES = 0x18 >> 2;
export const HDR_BITMAP_OFFSET = 0x1c >> 2;
export const HDR_BITMAP_LENGTH = 0x20 >> 2;
export const HDR_META_PAGES = 0x24 >> 2;
export const HDR_GENERATION = 0x28 >> 2;
export const HDR_CHUNK_WORDS = 0x2c >> 2;
export const HDR_CHUNKS = 0x30 >> 2;
export const HDR_CRC = 0x34 >> 2;
/** Bytes of the header covered by its crc. */
export const HDR_CRC_BYTES = 0x34;

/** Word indices of the intent slot. */
export const INTENT_OP = 0x40 >> 2;
export const INTENT_SEQ = 0x44 >> 2;
export const INTENT_GENERATION = 0x48 >> 2;
export const INTENT_FIRST = 0x4c >> 2;
export const INTENT_COUNT = 0x50 >> 2;
export const INTENT_CHECK_FIRST = 0x54 >> 2;
export const INTENT_CHECK_LAST = 0x58 >> 2;
export const INTENT_CRC = 0x5c >> 2;
/** Words of the intent slot covered by its crc (op .. check last). */
export const INTENT_CRC_WORDS = 7;

/** Word index of the first check word. */
export const CHECK_WORDS = 0x80 >> 2;
/** Check words that fit in the header page. */
export const CHECK_MAX_CHUNKS = (PAGE_SIZE >> 2) - CHECK_WORDS;

export const INTENT_NONE = 0;
export const INTENT_ALLOC = 1;
export const INTENT_RELEASE = 2;

/** The bitmap starts on the page after the header. */
export const BITMAP_OFFSET = PAGE_SIZE;
/** Pool size limit: page indices are 32-bit words (16 TiB of 4 KiB pages). */
export const MAX_POOL_PAGES = 0xffffffff;

/** Bytes of bitmap for a pool of `pages` pages: whole 32-bit words. */
export function bitmapLength(pages: number): number {
  return Math.ceil(pages / 32) * 4;
}

/** Bitmap words per check chunk: the least power of two that needs at most CHECK_MAX_CHUNKS chunks. */
export function chunkWords(pages: number): number {
  const words = bitmapLength(pages) / 4;
  let n = 1;
  while (Math.ceil(words / n) > CHECK_MAX_CHUNKS) n *= 2;
  return n;
}

/** Check chunks of a pool of `pages` pages. */
export function checkChunks(pages: number): number {
  return Math.ceil(bitmapLength(pages) / 4 / chunkWords(pages));
}

/**
 * A check word's share for bitmap word `k` holding `value`: for each k a
 * bijection of the value (xor with a k-dependent constant, then murmur3's
 * finalizer), so any change to one word changes its chunk's check word.
 */
export function checkMix(k: number, value: number): number {
  let h = (value ^ Math.imul(k + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Header page plus bitmap pages. */
export function metadataPages(pages: number): number {
  return 1 + Math.ceil(bitmapLength(pages) / PAGE_SIZE);
}

/**
 * FDT handover (v2): one subtree per pool, `default_pmpool` for the default
 * one. `base`, `size` and `bitmap` are u64 physical addresses / bytes.
 */
export const FDT_NODE_DEFAULT = 'default_pmpool';
export const FDT_COMPATIBLE = 'pmpool';
export const FDT_PROP_COMPATIBLE = 'compatible';
export const FDT_PROP_BASE = 'base';
export const FDT_PROP_SIZE = 'size';
export const FDT_PROP_BITMAP = 'bitmap';
