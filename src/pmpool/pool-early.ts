import { hex } from '../base/hex.js';
import type { EarlyContext } from '../boot/early-context.js';
import { BootError } from '../boot/errors.js';
import { MEMBLOCK_RSRV_KERN } from '../boot/memblock.js';
import { PMPOOL, type PmpoolValue } from '../boot/params.js';
import type { KhoEarly } from '../kho/early.js';
import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import { E820, e820TypeName, type MemoryRange } from '../memory/memmap-types.js';
import { MAX_POOL_PAGES, metadataPages } from './abi.js';
import { CmaPool } from './cma.js';

/** One `pmpool=` range, validated and reserved in early boot. */
export interface PmpoolRange {
  /** null for the default pool (`pmpool=<base>,<size>`). */
  readonly name: string | null;
  readonly base: number;
  readonly size: number;
  /**
   * True when the memory map this boot came up on already marked the range
   * "reserved by kernel": a predecessor kept the pool there (v3).
   */
  readonly marked: boolean;
}

/** What the pool's early boot decided: the ranges, in command-line order. */
export interface PmpoolEarly {
  readonly pools: readonly PmpoolRange[];
}

const PARAM = 'pmpool';

/**
 * The pool's part of early boot (before the page allocator exists). Each
 * `pmpool=` range must be whole pages inside the device, large enough for the
 * pool's metadata and one data page, and lie either wholly in free usable
 * memory or exactly on a range the handed-over map marks "reserved by
 * kernel" (the pool a predecessor kept, v3). Anything else (reserved,
 * preserved, KHO scratch, another pool, memory already reserved) is refused.
 * All ranges are checked before any is taken, so a refusal changes nothing.
 * Each accepted range is reserved in memblock (the page allocator never sees
 * it) and marked "reserved by kernel" in this boot's memory map, so every
 * successor, even one without pmpool, leaves it alone.
 * @throws BootError naming `pmpool`: EINVAL unaligned, too small or too
 *   large, or the default pool given twice; ERANGE outside the device, over
 *   memory it may not use, or overlapping another pool.
 */
export function pmpoolEarly(ctx: EarlyContext, kho: KhoEarly): PmpoolEarly {
  const wanted = ctx.params.getAll(PMPOOL);
  if (wanted.length === 0) return { pools: [] };
  checkShapes(wanted, ctx.device.size);
  const marked = ctx.memoryMap.entries().filter((r) => r.type === E820.RESERVED_KERN);
  const pools: PmpoolRange[] = [];
  for (const w of wanted) {
    const isMarked = isKeptPool(ctx.device, w, marked, wanted);
    if (!isMarked) checkFree(ctx, kho, w);
    pools.push({ name: w.name ?? null, base: w.base, size: w.size, marked: isMarked });
  }
  for (const p of pools) {
    ctx.memblock.reserve(p.base, p.size, MEMBLOCK_RSRV_KERN);
    ctx.memoryMap.add(p.base, p.size, E820.RESERVED_KERN);
    ctx.log(
      `pmpool: ${label(p.name)} [mem ${hex(p.base)}-${hex(p.base + p.size - 1)}] reserved` +
        (p.marked ? ' (kept by the predecessor)' : ''),
    );
  }
  return { pools };
}

/** The pool's name as logs and errors print it. */
export function label(name: string | null): string {
  return name === null ? 'default pool' : `pool '${name}'`;
}

