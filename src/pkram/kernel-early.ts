/**
 * PKRAM's part of early boot, before the page allocator exists: find the
 * predecessor's super block (KHO subtree `pkram`, or `pkram=<pfn>` as in the
 * RFC), check it against the boot block (generation and boot id) and its own
 * crc, then turn its extents of the handed-over map back into memory and
 * reserve exactly its preserved pages with no-init. A super block that is
 * refused is never used, and its PRESERVED extents stay out of the allocator;
 * so is one whose pages another owner (KHO's handover, a pool) already reserved.
 *
 * When PKRAM is on: in every generation except a crash kernel, when KHO is on
 * (handover through the KHO subtree) or `pkram=` is given (standalone; the
 * RFC's way). With `kho=off`, `pkram=0` turns PKRAM on with nothing to attach
 * (page 0 is the device header, never a super block).
 */

import { hex } from '../base/hex.js';
import type { PhysRange } from '../base/range.js';
import { getU64, setU64 } from '../base/u64.js';
import { SETUP } from '../boot/abi.js';
import type { SetupData } from '../boot/bootblock.js';
import type { EarlyContext } from '../boot/early-context.js';
import { MEMBLOCK_RSRV_NOINIT } from '../boot/memblock.js';
import { PKRAM, PKRAM_BAN } from '../boot/params.js';
import { FdtError } from '../fdt/errors.js';
import { readFdtAt, SMALL_SUBTREE_MAX } from '../kho/device-fdt.js';
import type { KhoEarly } from '../kho/early.js';
import type { KhoTreeCheck } from '../kho/radix.js';
import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import { E820 } from '../memory/memmap-types.js';
import {
  PKRAM_KHO_COMPATIBLE,
  PKRAM_KHO_PROP_SUPER,
  PKRAM_KHO_SUBTREE,
  PKRAM_MAX_MAP_MARKS,
  PKRAM_SETUP_MARK_BYTES,
  PKRAM_SETUP_MARK_PHYS,
  PKRAM_SETUP_MARK_SIZE,
  PKRAM_SETUP_OFF_MARKS,
  PKRAM_SETUP_OFF_NR,
  PKRAM_SETUP_OFF_SUPER,
} from './abi.js';
import { PkramError } from './errors.js';
import { preservedRuns } from './handover.js';

import type { PkramExpect } from './super.js';

/** Who wrote the boot block this boot consumed (null on a cold boot). */
export interface PkramPredecessor {
  /** The predecessor's generation (the device header's, before this boot). */
  generation: number;
  predecessorBootId: Uint8Array;
}

/** How the super block reached this boot. */
export type PkramVia = 'kho' | 'pkram=';

/** What PKRAM's early boot decided. */
export interface PkramEarly {
  readonly enabled: boolean;
  readonly disabledReason?: string;
  /** `pkram_ban=` ranges. */
  readonly bans: readonly PhysRange[];
  /** The predecessor's super block, accepted and reserved; Pkram.attach takes it over late. */
  readonly incoming: {
    superPfn: number;
    via: PkramVia;
    expect: PkramExpect;
    /** Exact preserved ranges reserved no-init. */
    reserved: readonly PhysRange[];
    /** The preserved-page table as checked here: attach takes it over without walking it again. */
    table: KhoTreeCheck;
  } | null;
  /** Why a super block that was found was refused (it stays reserved, unused). */
  readonly refused?: string;
}

/** The SETUP.PKRAM record: the super block and the map marks of one handover. */
export interface PkramSetupRecord {
  superPfn: number;
  marks: PhysRange[];
}

export function encodePkramSetup(rec: PkramSetupRecord): SetupData {
  if (rec.marks.length > PKRAM_MAX_MAP_MARKS) {
    throw new PkramError('EINVAL', `${rec.marks.length} marks, at most ${PKRAM_MAX_MAP_MARKS}`);
  }
  const data = new Uint8Array(PKRAM_SETUP_OFF_MARKS + rec.marks.length * PKRAM_SETUP_MARK_SIZE);
  const v = new DataView(data.buffer);
  setU64(v, PKRAM_SETUP_OFF_SUPER, rec.superPfn);
  v.setUint32(PKRAM_SETUP_OFF_NR, rec.marks.length, true);
  rec.marks.forEach((m, i) => {
    setU64(v, PKRAM_SETUP_OFF_MARKS + i * PKRAM_SETUP_MARK_SIZE + PKRAM_SETUP_MARK_PHYS, m.base);
    setU64(v, PKRAM_SETUP_OFF_MARKS + i * PKRAM_SETUP_MARK_SIZE + PKRAM_SETUP_MARK_BYTES, m.size);
  });
  return { type: SETUP.PKRAM, data };
}

