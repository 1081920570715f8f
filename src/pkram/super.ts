/** Encoding and checking the super block page (layout in abi.ts). */

import { hex } from '../base/hex.js';
import { getU64, setU64 } from '../base/u64.js';
import { crc32c } from '../memory/crc32c.js';
import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import {
  PKRAM_BOOT_ID_SIZE,
  PKRAM_MAGIC,
  PKRAM_MAGIC_CONSUMED,
  PKRAM_REGIONS_MAX,
  PKRAM_VERSION,
  SB_CRC_LEN,
  SB_OFF_BOOT_ID,
  SB_OFF_CRC,
  SB_OFF_GENERATION,
  SB_OFF_MAGIC,
  SB_OFF_NODE_PFN,
  SB_OFF_NR_NODES,
  SB_OFF_NR_REGIONS,
  SB_OFF_REGION_CRC,
  SB_OFF_REGION_PFN,
  SB_OFF_TABLE_CRC,
  SB_OFF_TABLE_ROOT,
  SB_OFF_VERSION,
} from './abi.js';
import { PkramError } from './errors.js';

export interface SuperBlock {
  generation: number;
  bootId: Uint8Array;
  nodePfn: number;
  regionPfn: number;
  nrRegions: number;
  nrNodes: number;
  tableRoot: number;
  /** crc32c of the table's pages (tree-csum.ts). */
  tableCrc: number;
  /** crc32c of the region list's used entries. */
  regionCrc: number;
}

/** What a successor expects of its predecessor's super block. */
export interface PkramExpect {
  generation: number;
  predecessorBootId: Uint8Array;
}

/** Writes a complete super block with its crc. */
export function writeSuper(device: MemoryDevice, pfn: number, sb: SuperBlock): void {
  const bytes = device.bytes(pfn * PAGE_SIZE, PAGE_SIZE);
  bytes.fill(0);
  const view = device.view(pfn * PAGE_SIZE, PAGE_SIZE);
  view.setUint32(SB_OFF_MAGIC, PKRAM_MAGIC, true);
  view.setUint32(SB_OFF_VERSION, PKRAM_VERSION, true);
  setU64(view, SB_OFF_GENERATION, sb.generation);
  bytes.set(sb.bootId, SB_OFF_BOOT_ID);
  setU64(view, SB_OFF_NODE_PFN, sb.nodePfn);
  setU64(view, SB_OFF_REGION_PFN, sb.regionPfn);
  view.setUint32(SB_OFF_NR_REGIONS, sb.nrRegions, true);
  view.setUint32(SB_OFF_NR_NODES, sb.nrNodes, true);
  setU64(view, SB_OFF_TABLE_ROOT, sb.tableRoot);
  view.setUint32(SB_OFF_TABLE_CRC, sb.tableCrc, true);
  view.setUint32(SB_OFF_REGION_CRC, sb.regionCrc, true);
  view.setUint32(SB_OFF_CRC, crc32c(bytes.subarray(0, SB_CRC_LEN)), true);
}

/** Whether the super block at pfn is as writeSuper left it: its magic, and its crc matching. */
export function superIntact(device: MemoryDevice, pfn: number): boolean {
  const view = device.view(pfn * PAGE_SIZE, PAGE_SIZE);
  return (
    view.getUint32(SB_OFF_MAGIC, true) === PKRAM_MAGIC &&
    view.getUint32(SB_OFF_CRC, true) === crc32c(device.bytes(pfn * PAGE_SIZE, SB_CRC_LEN))
  );
}

/** Marks an attached super block so it can never be attached again (crc left stale on purpose). */
export function consumeSuper(device: MemoryDevice, pfn: number): void {
  device.view(pfn * PAGE_SIZE, 4).setUint32(SB_OFF_MAGIC, PKRAM_MAGIC_CONSUMED, true);
}

/**
 * Reads and checks a super block: location, magic, version, crc, field
 * ranges, then (when given) generation and boot id.
 * @throws PkramError ENODEV (no super block: bad pfn or magic), EINVAL (stale:
 *   consumed, other version, generation or boot id), EFAULT (crc or a field out of range).
 */
