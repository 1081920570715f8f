import { show } from '../base/errors.js';
import { hexDigits } from '../base/hex.js';
import type { EarlyContext } from '../boot/early-context.js';
import { RESERVE_MEM } from '../boot/params.js';
import { FdtError } from '../fdt/errors.js';
import { FdtWriter } from '../fdt/write.js';
import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import { KHO_RESERVE_MEM_COMPATIBLE, KHO_RESERVE_MEM_SUBTREE } from './abi.js';
import { readFdtAt, SMALL_SUBTREE_MAX } from './device-fdt.js';
import type { KhoEarly } from './early.js';
import { KhoError } from './errors.js';
import type { Kho } from './kho.js';

/** One `reserve_mem=size:align:name` region. */
export interface ReserveMemRegion {
  readonly name: string;
  readonly base: number;
  readonly size: number;
  /** True when it came back from the predecessor at the same address, with its contents. */
  readonly kept: boolean;
}

/**
 * reserve_mem's early part: each requested region is found again in the
 * predecessor's `reserve_mem` subtree (same name and size: same address,
 * already reserved as preserved memory) or else allocated top-down in
 * memblock, as the kernel's reserve_mem does.
 */
export function reserveMemEarly(ctx: EarlyContext, kho: KhoEarly): ReserveMemRegion[] {
  const wanted = ctx.params.getAll(RESERVE_MEM);
  if (wanted.length === 0) return [];
  const previous = kho.incoming
    ? readPrevious(ctx, kho)
    : new Map<string, { base: number; size: number }>();
  const kept = keptRegions(ctx, kho, wanted, previous);
  const out: ReserveMemRegion[] = [];
  for (const w of wanted) {
    const size = Math.ceil(w.size / PAGE_SIZE) * PAGE_SIZE;
    const align = Math.max(w.align, PAGE_SIZE);
    const prev = kept.get(w.name);
    if (prev) {
      out.push({ name: w.name, base: prev.base, size, kept: true });
      continue;
    }
    const phys = ctx.memblock.tryAlloc(size, align);
    if (phys === null) {
      ctx.log(`reserve_mem: cannot reserve ${size} bytes for '${w.name}'`);
      continue;
    }
    out.push({ name: w.name, base: phys, size, kept: false });
  }
  return out;
}

/**
 * The wanted regions the predecessor's subtree names with the same size and
 * a fitting alignment that are exactly a run of preserved blocks inside the
 * device, no two sharing a block: what restorePages will accept later. The
 * subtree lies outside every checksum, so a damaged one must not make the
 * boot fail halfway; its regions are allocated afresh instead. One pass over
 * the received blocks, and only when a region may be kept.
 */
function keptRegions(
  ctx: EarlyContext,
  kho: KhoEarly,
  wanted: readonly { size: number; align: number; name: string }[],
  previous: ReadonlyMap<string, { base: number; size: number }>,
): Map<string, { base: number; size: number }> {
  const candidates: { name: string; pfn: number; end: number; blocks: Map<number, number> }[] = [];
  for (const w of wanted) {
    const size = Math.ceil(w.size / PAGE_SIZE) * PAGE_SIZE;
    const prev = previous.get(w.name);
    if (
      prev &&
      prev.size === size &&
      Number.isSafeInteger(prev.base) &&
      prev.base % Math.max(w.align, PAGE_SIZE) === 0 &&
      prev.base + size <= ctx.device.size
    ) {
      const pfn = prev.base / PAGE_SIZE;
      candidates.push({ name: w.name, pfn, end: pfn + size / PAGE_SIZE, blocks: new Map() });
    }
  }
  const out = new Map<string, { base: number; size: number }>();
  const incoming = kho.incoming;
  if (candidates.length === 0 || !incoming) return out;
  const bad = new Set<string>();
  for (let i = 0; i < incoming.runs; i++) {
    const order = incoming.runOrder[i];
    const first = incoming.runPfn[i];
    const end = first + incoming.runBlocks[i] * 2 ** order;
    for (const c of candidates) {
      if (end <= c.pfn || first >= c.end) continue;
      // Only runs that touch a candidate are looked at block by block.
      for (let pfn = first; pfn < end; pfn += 2 ** order) {
        if (pfn + 2 ** order <= c.pfn || pfn >= c.end) continue;
        if (pfn < c.pfn || pfn + 2 ** order > c.end) bad.add(c.name);
        // A later block at the same pfn wins, as in KhoIncomingState's markers.
        else c.blocks.set(pfn, order);
      }
    }
  }
  const taken: { pfn: number; end: number }[] = [];
  for (const c of candidates) {
    let p = c.pfn;
    while (p < c.end && c.blocks.has(p)) p += 2 ** (c.blocks.get(p) as number);
    const overlaps = taken.some((t) => t.pfn < c.end && c.pfn < t.end);
    if (bad.has(c.name) || p !== c.end || overlaps) {
      ctx.log(`reserve_mem: '${c.name}' from the predecessor is not its preserved pages: not kept`);
      continue;
    }
    taken.push(c);
    out.set(c.name, { base: c.pfn * PAGE_SIZE, size: (c.end - c.pfn) * PAGE_SIZE });
  }
  return out;
}

