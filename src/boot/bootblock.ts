import { hex } from '../base/hex.js';
import { getSafeU64, setU64 } from '../base/u64.js';
import { crc32c } from '../memory/crc32c.js';
import type { MemoryDevice } from '../memory/device.js';
import type { MemoryRange } from '../memory/memmap-types.js';
import {
  BB_BOOT_ID,
  BB_CMDLINE_LEN,
  BB_CMDLINE_OFF,
  BB_CRC32C,
  BB_FLAGS,
  BB_GENERATION,
  BB_HEADER_SIZE,
  BB_LAST_COMP_VERSION,
  BB_MAGIC,
  BB_MEMMAP_NR,
  BB_MEMMAP_OFF,
  BB_PREDECESSOR_BOOT_ID,
  BB_SETUP_DATA_OFF,
  BB_TOTAL_SIZE,
  BB_VERSION,
  BOOT_BLOCK_HEADER_SIZE,
  BOOT_BLOCK_LAST_COMP_VERSION,
  BOOT_BLOCK_MAGIC,
  BOOT_BLOCK_VERSION,
  BOOT_ID_SIZE,
  MAX_BOOT_BLOCK_SIZE,
  MAX_CMDLINE,
  MAX_MEMMAP_ENTRIES,
  MAX_SETUP_DATA_ENTRIES,
  MEMMAP_ADDR,
  MEMMAP_ENTRY_SIZE,
  MEMMAP_RESERVED,
  MEMMAP_SIZE,
  MEMMAP_TYPE,
  SETUP,
  SETUP_DATA_ALIGN,
  SETUP_DATA_HEADER_SIZE,
  SETUP_DATA_LEN,
  SETUP_DATA_NEXT,
  SETUP_DATA_TYPE,
} from './abi.js';
import { BootError } from './errors.js';

/** Encode and decode the boot block (layout in abi.ts). */

export interface SetupData {
  readonly type: number;
  readonly data: Uint8Array;
}

export interface BootBlockInput {
  /** The generation the block boots (the device header's next generation). */
  generation: number;
  /** The successor's boot id (16 bytes). */
  bootId: Uint8Array;
  /** The writer's own boot id (16 bytes). */
  predecessorBootId: Uint8Array;
  cmdline: string;
  /** Sorted, non-overlapping ranges, as the memory map hands them over. */
  memoryMap: readonly MemoryRange[];
  setupData?: readonly SetupData[];
}

export interface BootBlock {
  readonly version: number;
  readonly lastCompVersion: number;
  readonly totalSize: number;
  readonly generation: number;
  readonly bootId: Uint8Array;
  readonly predecessorBootId: Uint8Array;
  readonly cmdline: string;
  readonly memoryMap: readonly MemoryRange[];
  /** In chain order, unknown types included; `data` is a copy. */
  readonly setupData: readonly SetupData[];
}

export interface BootBlockExpect {
  /** The generation the device header says is pending. */
  generation?: number;
  /** The boot id of the generation that wrote the block. */
  predecessorBootId?: Uint8Array;
}

const ADDR_LIMIT = 2 ** 53;
const U32 = 2 ** 32;
const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

const align8 = (n: number) => Math.ceil(n / SETUP_DATA_ALIGN) * SETUP_DATA_ALIGN;

function isU32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n < U32;
}

/** Shared by encode (EINVAL) and decode (EFAULT): the map's ranges are sane. */
function checkMemoryMap(map: readonly MemoryRange[], fail: (m: string) => never): void {
  let prevEnd = 0;
  map.forEach((r, i) => {
    if (!Number.isSafeInteger(r.addr) || r.addr < 0) fail(`memory map entry ${i}: bad address`);
    if (!Number.isSafeInteger(r.size) || r.size <= 0)
      fail(`memory map entry ${i}: size must be > 0`);
    if (r.addr + r.size > ADDR_LIMIT) fail(`memory map entry ${i}: ends past 2^53`);
    // Type 0 is no type: the memory map refuses it, so the block must too.
    if (!isU32(r.type) || r.type === 0) fail(`memory map entry ${i}: bad type ${r.type}`);
    if (i > 0 && r.addr < prevEnd) {
      fail(
        `memory map entry ${i} at ${hex(r.addr)} overlaps or is out of order (previous ends at ${hex(prevEnd)})`,
      );
    }
    prevEnd = r.addr + r.size;
  });
}

