/**
 * Where a device keeps its metadata, found the way a successor or a tool
 * finds it (the device header, the pending boot block's setup_data chain,
 * the KHO root FDT, the pools' headers, the PKRAM super block and walk),
 * with the offsets each subsystem's abi.ts names. Read on the undamaged
 * device, before any fault.
 */
import {
  BB_CMDLINE_LEN,
  BB_CMDLINE_OFF,
  BB_MEMMAP_NR,
  BB_MEMMAP_OFF,
  BB_SETUP_DATA_OFF,
  BB_TOTAL_SIZE,
  BOOT_BLOCK_HEADER_SIZE,
  MEMMAP_ENTRY_SIZE,
  SETUP,
  SETUP_DATA_HEADER_SIZE,
} from '../src/boot/abi.js';
import { parseRootFdt } from '../src/kho/root-fdt.js';
import { HDR_MAP, MAP_ENTRY_SIZE } from '../src/memory/abi.js';
import { type MemoryDevice, PAGE_SIZE } from '../src/memory/device.js';
import { readDeviceHeader } from '../src/memory/header.js';
import { E820 } from '../src/memory/memmap-types.js';
import { SB_OFF_CRC } from '../src/pkram/abi.js';
import { checkHandover } from '../src/pkram/handover.js';
import { decodePkramSetup } from '../src/pkram/kernel-early.js';
import { RunList } from '../src/pkram/runs.js';
import { isLinkPage, pageWords } from '../src/pkram/stream.js';
import { walkNode } from '../src/pkram/walk.js';
import {
  BITMAP_OFFSET,
  bitmapLength,
  CHECK_WORDS,
  HDR_CHUNKS,
  INTENT_OP,
} from '../src/pmpool/abi.js';
import { inspectPools } from '../src/pmpool/status.js';

/** Byte ranges of one piece of metadata. */
export interface Region {
  family: string;
  name: string;
  ranges: { at: number; size: number }[];
}

/** The corruption families, in the order the tally prints them. */
export const REGION_FAMILIES = [
  'header',
  'bootblock',
  'memmap',
  'kho-fdt',
  'kho-radix',
  'kho-subtree',
  'pmpool',
  'pkram',
  'luo',
] as const;

/**
 * Every metadata region of a device with a pending handover.
 * @param userSubtrees KHO subtrees holding the program's own data (not metadata).
 */