export function readSuper(device: MemoryDevice, pfn: number, expect?: PkramExpect): SuperBlock {
  if (!Number.isSafeInteger(pfn) || pfn < 1 || pfn >= device.pages) {
    throw new PkramError('ENODEV', `super block pfn ${pfn} is outside ${device.name}`, 'magic');
  }
  const bytes = device.bytes(pfn * PAGE_SIZE, PAGE_SIZE);
  const view = device.view(pfn * PAGE_SIZE, PAGE_SIZE);
  const magic = view.getUint32(SB_OFF_MAGIC, true);
  if (magic === PKRAM_MAGIC_CONSUMED) {
    throw new PkramError(
      'EINVAL',
      `super block at pfn ${pfn} was already loaded by a successor`,
      'consumed',
    );
  }
  if (magic !== PKRAM_MAGIC) {
    throw new PkramError(
      'ENODEV',
      `no PKRAM super block at pfn ${pfn} (magic ${hex(magic)})`,
      'magic',
    );
  }
  const version = view.getUint32(SB_OFF_VERSION, true);
  if (version !== PKRAM_VERSION) {
    throw new PkramError(
      'EINVAL',
      `super block version ${version}, this build reads ${PKRAM_VERSION}`,
      'version',
    );
  }
  const crc = crc32c(bytes.subarray(0, SB_CRC_LEN));
  if (crc !== view.getUint32(SB_OFF_CRC, true)) {
    throw new PkramError('EFAULT', `super block at pfn ${pfn} fails its crc32c`, 'crc');
  }
  const sb: SuperBlock = {
    generation: getU64(view, SB_OFF_GENERATION),
    bootId: bytes.slice(SB_OFF_BOOT_ID, SB_OFF_BOOT_ID + PKRAM_BOOT_ID_SIZE),
    nodePfn: getU64(view, SB_OFF_NODE_PFN),
    regionPfn: getU64(view, SB_OFF_REGION_PFN),
    nrRegions: view.getUint32(SB_OFF_NR_REGIONS, true),
    nrNodes: view.getUint32(SB_OFF_NR_NODES, true),
    tableRoot: getU64(view, SB_OFF_TABLE_ROOT),
    tableCrc: view.getUint32(SB_OFF_TABLE_CRC, true),
    regionCrc: view.getUint32(SB_OFF_REGION_CRC, true),
  };
  const bad = (what: string): PkramError =>
    new PkramError('EFAULT', `super block at pfn ${pfn}: ${what}`, 'metadata');
  if (!Number.isSafeInteger(sb.generation)) throw bad('generation past 2^53');
  if (sb.nodePfn >= device.pages) throw bad(`node pfn ${sb.nodePfn} is outside the device`);
  if (sb.regionPfn >= device.pages) throw bad(`region pfn ${sb.regionPfn} is outside the device`);
  if (sb.nrRegions > PKRAM_REGIONS_MAX) throw bad(`${sb.nrRegions} regions`);
  if (sb.nrNodes > device.pages) throw bad(`${sb.nrNodes} nodes`);
  if (sb.tableRoot >= device.size || sb.tableRoot % PAGE_SIZE !== 0) {
    throw bad(`table root ${hex(sb.tableRoot)} is not a page of the device`);
  }
  if (expect !== undefined) {
    if (sb.generation !== expect.generation) {
      throw new PkramError(
        'EINVAL',
        `stale super block: generation ${sb.generation}, expected ${expect.generation}`,
        'generation',
      );
    }
    if (!sameId(sb.bootId, expect.predecessorBootId)) {
      throw new PkramError('EINVAL', 'stale super block: written by another boot', 'boot-id');
    }
  }
  return sb;
}

function sameId(a: Uint8Array, b: Uint8Array): boolean {
  if (b.length !== PKRAM_BOOT_ID_SIZE) return false;
  for (let i = 0; i < PKRAM_BOOT_ID_SIZE; i++) if (a[i] !== b[i]) return false;
  return true;
}