/**
 * Decodes a SETUP.PKRAM record, every field bounds-checked against the device.
 * @throws PkramError EFAULT naming what is wrong.
 */
export function decodePkramSetup(data: Uint8Array, device: MemoryDevice): PkramSetupRecord {
  const bad = (what: string): PkramError =>
    new PkramError('EFAULT', `setup_data PKRAM: ${what}`, 'metadata');
  if (data.length < PKRAM_SETUP_OFF_MARKS) throw bad(`${data.length} bytes is too short`);
  const v = new DataView(data.buffer, data.byteOffset, data.length);
  const superPfn = getU64(v, PKRAM_SETUP_OFF_SUPER);
  const nr = v.getUint32(PKRAM_SETUP_OFF_NR, true);
  if (superPfn < 1 || superPfn >= device.pages) throw bad(`super block pfn ${superPfn}`);
  if (nr > PKRAM_MAX_MAP_MARKS) throw bad(`${nr} marks, at most ${PKRAM_MAX_MAP_MARKS}`);
  if (data.length < PKRAM_SETUP_OFF_MARKS + nr * PKRAM_SETUP_MARK_SIZE)
    throw bad(`${nr} marks do not fit in ${data.length} bytes`);
  const marks: PhysRange[] = [];
  for (let i = 0; i < nr; i++) {
    const phys = getU64(
      v,
      PKRAM_SETUP_OFF_MARKS + i * PKRAM_SETUP_MARK_SIZE + PKRAM_SETUP_MARK_PHYS,
    );
    const size = getU64(
      v,
      PKRAM_SETUP_OFF_MARKS + i * PKRAM_SETUP_MARK_SIZE + PKRAM_SETUP_MARK_BYTES,
    );
    if (phys % PAGE_SIZE !== 0 || size % PAGE_SIZE !== 0 || size === 0 || phys + size > device.size)
      throw bad(`mark ${i} [${phys}, +${size}) is not a range of pages of the device`);
    marks.push({ base: phys, size });
  }
  return { superPfn, marks };
}

/**
 * PKRAM's early boot (see the file comment). Never throws for what the
 * predecessor left: every refusal is logged and leaves its memory reserved.
 */
export function pkramEarly(
  ctx: EarlyContext,
  kho: KhoEarly,
  predecessor: PkramPredecessor | null,
): PkramEarly {
  const param = ctx.params.get(PKRAM);
  const bans = ctx.params.getAll(PKRAM_BAN).map((b) => ({ base: b.base, size: b.size }));
  const record = readRecord(ctx);
  if (!kho.enabled && param === undefined) {
    const why = `${kho.disabledReason ?? 'kho=off'} and no pkram=`;
    if (record) {
      keepReserved(ctx, record.marks);
      ctx.log(
        `PKRAM: off (${why}): the predecessor's super block at pfn ${record.superPfn} is not used; its memory stays reserved`,
      );
    }
    return { enabled: false, disabledReason: why, bans, incoming: null };
  }
  const found = findSuper(ctx, kho, param?.pfn);
  if (found === null) {
    if (record) {
      keepReserved(ctx, record.marks);
      ctx.log(
        `PKRAM: no super block reached this boot (${kho.enabled ? 'no KHO subtree pkram' : 'no pkram='}); the predecessor's at pfn ${record.superPfn} stays reserved`,
      );
    }
    return { enabled: true, bans, incoming: null };
  }
  const refuse = (why: string): PkramEarly => {
    if (record) keepReserved(ctx, record.marks);
    ctx.log(`PKRAM: refusing the super block at pfn ${found.superPfn} (${found.via}): ${why}`);
    return { enabled: true, bans, incoming: null, refused: why };
  };
  if (typeof found.error === 'string') return refuse(found.error);
  if (predecessor === null) return refuse('cold boot: no predecessor to check it against');
  const expect: PkramExpect = {
    generation: predecessor.generation,
    predecessorBootId: predecessor.predecessorBootId,
  };
  let extents: PhysRange[];
  let exact: PhysRange[];
  let table: KhoTreeCheck;
  try {
    // One walk of the table: the marks the predecessor put in the map, and the exact ranges.
    const { runs, tablePhys, table: checked } = preservedRuns(ctx.device, found.superPfn, expect);
    table = checked;
    extents = runs.extents(tablePhys, PKRAM_MAX_MAP_MARKS);
    exact = runs.extents(tablePhys, Math.max(1, Math.ceil(ctx.device.pages / 2)));
  } catch (err) {
    if (!(err instanceof PkramError)) throw err;
    return refuse(err.message);
  }
  // One owner per page: what KHO's handover or a pool already reserved is not PKRAM's to hand out.
  const taken = exact.find((r) => ctx.memblock.isReserved(r.base, r.size));
  if (taken !== undefined) {
    // Refused, but its pages may still be someone's: none of them goes to the allocator.
    for (const r of exact) ctx.memblock.reserve(r.base, r.size);
    return refuse(
      `its pages [mem ${hex(taken.base)}, +${hex(taken.size)}) are already claimed (a KHO preserved block, a pool or the kernel)`,
    );
  }
  // The recorded marks equal the extents, unless `pkram rm` freed a node offline: revive them too.
  const revive =
    record && record.superPfn === found.superPfn ? [...extents, ...record.marks] : extents;
  for (const e of revive) reviveRange(ctx, e.base, e.size);
  let pages = 0;
  for (const r of exact) {
    ctx.memblock.reserve(r.base, r.size, MEMBLOCK_RSRV_NOINIT);
    pages += r.size / PAGE_SIZE;
  }
  ctx.log(
    `PKRAM: super block at pfn ${found.superPfn} (${found.via}) accepted: ${pages} preserved pages in ${exact.length} ranges reserved`,
  );
  return {
    enabled: true,
    bans,
    incoming: { superPfn: found.superPfn, via: found.via, expect, reserved: exact, table },
  };
}

