/**
 * What a predecessor preserves before the fault: some of everything a
 * service can hand over (KHO folios, a page range, an FDT subtree and a raw
 * blob, PKRAM nodes of folios and bytes, pool allocations, a reserve_mem
 * region, a memfd in a LUO session), each filled with a seeded pattern. The
 * manifest records where and with which seed, in plain JSON, so a successor
 * in another process can check every byte.
 */
import { FdtWriter } from '../src/fdt/write.js';
import type { Kernel } from '../src/kernel/kernel.js';
import { memfdWrite } from '../src/luo/memfd.js';
import { PAGE_SIZE } from '../src/memory/device.js';
import type { Folio } from '../src/mm/folio.js';
import { fillPattern, hash32, Rng } from './rng.js';

/** The device every scenario runs on, and its command line. */
export const DEVICE_SIZE = 16 * 1024 * 1024;
export const POOL_BASE = 10 * 1024 * 1024;
export const POOL_SIZE = 2 * 1024 * 1024;
export const RESERVE_MEM_NAME = 'torture';
export const CMDLINE = `pmpool=${POOL_BASE},${POOL_SIZE} reserve_mem=64K:4K:${RESERVE_MEM_NAME}`;
export const USER_SUBTREE = 'torture';
export const BLOB_SUBTREE = 'torture-blob';
export const BLOB_COMPATIBLE = 'livekexec,torture-blob-v1';
export const LUO_SESSION = 'torture';
export const LUO_TOKEN = 7;

export interface PreservedFolio {
  phys: number;
  order: number;
  seed: number;
}

export interface PkramObjectPlan {
  /** pfn: where the folio was when saved (PKRAM does not move folios saved before a load). */
  folios: { index: number; order: number; seed: number; pfn: number }[];
  bytes: { length: number; seed: number };
}

export interface Manifest {
  cmdline: string;
  generation: number;
  khoFolios: PreservedFolio[];
  khoPages: { phys: number; count: number; seed: number }[];
  subtree: { magic: number; label: string } | null;
  blob: { length: number; seed: number } | null;
  pkram: { name: string; objects: PkramObjectPlan[] }[];
  pool: { pfn: number; count: number; seed: number }[];
  reserveMem: { phys: number; size: number; seed: number } | null;
  luo: { fd: number; length: number; seed: number } | null;
}

export interface ScenarioOptions {
  /** PKRAM nodes to save (default 1..3 at random). */
  pkramNodes?: number;
  /** Make a LUO session with a memfd (default true). */
  luo?: boolean;
  /** Allocate from the pool (default true). */
  pool?: boolean;
}

/** The KHO subtrees a scenario adds itself (user data, not livekexec's metadata). */
export const USER_SUBTREES: readonly string[] = [USER_SUBTREE, BLOB_SUBTREE];

/**
 * Preserves a scenario's worth of state in `kernel` (booted with CMDLINE).
 * Deterministic for a seed on a fresh device. Nothing is loaded or frozen.
 */