export function metadataRegions(device: MemoryDevice, userSubtrees: readonly string[]): Region[] {
  const out: Region[] = [];
  const add = (family: string, name: string, at: number, size: number) => {
    if (size > 0) out.push({ family, name, ranges: [{ at, size }] });
  };
  const header = readDeviceHeader(device);
  add('header', 'device header', 0, HDR_MAP);
  add('memmap', 'device memory map', HDR_MAP, header.memmap.length * MAP_ENTRY_SIZE);
  const bb = header.bootBlock;
  if (bb === 0) return out;
  const v = device.view(bb, BOOT_BLOCK_HEADER_SIZE);
  const total = v.getUint32(BB_TOTAL_SIZE, true);
  add('bootblock', 'boot block header', bb, BOOT_BLOCK_HEADER_SIZE);
  add(
    'bootblock',
    'boot block command line',
    bb + v.getUint32(BB_CMDLINE_OFF, true),
    v.getUint32(BB_CMDLINE_LEN, true),
  );
  add(
    'memmap',
    'boot block memory map',
    bb + v.getUint32(BB_MEMMAP_OFF, true),
    v.getUint32(BB_MEMMAP_NR, true) * MEMMAP_ENTRY_SIZE,
  );
  let rootFdt: Uint8Array | null = null;
  let pkramSetup: Uint8Array | null = null;
  const blockMap = readBlockMap(device, bb);
  for (
    let off = v.getUint32(BB_SETUP_DATA_OFF, true), n = 0;
    off !== 0 && off < total && n < 64;
    n++
  ) {
    const sv = device.view(bb + off, SETUP_DATA_HEADER_SIZE);
    const type = sv.getUint32(8, true);
    const len = sv.getUint32(12, true);
    const data = bb + off + SETUP_DATA_HEADER_SIZE;
    add('bootblock', `setup_data ${type} header`, bb + off, SETUP_DATA_HEADER_SIZE);
    const family =
      type === SETUP.KHO_FDT
        ? 'kho-fdt'
        : type === SETUP.LUO
          ? 'luo'
          : type === SETUP.PKRAM
            ? 'pkram'
            : 'bootblock';
    add(family, `setup_data ${type}`, data, len);
    if (type === SETUP.KHO_FDT) rootFdt = device.bytes(data, len).slice();
    if (type === SETUP.PKRAM) pkramSetup = device.bytes(data, len).slice();
    off = Number(sv.getBigUint64(0, true));
  }
  if (rootFdt) {
    const root = parseRootFdt(rootFdt, device.size);
    for (const p of root.memoryMapPages)
      add('kho-radix', `radix page 0x${p.toString(16)}`, p, PAGE_SIZE);
    for (const [name, phys] of root.subtrees) {
      if (userSubtrees.includes(name)) continue;
      add('kho-subtree', `subtree ${name}`, phys, device.view(phys, 8).getUint32(4, false));
    }
  }
  const pools = inspectPools(
    device,
    blockMap
      .filter((r) => r.type === E820.RESERVED_KERN)
      .map((r) => ({ base: r.addr, size: r.size })),
  );
  for (const p of pools) {
    if (!p.ok) continue;
    const chunks = device.view(p.base, PAGE_SIZE).getUint32(HDR_CHUNKS * 4, true);
    add('pmpool', 'pool header', p.base, INTENT_OP * 4);
    add('pmpool', 'pool intent log', p.base + INTENT_OP * 4, CHECK_WORDS * 4 - INTENT_OP * 4);
    add('pmpool', 'pool check words', p.base + CHECK_WORDS * 4, chunks * 4);
    add('pmpool', 'pool bitmap', p.base + BITMAP_OFFSET, bitmapLength(p.stats.totalPages));
  }
  if (pkramSetup) {
    const { superPfn } = decodePkramSetup(pkramSetup, device);
    add('pkram', 'pkram super block', superPfn * PAGE_SIZE, SB_OFF_CRC + 4);
    const check = checkHandover(device, superPfn);
    add('pkram', 'pkram region list', check.sb.regionPfn * PAGE_SIZE, check.sb.nrRegions * 16);
    for (const t of check.tablePhys) add('pkram', 'pkram page table', t, PAGE_SIZE);
    for (const node of check.nodes) {
      // The walk lists the node's pages but its folios together: the node and object pages
      // are named in its summary, link pages carry their magic, the rest hold the byte
      // streams' data (not metadata: damage there is the program's data, never checked).
      const runs = { meta: new RunList(), folios: new RunList() };
      const summary = walkNode(device, node.pfn, runs, { left: device.pages });
      const objects = new Set(summary.objects.map((o) => o.pfn));
      for (let r = 0; r < runs.meta.length; r++) {
        for (let b = 0; b < runs.meta.blocks[r]; b++) {
          const pfn = runs.meta.pfns[r] + b;
          const kind =
            pfn === node.pfn
              ? 'node'
              : objects.has(pfn)
                ? 'object'
                : isLinkPage(pageWords(device, pfn))
                  ? 'link'
                  : null;
          if (kind !== null) add('pkram', `pkram ${kind} page`, pfn * PAGE_SIZE, PAGE_SIZE);
        }
      }
    }
  }
  return out;
}

/** The memory map the pending boot block hands over. */
function readBlockMap(
  device: MemoryDevice,
  bb: number,
): { addr: number; size: number; type: number }[] {
  const v = device.view(bb, BOOT_BLOCK_HEADER_SIZE);
  const off = v.getUint32(BB_MEMMAP_OFF, true);
  const nr = v.getUint32(BB_MEMMAP_NR, true);
  const out = [];
  for (let i = 0; i < nr; i++) {
    const e = device.view(bb + off + i * MEMMAP_ENTRY_SIZE, MEMMAP_ENTRY_SIZE);
    out.push({
      addr: Number(e.getBigUint64(0, true)),
      size: Number(e.getBigUint64(8, true)),
      type: e.getUint32(16, true),
    });
  }
  return out;
}
