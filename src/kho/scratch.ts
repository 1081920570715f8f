import { hex } from '../base/hex.js';
import type { PhysRange } from '../base/range.js';
import { getU64, setU64 } from '../base/u64.js';
import type { Memblock } from '../boot/memblock.js';
import type { KhoScratchValue } from '../boot/params.js';
import { PAGE_SIZE } from '../memory/device.js';
import {
  KHO_SCRATCH_ENTRY_SIZE,
  type KHO_SCRATCH_KINDS,
  KHO_SCRATCH_OFF_PHYS,
  KHO_SCRATCH_OFF_SIZE,
} from './abi.js';
import { KhoError } from './errors.js';

/** One scratch area: where a KHO successor may allocate before it has read the handover. */
export interface ScratchArea extends PhysRange {
  readonly kind: (typeof KHO_SCRATCH_KINDS)[number];
  /** The NUMA node of a pernode area. */
  readonly node?: number;
}

/**
 * Our default rule, after the kernel's: each area is 200% of the memory
 * memblock had reserved for the kernel itself (below 4 GiB for lowmem, in
 * the node for pernode), but never less than the floors below, which leave
 * room for the next boot block (64 KiB of slack plus the block) and its
 * handover data. `kho_scratch=N%` changes the percentage, and
 * `kho_scratch=lowmem,global,pernode` gives the sizes outright.
 */
export const KHO_SCRATCH_DEFAULT_PERCENT = 200;
export const KHO_SCRATCH_MIN_LOWMEM = 256 * 1024;
export const KHO_SCRATCH_MIN_GLOBAL = 1024 * 1024;
export const KHO_SCRATCH_MIN_PERNODE = 256 * 1024;
/** lowmem, global and one per node, for at most 64 nodes. */
export const KHO_SCRATCH_MAX_AREAS = 2 + 64;
/**
 * The top of scratch kept for kexec segments when the rest serves transient
 * allocations (mm/scratch-pages.ts): the lowmem floor, four times a default
 * segment (the boot block plus 64 KiB of room for handover data).
 */
export const KHO_SCRATCH_SEGMENT_WINDOW = KHO_SCRATCH_MIN_LOWMEM;
/** Scratch areas are aligned like CMA areas would be, scaled to small devices. */
export const KHO_SCRATCH_ALIGN = 64 * 1024;
const LOWMEM_LIMIT = 4 * 1024 ** 3;

/**
 * Reserves the scratch areas of a cold (or refused) boot in memblock: one
 * lowmem, one global and one per node, marked MEMBLOCK_KHO_SCRATCH.
 * @throws KhoError ENOMEM when memory is too small; nothing is left reserved then.
 */
export interface ScratchPlan {
  readonly lowmem: number;
  readonly global: number;
  /** One size per node. */
  readonly pernode: readonly number[];
}

/**
 * Sizes the scratch areas from what memblock holds for the kernel itself, so
 * call it before subsystems reserve their ranges (pools, reserve_mem=).
 */
export function planScratch(
  memblock: Memblock,
  nodes: readonly PhysRange[],
  param: KhoScratchValue | undefined,
): ScratchPlan {
  const reservedIn = (base: number, end: number) => {
    let n = 0;
    for (const r of memblock.reserved) {
      const s = Math.max(r.base, base);
      const e = Math.min(r.base + r.size, end);
      if (e > s) n += e - s;
    }
    return n;
  };
  const scale = (bytes: number, floor: number) => {
    const percent = param?.kind === 'scale' ? param.percent : KHO_SCRATCH_DEFAULT_PERCENT;
    return Math.max(roundUp((bytes * percent) / 100), param?.kind === 'scale' ? PAGE_SIZE : floor);
  };
  const sizes =
    param?.kind === 'sizes'
      ? { lowmem: param.lowmem, global: param.global, pernode: param.pernode }
      : {
          lowmem: scale(reservedIn(0, LOWMEM_LIMIT), KHO_SCRATCH_MIN_LOWMEM),
          global: scale(reservedIn(0, Number.MAX_SAFE_INTEGER), KHO_SCRATCH_MIN_GLOBAL),
          pernode: -1,
        };
  const pernode = nodes.map((n) =>
    sizes.pernode >= 0
      ? sizes.pernode
      : scale(reservedIn(n.base, n.base + n.size), KHO_SCRATCH_MIN_PERNODE),
  );
  return { lowmem: sizes.lowmem, global: sizes.global, pernode };
}

/**
 * Reserves the planned areas in memblock: one lowmem, one global and one per
 * node, marked MEMBLOCK_KHO_SCRATCH.
 * @throws KhoError ENOMEM when memory is too small; nothing is left reserved then.
 */