export function populate(kernel: Kernel, seed: number, options: ScenarioOptions = {}): Manifest {
  const rng = new Rng(seed);
  const s = () => rng.u32();
  const alloc = (order: number) => {
    const f = kernel.allocPages(order);
    if (f === null) throw new Error(`scenario: no free block of order ${order}`);
    return f;
  };
  const m = emptyManifest(kernel.generation);
  for (let i = rng.int(2, 6); i > 0; i--) {
    const f = alloc(rng.int(0, 3));
    const folioSeed = s();
    fillPattern(kernel.folioBytes(f), folioSeed);
    kernel.kho.preserveFolio(f);
    m.khoFolios.push({ phys: f.pfn * PAGE_SIZE, order: f.order, seed: folioSeed });
  }
  const run = alloc(2);
  const count = rng.int(1, 4);
  const runSeed = s();
  fillPattern(kernel.device.bytes(run.pfn * PAGE_SIZE, count * PAGE_SIZE), runSeed);
  kernel.kho.preservePages(run.pfn, count);
  m.khoPages.push({ phys: run.pfn * PAGE_SIZE, count, seed: runSeed });

  m.subtree = { magic: s(), label: `torture-${seed.toString(16)}` };
  const w = new FdtWriter();
  w.finishReservations();
  w.beginNode('');
  w.propertyU32('magic', m.subtree.magic);
  w.propertyString('label', m.subtree.label);
  w.endNode();
  kernel.kho.addSubtree(USER_SUBTREE, w.finish());
  m.blob = { length: rng.int(1, 3000), seed: s() };
  const blob = new Uint8Array(m.blob.length);
  fillPattern(blob, m.blob.seed);
  kernel.kho.addSubtree(BLOB_SUBTREE, blob, { compatible: BLOB_COMPATIBLE });

  for (let n = options.pkramNodes ?? rng.int(1, 3); n > 0; n--) {
    m.pkram.push(savePkramNode(kernel, `torture-${m.pkram.length}-${seed % 1000}`, rng));
  }

  const pool = kernel.pmpool;
  if (pool && options.pool !== false) {
    for (let i = rng.int(1, 5); i > 0; i--) {
      const r = pool.alloc(rng.int(1, 48), 2 ** rng.int(0, 2));
      if (r === null) break;
      const poolSeed = s();
      fillPattern(kernel.device.bytes(r.pfn * PAGE_SIZE, r.count * PAGE_SIZE), poolSeed);
      m.pool.push({ pfn: r.pfn, count: r.count, seed: poolSeed });
    }
  }
  const region = kernel.reserveMem(RESERVE_MEM_NAME);
  m.reserveMem = { phys: region.phys, size: region.size, seed: s() };
  fillPattern(region.bytes, m.reserveMem.seed);

  if (options.luo !== false) {
    const length = rng.int(1, 5000);
    const luoSeed = s();
    const fd = kernel.liveupdate.createSession(LUO_SESSION).preserveMemfd('torture', LUO_TOKEN);
    const data = new Uint8Array(length);
    fillPattern(data, luoSeed);
    memfdWrite(fd, data, 0);
    m.luo = { fd, length, seed: luoSeed };
  }
  return m;
}

/** A manifest of nothing preserved yet, for a generation booted with CMDLINE. */
export function emptyManifest(generation = 0): Manifest {
  return {
    cmdline: CMDLINE,
    generation,
    khoFolios: [],
    khoPages: [],
    subtree: null,
    blob: null,
    pkram: [],
    pool: [],
    reserveMem: null,
    luo: null,
  };
}

/**
 * Saves one PKRAM node of 1..2 objects, each with folios and a byte stream.
 * The folios stay the caller's (PKRAM does not free them): `folios` gets them.
 */
export function savePkramNode(
  kernel: Kernel,
  name: string,
  rng: Rng,
  folios: Folio[] = [],
): { name: string; objects: PkramObjectPlan[] } {
  const node = kernel.pkram.prepareSave(name);
  const objects: PkramObjectPlan[] = [];
  for (let o = rng.int(1, 2); o > 0; o--) {
    const obj = node.prepareSaveObj();
    const plan: PkramObjectPlan = {
      folios: [],
      bytes: { length: rng.int(0, 9000), seed: rng.u32() },
    };
    for (let i = rng.int(1, 12); i > 0; i--) {
      const order = rng.int(0, 2);
      const f = kernel.allocPages(order);
      if (f === null) break;
      const folioSeed = rng.u32();
      fillPattern(kernel.folioBytes(f), folioSeed);
      const index = plan.folios.length * 3 + rng.int(0, 2);
      obj.saveFolio(f, index);
      folios.push(f);
      plan.folios.push({ index, order, seed: folioSeed, pfn: f.pfn });
    }
    const bytes = new Uint8Array(plan.bytes.length);
    fillPattern(bytes, plan.bytes.seed);
    obj.write(bytes);
    obj.finishSaveObj();
    objects.push(plan);
  }
  node.finishSave();
  return { name, objects };
}

/** A scenario seed for case `index` of a run: a new scenario every 16 cases. */
export function scenarioSeed(runSeed: number, index: number): number {
  return hash32(runSeed, 'scenario', Math.floor(index / 16));
}