function checkShapes(wanted: readonly PmpoolValue[], deviceSize: number): void {
  let defaults = 0;
  for (const w of wanted) {
    const what = `${label(w.name ?? null)} [${hex(w.base)}, +${hex(w.size)})`;
    if (w.name === undefined && ++defaults > 1) {
      throw new BootError('EINVAL', 'the default pool is given twice', PARAM);
    }
    if (w.base % PAGE_SIZE !== 0 || w.size % PAGE_SIZE !== 0) {
      throw new BootError('EINVAL', `${what} is not page aligned`, PARAM);
    }
    if (w.base + w.size > deviceSize) {
      throw new BootError(
        'ERANGE',
        `${what} ends outside the ${hex(deviceSize)}-byte device`,
        PARAM,
      );
    }
    const pages = w.size / PAGE_SIZE;
    if (pages > MAX_POOL_PAGES) {
      throw new BootError('EINVAL', `${what} exceeds ${MAX_POOL_PAGES} pages`, PARAM);
    }
    if (pages <= metadataPages(pages)) {
      throw new BootError(
        'EINVAL',
        `${what} cannot hold its ${metadataPages(pages)} metadata pages and one data page`,
        PARAM,
      );
    }
  }
  const sorted = [...wanted].sort((a, b) => a.base - b.base);
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1];
    const b = sorted[i];
    if (b.base < a.base + a.size) {
      throw new BootError(
        'ERANGE',
        `${label(b.name ?? null)} at ${hex(b.base)} overlaps ${label(a.name ?? null)} at ${hex(a.base)}`,
        PARAM,
      );
    }
  }
}

/**
 * True when `w` is exactly a pool the handed-over map kept: wholly inside
 * "reserved by kernel" ranges, and either each edge is an edge of those
 * ranges or of another configured pool (the map merges adjacent pools into
 * one range), or the pool header in place records this very base and size.
 * A range that only partly matches is not a pool we know: its pages may be
 * lent out, so it is refused rather than reformatted.
 */
function isKeptPool(
  device: MemoryDevice,
  w: PmpoolValue,
  marked: readonly MemoryRange[],
  wanted: readonly PmpoolValue[],
): boolean {
  const end = w.base + w.size;
  let at = w.base;
  for (const r of marked) {
    if (r.base + r.size <= at) continue;
    if (r.base > at) return false;
    at = r.base + r.size;
    if (at >= end) break;
  }
  if (at < end) return false;
  const edges = new Set<number>();
  for (const r of marked) edges.add(r.base).add(r.base + r.size);
  for (const o of wanted) if (o !== w) edges.add(o.base).add(o.base + o.size);
  return (edges.has(w.base) && edges.has(end)) || headerRecords(device, w.base, w.size);
}

/** Whether a valid pool header at `base` was made for exactly this base and size (read-only). */
function headerRecords(device: MemoryDevice, base: number, size: number): boolean {
  return CmaPool.headerFits(device, base, size);
}

/** @throws BootError ERANGE unless every byte of `w` is free usable memory. */
function checkFree(ctx: EarlyContext, kho: KhoEarly, w: PmpoolValue): void {
  const end = w.base + w.size;
  const what = `${label(w.name ?? null)} [${hex(w.base)}, +${hex(w.size)})`;
  for (const a of kho.scratch) {
    if (w.base < a.base + a.size && a.base < end) {
      throw new BootError(
        'ERANGE',
        `${what} overlaps the KHO ${a.kind} scratch area at ${hex(a.base)}`,
        PARAM,
      );
    }
  }
  let at = w.base;
  for (const r of ctx.memoryMap.entries()) {
    if (r.base + r.size <= at) continue;
    if (r.base >= end) break;
    if (r.base > at) throw notMemory(what, at, 'a hole in the memory map');
    if (r.type === E820.RESERVED_KERN) {
      throw notMemory(
        what,
        Math.max(r.base, at),
        'a range a predecessor kept (reserved by kernel) with another base or size',
      );
    }
    if (r.type !== E820.USABLE) {
      throw notMemory(what, Math.max(r.base, at), `${e820TypeName(r.type)} memory`);
    }
    at = r.base + r.size;
  }
  if (at < end) throw notMemory(what, at, 'a hole in the memory map');
  for (const f of ctx.memblock.freeRanges()) {
    if (f.base <= w.base && end <= f.base + f.size) return;
  }
  throw new BootError(
    'ERANGE',
    `${what} overlaps memory already reserved (preserved blocks, reserve_mem, the kernel)`,
    PARAM,
  );
}

function notMemory(what: string, at: number, why: string): BootError {
  return new BootError('ERANGE', `${what} overlaps ${why} at ${hex(at)}`, PARAM);
}