/**
 * Lays out a boot block.
 *
 * @throws BootError EINVAL when a field is out of range: generation not a
 *   safe integer, ids not 16 bytes, command line too long or containing NUL,
 *   memory map unsorted/overlapping/too long, setup_data of type 0 or too
 *   many, or the whole block over MAX_BOOT_BLOCK_SIZE.
 */
export function encodeBootBlock(input: BootBlockInput): Uint8Array {
  const fail: (m: string) => never = (m) => {
    throw new BootError('EINVAL', `boot block: ${m}`);
  };
  const { generation, bootId, predecessorBootId, memoryMap } = input;
  const setupData = input.setupData ?? [];
  if (!Number.isSafeInteger(generation) || generation < 0) fail(`bad generation ${generation}`);
  if (bootId.length !== BOOT_ID_SIZE) fail('boot id must be 16 bytes');
  if (predecessorBootId.length !== BOOT_ID_SIZE) fail('predecessor boot id must be 16 bytes');
  const cmdline = utf8.encode(input.cmdline);
  if (cmdline.length > MAX_CMDLINE)
    fail(`command line is ${cmdline.length} bytes (limit ${MAX_CMDLINE})`);
  if (cmdline.includes(0)) fail('command line contains NUL');
  if (memoryMap.length > MAX_MEMMAP_ENTRIES)
    fail(`${memoryMap.length} memory map entries (limit ${MAX_MEMMAP_ENTRIES})`);
  checkMemoryMap(memoryMap, fail);
  if (setupData.length > MAX_SETUP_DATA_ENTRIES)
    fail(`${setupData.length} setup_data entries (limit ${MAX_SETUP_DATA_ENTRIES})`);
  for (const s of setupData) {
    if (!isU32(s.type) || s.type === SETUP.NONE) fail(`bad setup_data type ${s.type}`);
  }

  const cmdlineOff = BOOT_BLOCK_HEADER_SIZE;
  const memmapOff = align8(cmdlineOff + cmdline.length);
  let end = memmapOff + memoryMap.length * MEMMAP_ENTRY_SIZE;
  const setupOffs: number[] = [];
  for (const s of setupData) {
    end = align8(end);
    setupOffs.push(end);
    end += SETUP_DATA_HEADER_SIZE + s.data.length;
    if (end > MAX_BOOT_BLOCK_SIZE) break;
  }
  const totalSize = align8(end);
  if (totalSize > MAX_BOOT_BLOCK_SIZE)
    fail(`block would be ${totalSize} bytes (limit ${MAX_BOOT_BLOCK_SIZE})`);

  const out = new Uint8Array(totalSize);
  const dv = new DataView(out.buffer);
  dv.setUint32(BB_MAGIC, BOOT_BLOCK_MAGIC, true);
  dv.setUint16(BB_VERSION, BOOT_BLOCK_VERSION, true);
  dv.setUint16(BB_LAST_COMP_VERSION, BOOT_BLOCK_LAST_COMP_VERSION, true);
  dv.setUint32(BB_TOTAL_SIZE, totalSize, true);
  setU64(dv, BB_GENERATION, generation);
  out.set(bootId, BB_BOOT_ID);
  out.set(predecessorBootId, BB_PREDECESSOR_BOOT_ID);
  dv.setUint32(BB_HEADER_SIZE, BOOT_BLOCK_HEADER_SIZE, true);
  dv.setUint32(BB_CMDLINE_OFF, cmdlineOff, true);
  dv.setUint32(BB_CMDLINE_LEN, cmdline.length, true);
  dv.setUint32(BB_MEMMAP_OFF, memmapOff, true);
  dv.setUint32(BB_MEMMAP_NR, memoryMap.length, true);
  dv.setUint32(BB_SETUP_DATA_OFF, setupOffs[0] ?? 0, true);
  out.set(cmdline, cmdlineOff);
  memoryMap.forEach((r, i) => {
    const o = memmapOff + i * MEMMAP_ENTRY_SIZE;
    setU64(dv, o + MEMMAP_ADDR, r.addr);
    setU64(dv, o + MEMMAP_SIZE, r.size);
    dv.setUint32(o + MEMMAP_TYPE, r.type, true);
  });
  setupData.forEach((s, i) => {
    const o = setupOffs[i];
    setU64(dv, o + SETUP_DATA_NEXT, setupOffs[i + 1] ?? 0);
    dv.setUint32(o + SETUP_DATA_TYPE, s.type, true);
    dv.setUint32(o + SETUP_DATA_LEN, s.data.length, true);
    out.set(s.data, o + SETUP_DATA_HEADER_SIZE);
  });
  dv.setUint32(BB_CRC32C, blockCrc(out, totalSize), true);
  return out;
}