/** The predecessor's regions, read (not claimed) from its subtree; a bad subtree is logged and ignored. */
function readPrevious(
  ctx: EarlyContext,
  kho: KhoEarly,
): Map<string, { base: number; size: number }> {
  const out = new Map<string, { base: number; size: number }>();
  const phys = kho.incoming?.root.subtrees.get(KHO_RESERVE_MEM_SUBTREE);
  if (phys === undefined) return out;
  try {
    const fdt = readFdtAt(ctx.device, phys, SMALL_SUBTREE_MAX);
    for (const off of fdt.subnodes(0)) {
      const name = fdt.getString(off, 'label');
      const start = fdt.getU64(off, 'start');
      const size = fdt.getU64(off, 'size');
      if (typeof start === 'number' && typeof size === 'number')
        out.set(name, { base: start, size });
    }
  } catch (err) {
    if (!(err instanceof FdtError || err instanceof KhoError)) throw err;
    ctx.log(`reserve_mem: ignoring the predecessor's regions: ${err.message}`);
  }
  return out;
}

/**
 * reserve_mem's late part: the regions are preserved through KHO so they
 * come back at the same address after any number of kexecs.
 */
export class ReserveMem {
  readonly #regions: Map<string, ReserveMemRegion>;
  readonly #device: MemoryDevice;

  constructor(device: MemoryDevice, kho: Kho, regions: readonly ReserveMemRegion[]) {
    this.#device = device;
    this.#regions = new Map(regions.map((r) => [r.name, r]));
    if (!kho.enabled || regions.length === 0) return;
    if (kho.isKhoBoot() && kho.incoming?.subtreeNames().includes(KHO_RESERVE_MEM_SUBTREE)) {
      try {
        kho.retrieveSubtree(KHO_RESERVE_MEM_SUBTREE);
      } catch (err) {
        // Damaged: reserveMemEarly already ignored it (and logged why); the boot goes on.
        if (!(err instanceof KhoError)) throw err;
      }
    }
    for (const r of regions) {
      if (r.kept) kho.restorePages(r.base, r.size / PAGE_SIZE);
      kho.preservePages(r.base / PAGE_SIZE, r.size / PAGE_SIZE);
    }
    kho.registerNotifier({
      finalize: () => {
        if (kho.subtreeNames().includes(KHO_RESERVE_MEM_SUBTREE))
          kho.removeSubtree(KHO_RESERVE_MEM_SUBTREE);
        kho.addSubtree(KHO_RESERVE_MEM_SUBTREE, this.#subtree());
      },
    });
  }

  /**
   * The region `name`: its address, size and a zero-copy view of its bytes.
   * @throws KhoError ENOENT when no such reserve_mem= region exists.
   */
  get(name: string): { base: number; size: number; bytes: Uint8Array; kept: boolean } {
    const r = this.#regions.get(name);
    if (!r) throw new KhoError('ENOENT', `no reserve_mem region ${show(name)}`);
    return { base: r.base, size: r.size, kept: r.kept, bytes: this.#device.bytes(r.base, r.size) };
  }

  list(): ReserveMemRegion[] {
    return [...this.#regions.values()];
  }

  #subtree(): Uint8Array {
    const w = new FdtWriter();
    w.finishReservations();
    w.beginNode('');
    w.propertyString('compatible', KHO_RESERVE_MEM_COMPATIBLE);
    for (const r of this.#regions.values()) {
      w.beginNode(`region@${hexDigits(r.base)}`);
      w.propertyString('label', r.name);
      w.propertyU64('start', r.base);
      w.propertyU64('size', r.size);
      w.endNode();
    }
    w.endNode();
    return w.finish();
  }
}