function readRecord(ctx: EarlyContext): PkramSetupRecord | null {
  const s = ctx.setupData.find((d) => d.type === SETUP.PKRAM);
  if (!s) return null;
  try {
    return decodePkramSetup(s.data, ctx.device);
  } catch (err) {
    if (!(err instanceof PkramError)) throw err;
    ctx.log(`PKRAM: ignoring ${err.message}`);
    return null;
  }
}

/** `pkram=` (non-zero) wins; else the KHO subtree. `error` when the subtree is unreadable. */
function findSuper(
  ctx: EarlyContext,
  kho: KhoEarly,
  paramPfn: number | undefined,
): { superPfn: number; via: PkramVia; error?: string } | null {
  if (paramPfn !== undefined && paramPfn !== 0) return { superPfn: paramPfn, via: 'pkram=' };
  const phys = kho.incoming?.root.subtrees.get(PKRAM_KHO_SUBTREE);
  if (phys === undefined) return null;
  try {
    const fdt = readFdtAt(ctx.device, phys, SMALL_SUBTREE_MAX);
    const compatible = fdt.getString(0, 'compatible');
    if (compatible !== PKRAM_KHO_COMPATIBLE) {
      return { superPfn: 0, via: 'kho', error: `subtree compatible is '${compatible}'` };
    }
    const sup = fdt.getU64(0, PKRAM_KHO_PROP_SUPER);
    if (typeof sup !== 'number' || sup % PAGE_SIZE !== 0 || sup >= ctx.device.size) {
      return { superPfn: 0, via: 'kho', error: `subtree super ${String(sup)} is not a page` };
    }
    return { superPfn: sup / PAGE_SIZE, via: 'kho' };
  } catch (err) {
    if (!(err instanceof FdtError)) throw err;
    return { superPfn: 0, via: 'kho', error: `subtree: ${err.message}` };
  }
}

/** Turns the PRESERVED parts of [phys, +size) into memory again. */
function reviveRange(ctx: EarlyContext, phys: number, size: number): void {
  const end = phys + size;
  const preserved = ctx.memoryMap
    .entries()
    .filter((r) => r.type === E820.PRESERVED && r.base < end && r.base + r.size > phys);
  if (preserved.length === 0) return;
  ctx.memoryMap.update(phys, size, E820.PRESERVED, E820.USABLE);
  for (const r of preserved) {
    const a = Math.max(phys, r.base);
    ctx.memblock.addMemory(a, Math.min(end, r.base + r.size) - a);
  }
}

/** A refused handover: its marks stay out of the allocator even where KHO made memory of them. */
function keepReserved(ctx: EarlyContext, marks: readonly PhysRange[]): void {
  for (const m of marks) ctx.memblock.reserve(m.base, m.size);
}