export function allocateScratch(
  memblock: Memblock,
  nodes: readonly PhysRange[],
  plan: ScratchPlan,
): ScratchArea[] {
  const { pernode } = plan;
  const areas: ScratchArea[] = [];
  const take = (
    kind: ScratchArea['kind'],
    size: number,
    start: number,
    end: number,
    node?: number,
  ) => {
    if (size <= 0) return;
    const bytes = roundUp(size);
    const base = memblock.tryAllocRange(bytes, KHO_SCRATCH_ALIGN, start, end);
    if (base === null) {
      for (const a of areas) memblock.free(a.base, a.size);
      const where = node === undefined ? '' : ` on node ${node}`;
      throw new KhoError('ENOMEM', `cannot reserve ${bytes} bytes of ${kind} scratch${where}`);
    }
    memblock.markScratch(base, bytes);
    areas.push(
      node === undefined ? { kind, base, size: bytes } : { kind, base, size: bytes, node },
    );
  };
  take('lowmem', plan.lowmem, 0, LOWMEM_LIMIT);
  take('global', plan.global, 0, Number.MAX_SAFE_INTEGER);
  nodes.forEach((n, i) => {
    take('pernode', pernode[i], n.base, n.base + n.size, i);
  });
  return areas;
}

/**
 * The KHO_SCRATCH setup_data payload: `{ u64 phys, u64 size }` per slot:
 * lowmem, global, then one per node. A kind that has no area (a
 * `kho_scratch=` form without lowmem or per-node areas) is a slot of zeros,
 * so every slot keeps its kind.
 */
export function encodeScratch(areas: readonly ScratchArea[]): Uint8Array {
  const slotOf = (a: ScratchArea): number =>
    a.kind === 'lowmem' ? 0 : a.kind === 'global' ? 1 : 2 + (a.node ?? 0);
  const slots = areas.reduce((n, a) => Math.max(n, slotOf(a) + 1), 0);
  const out = new Uint8Array(slots * KHO_SCRATCH_ENTRY_SIZE);
  const v = new DataView(out.buffer);
  for (const a of areas) {
    const at = slotOf(a) * KHO_SCRATCH_ENTRY_SIZE;
    setU64(v, at + KHO_SCRATCH_OFF_PHYS, a.base);
    setU64(v, at + KHO_SCRATCH_OFF_SIZE, a.size);
  }
  return out;
}

/**
 * Decodes and checks a KHO_SCRATCH payload: whole pages inside the device,
 * not overlapping.
 * @throws KhoError EFAULT with the reason.
 */
export function decodeScratch(data: Uint8Array, deviceSize: number): ScratchArea[] {
  if (data.length === 0 || data.length % KHO_SCRATCH_ENTRY_SIZE !== 0) {
    throw new KhoError(
      'EFAULT',
      `scratch list of ${data.length} bytes is not a list of {phys, size}`,
    );
  }
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const areas: ScratchArea[] = [];
  const n = data.length / KHO_SCRATCH_ENTRY_SIZE;
  if (n > KHO_SCRATCH_MAX_AREAS) {
    throw new KhoError('EFAULT', `scratch list of ${n} areas (at most ${KHO_SCRATCH_MAX_AREAS})`);
  }
  for (let i = 0; i < n; i++) {
    const base = getU64(v, i * KHO_SCRATCH_ENTRY_SIZE + KHO_SCRATCH_OFF_PHYS);
    const size = getU64(v, i * KHO_SCRATCH_ENTRY_SIZE + KHO_SCRATCH_OFF_SIZE);
    if (base === 0 && size === 0) continue; // a kind without an area
    if (
      size === 0 ||
      base % PAGE_SIZE !== 0 ||
      size % PAGE_SIZE !== 0 ||
      base + size > deviceSize
    ) {
      throw new KhoError(
        'EFAULT',
        `scratch area ${i} [${hex(base)}, +${hex(size)}) is not whole pages inside the device`,
      );
    }
    const kind = i === 0 ? 'lowmem' : i === 1 ? 'global' : 'pernode';
    areas.push(kind === 'pernode' ? { kind, base, size, node: i - 2 } : { kind, base, size });
  }
  if (areas.length === 0) throw new KhoError('EFAULT', 'the scratch list holds no area');
  const sorted = [...areas].sort((a, b) => a.base - b.base);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].base < sorted[i - 1].base + sorted[i - 1].size) {
      throw new KhoError('EFAULT', 'scratch areas overlap');
    }
  }
  return areas;
}

function roundUp(n: number): number {
  return Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;
}