/** crc32c over [0, size) with the crc field taken as zero. */
function blockCrc(bytes: Uint8Array, size: number): number {
  let c = crc32c(bytes.subarray(0, BB_CRC32C));
  c = crc32c(new Uint8Array(4), c);
  return crc32c(bytes.subarray(BB_CRC32C + 4, size), c);
}

function sameId(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

const bad: (m: string) => never = (m) => {
  throw new BootError('EFAULT', `boot block: ${m}`);
};

/** What the frame check found: the block's bytes, read through `dv`, are `totalSize` long. */
export interface BootBlockFrame {
  readonly bytes: Uint8Array;
  readonly dv: DataView;
  readonly totalSize: number;
}

/** The header's version fields, checked. */
export interface BootBlockVersion {
  readonly version: number;
  readonly lastCompVersion: number;
  readonly headerSize: number;
}

/**
 * Reads and validates a boot block at the start of `bytes` (which may run
 * past the block's end).
 *
 * @throws BootError EFAULT when the block is truncated, has a bad magic,
 *   checksum, length, count, memory map entry or setup_data chain;
 *   EPROTO when it needs a newer reader; ESTALE when its generation or
 *   predecessor boot id is not what `expect` says (a repeated or old block).
 */
export function decodeBootBlock(bytes: Uint8Array, expect: BootBlockExpect = {}): BootBlock {
  const frame = checkFrame(bytes);
  const v = checkVersion(frame);
  const generation = getSafeU64(frame.dv, BB_GENERATION);
  if (generation === undefined) bad('generation past 2^53');
  const predecessorBootId = bytes.slice(
    BB_PREDECESSOR_BOOT_ID,
    BB_PREDECESSOR_BOOT_ID + BOOT_ID_SIZE,
  );
  const cmdline = readCmdline(frame, v.headerSize);
  const memoryMap = readMemoryMap(frame, v.headerSize);
  const setupData = readSetupData(frame, v.headerSize);
  checkExpected(generation, predecessorBootId, expect);
  return {
    version: v.version,
    lastCompVersion: v.lastCompVersion,
    totalSize: frame.totalSize,
    generation,
    bootId: bytes.slice(BB_BOOT_ID, BB_BOOT_ID + BOOT_ID_SIZE),
    predecessorBootId,
    cmdline,
    memoryMap,
    setupData,
  };
}

/**
 * The block's frame: a byte array holding the header, the magic, a total
 * size within bounds and held by `bytes`, and a checksum over it that holds.
 * @throws BootError EFAULT
 */
export function checkFrame(bytes: Uint8Array): BootBlockFrame {
  if (!(bytes instanceof Uint8Array)) bad('not a byte array');
  if (bytes.length < BOOT_BLOCK_HEADER_SIZE)
    bad(`truncated: ${bytes.length} bytes, the header needs ${BOOT_BLOCK_HEADER_SIZE}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = dv.getUint32(BB_MAGIC, true);
  if (magic !== BOOT_BLOCK_MAGIC) bad(`bad magic ${hex(magic)}`);
  const totalSize = dv.getUint32(BB_TOTAL_SIZE, true);
  if (totalSize < BOOT_BLOCK_HEADER_SIZE || totalSize > MAX_BOOT_BLOCK_SIZE)
    bad(`bad total size ${totalSize}`);
  if (totalSize > bytes.length)
    bad(`truncated: total size ${totalSize}, only ${bytes.length} bytes`);
  const crc = dv.getUint32(BB_CRC32C, true);
  const want = blockCrc(bytes, totalSize);
  if (crc !== want) bad(`checksum ${hex(crc)} does not match ${hex(want)}`);
  return { bytes, dv, totalSize };
}

/**
 * The format version (after the checksum holds, so a version this reader
 * cannot read is a genuine newer block) and the header's size.
 * @throws BootError EPROTO a block that needs a newer reader; EFAULT bad fields
 */
export function checkVersion({ dv, totalSize }: BootBlockFrame): BootBlockVersion {
  const version = dv.getUint16(BB_VERSION, true);
  const lastCompVersion = dv.getUint16(BB_LAST_COMP_VERSION, true);
  if (version === 0 || lastCompVersion === 0 || lastCompVersion > version)
    bad(`bad version ${version} (last compatible ${lastCompVersion})`);
  if (lastCompVersion > BOOT_BLOCK_VERSION) {
    throw new BootError(
      'EPROTO',
      `boot block: version ${version} needs a reader of version ${lastCompVersion}; this one reads ${BOOT_BLOCK_VERSION}`,
    );
  }
  const headerSize = dv.getUint32(BB_HEADER_SIZE, true);
  if (
    headerSize < BOOT_BLOCK_HEADER_SIZE ||
    headerSize > totalSize ||
    headerSize % SETUP_DATA_ALIGN
  )
    bad(`bad header size ${headerSize}`);
  if (
    version === BOOT_BLOCK_VERSION &&
    (dv.getUint32(BB_FLAGS, true) !== 0 || headerSize !== BOOT_BLOCK_HEADER_SIZE)
  ) {
    bad('version 1 block with flags or a longer header');
  }
  return { version, lastCompVersion, headerSize };
}

/** `[off, off + len)` lies inside the block, after its header of `headerSize` bytes. */
function inBlock(frame: BootBlockFrame, headerSize: number, off: number, len: number): boolean {
  return off >= headerSize && len <= frame.totalSize - off;
}

/**
 * The command line: inside the block, within MAX_CMDLINE, UTF-8 without NUL.
 * @throws BootError EFAULT
 */
export function readCmdline(frame: BootBlockFrame, headerSize: number): string {
  const off = frame.dv.getUint32(BB_CMDLINE_OFF, true);
  const len = frame.dv.getUint32(BB_CMDLINE_LEN, true);
  if (len > MAX_CMDLINE) bad(`command line of ${len} bytes (limit ${MAX_CMDLINE})`);
  if (!inBlock(frame, headerSize, off, len))
    bad(`command line at ${hex(off)}+${len} is outside the block`);
  const bytes = frame.bytes.subarray(off, off + len);
  if (bytes.includes(0)) bad('command line contains NUL');
  try {
    return utf8Strict.decode(bytes);
  } catch {
    return bad('command line is not UTF-8');
  }
}

/**
 * The memory map: inside the block, at most MAX_MEMMAP_ENTRIES, each entry
 * exact, its reserved field 0, the ranges sorted and apart (checkMemoryMap).
 * @throws BootError EFAULT
 */
export function readMemoryMap(frame: BootBlockFrame, headerSize: number): MemoryRange[] {
  const { dv } = frame;
  const off = dv.getUint32(BB_MEMMAP_OFF, true);
  const nr = dv.getUint32(BB_MEMMAP_NR, true);
  if (nr > MAX_MEMMAP_ENTRIES) bad(`${nr} memory map entries (limit ${MAX_MEMMAP_ENTRIES})`);
  if (!inBlock(frame, headerSize, off, nr * MEMMAP_ENTRY_SIZE))
    bad(`memory map at ${hex(off)} (${nr} entries) is outside the block`);
  const map: MemoryRange[] = [];
  for (let i = 0; i < nr; i++) {
    const o = off + i * MEMMAP_ENTRY_SIZE;
    const addr = getSafeU64(dv, o + MEMMAP_ADDR);
    const size = getSafeU64(dv, o + MEMMAP_SIZE);
    if (addr === undefined || size === undefined) bad(`memory map entry ${i} past 2^53`);
    if (dv.getUint32(o + MEMMAP_RESERVED, true) !== 0)
      bad(`memory map entry ${i}: reserved field is not 0`);
    map.push({ addr, size, type: dv.getUint32(o + MEMMAP_TYPE, true) });
  }
  checkMemoryMap(map, bad);
  return map;
}

/**
 * The setup_data chain: each entry aligned, inside the block, of a type, and
 * pointing past its own data (so the chain ends), at most
 * MAX_SETUP_DATA_ENTRIES. The data are copies.
 * @throws BootError EFAULT
 */
export function readSetupData(frame: BootBlockFrame, headerSize: number): SetupData[] {
  const { dv } = frame;
  const out: SetupData[] = [];
  for (let off = dv.getUint32(BB_SETUP_DATA_OFF, true); off !== 0; ) {
    if (out.length === MAX_SETUP_DATA_ENTRIES)
      bad(`more than ${MAX_SETUP_DATA_ENTRIES} setup_data entries`);
    if (off % SETUP_DATA_ALIGN || !inBlock(frame, headerSize, off, SETUP_DATA_HEADER_SIZE))
      bad(`setup_data at ${hex(off)} is outside the block`);
    const type = dv.getUint32(off + SETUP_DATA_TYPE, true);
    const len = dv.getUint32(off + SETUP_DATA_LEN, true);
    const dataOff = off + SETUP_DATA_HEADER_SIZE;
    if (!inBlock(frame, headerSize, dataOff, len))
      bad(`setup_data at ${hex(off)}: ${len} bytes run past the block`);
    if (type === SETUP.NONE) bad(`setup_data at ${hex(off)} has type 0`);
    const next = getSafeU64(dv, off + SETUP_DATA_NEXT);
    if (next === undefined || (next !== 0 && next < dataOff + len))
      bad(`setup_data at ${hex(off)}: bad next ${next === undefined ? '(huge)' : hex(next)}`);
    out.push({ type, data: frame.bytes.slice(dataOff, dataOff + len) });
    off = next;
  }
  return out;
}

/**
 * The block is the one the device expects: of its pending generation,
 * written by the boot it names (else a repeated or old block).
 * @throws BootError ESTALE
 */
export function checkExpected(
  generation: number,
  predecessorBootId: Uint8Array,
  expect: BootBlockExpect,
): void {
  if (expect.generation !== undefined && generation !== expect.generation) {
    throw new BootError(
      'ESTALE',
      `boot block is for generation ${generation}, the device expects ${expect.generation}`,
    );
  }
  if (
    expect.predecessorBootId !== undefined &&
    !sameId(predecessorBootId, expect.predecessorBootId)
  ) {
    throw new BootError('ESTALE', 'boot block was written by another boot than the device names');
  }
}

/**
 * The boot block at `phys` of `device`: its header's total size says how
 * much to read (at most MAX_BOOT_BLOCK_SIZE and what the device holds), then
 * decodeBootBlock. The one way every layer reads a block from device memory.
 * @throws BootError EFAULT a block outside the device; and decodeBootBlock's
 */
export function readBootBlockAt(
  device: Pick<MemoryDevice, 'size' | 'view' | 'bytes'>,
  phys: number,
  expect: BootBlockExpect = {},
): BootBlock {
  if (!Number.isSafeInteger(phys) || phys < 0 || phys + BOOT_BLOCK_HEADER_SIZE > device.size)
    throw new BootError('EFAULT', `boot block at ${hex(phys)} is outside the device`);
  const total = device.view(phys, BOOT_BLOCK_HEADER_SIZE).getUint32(BB_TOTAL_SIZE, true);
  const length = Math.min(
    Math.max(total, BOOT_BLOCK_HEADER_SIZE),
    MAX_BOOT_BLOCK_SIZE,
    device.size - phys,
  );
  return decodeBootBlock(device.bytes(phys, length), expect);
}

/** The first setup_data entry of `type`, or undefined. */
export function findSetupData(block: BootBlock, type: number): SetupData | undefined {
  return block.setupData.find((s) => s.type === type);
}
