import { hex } from '../base/hex.js';
import type { PhysRange } from '../base/range.js';
import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import { HDR_MAGIC, HDR_PAGES, metadataPages, PMPOOL_MAGIC } from './abi.js';
import { CmaPool, type PoolStats } from './cma.js';
import { PmpoolError } from './errors.js';

/**
 * How a pool came up in this generation: `v2` re-attached through its KHO
 * FDT node, `v3` re-attached because the memory map kept its range,
 * `fresh` formatted on a range nobody kept, `reinitialised` formatted empty
 * although a predecessor's pool was expected (its base or size changed: the
 * reason says why), `rebuilt` re-attached although its metadata was damaged:
 * the header written anew if it had to be, every page of a damaged bitmap
 * chunk marked in use (the reason counts them), nothing that may be held freed.
 */
export type PmpoolOrigin = 'v2' | 'v3' | 'fresh' | 'reinitialised' | 'rebuilt';

/** One pool, as `kernel.pmpools.status()` and `livekexec pmpool status` show it. */
export interface PmpoolStatus {
  /** null for the default pool. */
  readonly name: string | null;
  readonly base: number;
  readonly size: number;
  readonly totalPages: number;
  readonly metadataPages: number;
  /** Pages in use, metadata included. */
  readonly usedPages: number;
  readonly freePages: number;
  readonly largestFreeRun: number;
  readonly origin: PmpoolOrigin;
  /** Why a pool was reinitialised (or what attach recovered); null otherwise. */
  readonly reason: string | null;
  /** The KHO subtree the pool is handed over in (v2), or null when its name is too long for one. */
  readonly fdtNode: string | null;
}

export interface PmpoolsStatus {
  readonly pools: PmpoolStatus[];
}

/** A pool found in place on a device, read-only (`livekexec pmpool status`). */
export type InspectedPool =
  | {
      readonly ok: true;
      readonly base: number;
      readonly size: number;
      readonly stats: PoolStats;
      /**
       * What a later attach recovers or repairs: operations a killed writer
       * left in flight, damaged bitmap chunks (their pages then marked in use).
       */
      readonly pending: readonly string[];
      /** Bitmap chunks that fail their check word. */
      readonly damagedChunks: number;
    }
  | { readonly ok: false; readonly base: number; readonly size: number; readonly error: string };

/**
 * Reads the pools in `ranges` (the device map's "reserved by kernel" ranges)
 * without changing a byte: each range may hold several pools back to back
 * (the map merges adjacent ones), so each header says how far its pool
 * goes. What is left of a range without a valid header is reported with
 * the reason. Work is bounded by the ranges' metadata pages.
 */
export function inspectPools(device: MemoryDevice, ranges: readonly PhysRange[]): InspectedPool[] {
  const out: InspectedPool[] = [];
  for (const r of ranges) {
    let at = r.base;
    const end = Math.min(r.base + r.size, device.size);
    while (at < end) {
      const found = inspectPoolAt(device, at, end - at);
      out.push(found);
      if (!found.ok) break;
      at += found.size;
    }
  }
  return out;
}

/** The pool whose header is at `base`, at most `room` bytes long. */
export function inspectPoolAt(device: MemoryDevice, base: number, room: number): InspectedPool {
  try {
    if (room < PAGE_SIZE) throw new PmpoolError('EINVAL', 'less than a page');
    const head = device.view(base, PAGE_SIZE);
    const magic = head.getUint32(HDR_MAGIC * 4, true);
    if (magic !== PMPOOL_MAGIC) {
      throw new PmpoolError('ENODEV', `no pool header (magic ${hex(magic)})`);
    }
    const pages = head.getUint32(HDR_PAGES * 4, true);
    if (pages <= metadataPages(pages) || pages * PAGE_SIZE > room) {
      throw new PmpoolError(
        'EFAULT',
        `header says ${pages} pages, the range holds ${Math.floor(room / PAGE_SIZE)}`,
      );
    }
    const pool = CmaPool.inspect(device, base, pages * PAGE_SIZE);
    return {
      ok: true,
      base,
      size: pool.size,
      stats: pool.stats(),
      pending: pool.attachReport?.problems ?? [],
      damagedChunks: pool.attachReport?.damagedChunks ?? 0,
    };
  } catch (err) {
    if (!(err instanceof PmpoolError)) throw err;
    return { ok: false, base, size: room, error: err.message };
  }
}

/** Human-readable lines for a kernel's pools. */
export function formatPmpoolsStatus(status: PmpoolsStatus): string[] {
  if (status.pools.length === 0) return ['no pools'];
  return status.pools.map(
    (p) =>
      `${p.name ?? 'default'}: ${rangeText(p.base, p.size)} ${p.totalPages} pages, ` +
      `${p.usedPages} used (${p.metadataPages} metadata), ${p.freePages} free, ` +
      `largest free run ${p.largestFreeRun}; ${p.origin}${p.reason ? ` (${p.reason})` : ''}`,
  );
}

/** Human-readable lines for pools read off a device. */
export function formatInspectedPools(pools: readonly InspectedPool[]): string[] {
  if (pools.length === 0) return ['no pools'];
  return pools.map((p) =>
    p.ok
      ? `${rangeText(p.base, p.size)} ${p.stats.totalPages} pages, ` +
        `${p.stats.usedPages} used (${p.stats.metadataPages} metadata), ${p.stats.freePages} free, ` +
        `largest free run ${p.stats.largestFreeRun}` +
        (p.pending.length > 0 ? `; pending: ${p.pending.join('; ')}` : '')
      : `${rangeText(p.base, p.size)} no pool: ${p.error}`,
  );
}

function rangeText(base: number, size: number): string {
  return `[mem ${hex(base, 16)}-${hex(base + size - 1, 16)}]`;
}
