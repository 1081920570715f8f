import { hex } from '../base/hex.js';
import { getSafeU64, setU64 } from '../base/u64.js';
import {
  DEVICE_FORMAT_VERSION,
  DEVICE_LAST_COMPAT_VERSION,
  DEVICE_MAGIC,
  DEVICE_MAP_MAX,
  HDR_BOOT_BLOCK,
  HDR_BOOT_ID,
  HDR_CRC,
  HDR_CREATED,
  HDR_DEVICE_SIZE,
  HDR_GENERATION,
  HDR_HEADER_SIZE,
  HDR_LAST_COMP,
  HDR_MAGIC,
  HDR_MAP,
  HDR_MAP_COUNT,
  HDR_OWNER_PID,
  HDR_PAGE_SIZE,
  HDR_RECORD,
  HDR_UUID,
  HDR_VERSION,
  MAP_ENTRY_ADDR,
  MAP_ENTRY_SIZE,
  MAP_ENTRY_SIZE_FIELD,
  MAP_ENTRY_TYPE,
  RECORD_SIZE,
} from './abi.js';
import {
  type BootRecord,
  decodeBootRecord,
  EMPTY_BOOT_RECORD,
  encodeBootRecord,
} from './boot-record.js';
import { crc32c } from './crc32c.js';
import { type MemoryDevice, PAGE_SIZE } from './device.js';
import { DeviceError } from './errors.js';
import { E820, type MemoryRange } from './memmap-types.js';
import { randomUUID } from './random.js';

/** The decoded device header (see abi.ts for the layout). */
export interface DeviceHeader {
  /** Format version that wrote it, and the oldest that can read it. */
  readonly version: number;
  readonly lastCompatVersion: number;
  /** Device size in bytes, as recorded; equals the device's size. */
  readonly size: number;
  readonly pageSize: number;
  /** Canonical lowercase 8-4-4-4-12 form. */
  readonly uuid: string;
  /** Creation time, ms since the epoch. */
  readonly created: number;
  /** Boots so far; bumped by each boot. */
  readonly generation: number;
  /** Physical address of the pending boot block, 0 when none. */
  readonly bootBlock: number;
  /**
   * The running boot's id (32 lowercase hex digits; all zeros before the
   * first boot). A boot block must name it as its predecessor.
   */
  readonly bootId: string;
  /** PID of the process that last wrote the header (0 when unknown). */
  readonly ownerPid: number;
  /** The device's own memory map. */
  readonly memmap: readonly MemoryRange[];
  /**
   * Which release last booted, kexec boots since a cold boot, and the boot
   * counting of a successor on trial (format version 2; empty when absent).
   */
  readonly record?: BootRecord;
}

export interface FormatOptions {
  uuid?: string;
  /** Creation time (ms); Date.now() by default. */
  now?: number;
  ownerPid?: number;
}

/**
 * Writes a fresh header: generation 0, no boot block, page 0 reserved and the
 * rest usable. Only page 0 is written.
 * @throws DeviceError ENOSPC when the device has fewer than 2 pages; EINVAL for a bad uuid.
 */
export function formatDevice(device: MemoryDevice, options: FormatOptions = {}): DeviceHeader {
  if (device.size < 2 * PAGE_SIZE) {
    throw new DeviceError(
      'ENOSPC',
      `${device.name}: a device needs at least 2 pages (header + memory)`,
    );
  }
  const header: DeviceHeader = {
    version: DEVICE_FORMAT_VERSION,
    lastCompatVersion: DEVICE_LAST_COMPAT_VERSION,
    size: device.size,
    pageSize: PAGE_SIZE,
    uuid: options.uuid ?? randomUUID(),
    created: options.now ?? Date.now(),
    generation: 0,
    bootBlock: 0,
    bootId: NO_BOOT_ID,
    ownerPid: options.ownerPid ?? process.pid,
    memmap: [
      { base: 0, size: PAGE_SIZE, type: E820.RESERVED },
      { base: PAGE_SIZE, size: device.size - PAGE_SIZE, type: E820.USABLE },
    ],
  };
  writeDeviceHeader(device, header);
  return header;
}

/**
 * Encodes `header` into page 0 (zeroing the rest of the page), computes the
 * crc and flushes page 0. The version fields written are this build's.
 * @throws DeviceError EINVAL for a field that does not fit or does not match
 *   the device; ENOSPC when the map has more than DEVICE_MAP_MAX entries.
 */
export function writeDeviceHeader(device: MemoryDevice, header: DeviceHeader): void {
  const count = header.memmap.length;
  if (count > DEVICE_MAP_MAX) {
    throw new DeviceError(
      'ENOSPC',
      `device memory map has ${count} entries; the header holds ${DEVICE_MAP_MAX}`,
    );
  }
  const page = encodeDeviceHeader(header);
  const problem = checkFields(decodeFields(new DataView(page.buffer)), device.size);
  if (problem !== null)
    throw new DeviceError('EINVAL', `${device.name}: refusing to write a bad header: ${problem}`);
  device.bytes(0, PAGE_SIZE).set(page);
  device.flush(0, PAGE_SIZE);
}

/** page 0 as bytes, crc included. @throws DeviceError EINVAL for a value that does not fit its field. */
export function encodeDeviceHeader(header: DeviceHeader): Uint8Array {
  const page = new Uint8Array(PAGE_SIZE);
  const v = new DataView(page.buffer);
  const count = header.memmap.length;
  if (count > DEVICE_MAP_MAX)
    throw new DeviceError('ENOSPC', `memory map has ${count} entries (max ${DEVICE_MAP_MAX})`);
  const headerSize = HDR_RECORD + RECORD_SIZE;
  v.setUint32(HDR_MAGIC, DEVICE_MAGIC, true);
  v.setUint32(HDR_VERSION, DEVICE_FORMAT_VERSION, true);
  v.setUint32(HDR_LAST_COMP, DEVICE_LAST_COMPAT_VERSION, true);
  v.setUint32(HDR_HEADER_SIZE, headerSize, true);
  setField64(v, HDR_DEVICE_SIZE, header.size, 'size');
  setU32(v, HDR_PAGE_SIZE, header.pageSize, 'pageSize');
  page.set(parseUuid(header.uuid), HDR_UUID);
  setField64(v, HDR_CREATED, header.created, 'created');
  setField64(v, HDR_GENERATION, header.generation, 'generation');
  setField64(v, HDR_BOOT_BLOCK, header.bootBlock, 'bootBlock');
  setU32(v, HDR_OWNER_PID, header.ownerPid, 'ownerPid');
  page.set(parseBootId(header.bootId), HDR_BOOT_ID);
  v.setUint32(HDR_MAP_COUNT, count, true);
  // A loop, not forEach with an arrow: called per entry, such an arrow ran out of V8's
  // tier-up budget inside an exec (the header is encoded at its commit), and was compiled
  // on a thread that shares the CPU with the successor's boot.
  for (let i = 0; i < count; i++) {
    const r = header.memmap[i];
    const at = HDR_MAP + i * MAP_ENTRY_SIZE;
    setField64(v, at + MAP_ENTRY_ADDR, r.base, 'memmap addr');
    setField64(v, at + MAP_ENTRY_SIZE_FIELD, r.size, 'memmap size');
    setU32(v, at + MAP_ENTRY_TYPE, r.type, 'memmap type');
  }
  encodeBootRecord(v, HDR_RECORD, header.record ?? EMPTY_BOOT_RECORD);
  v.setUint32(HDR_CRC, crc32c(page.subarray(0, headerSize)), true);
  return page;
}

/**
 * Reads and validates page 0 of `device`.
 * @throws DeviceError ENODEV with the reason when the header is not a valid
 *   livekexec header for this device.
 */
export function readDeviceHeader(device: MemoryDevice): DeviceHeader {
  return decodeDeviceHeader(
    device.bytes(0, Math.min(device.size, PAGE_SIZE)),
    device.size,
    device.name,
  );
}

/**
 * Validates and decodes a header from page-0 bytes of a device of `deviceSize` bytes.
 * Checks, in order: length, magic, versions, header size, crc, then every field.
 * @throws DeviceError ENODEV with the reason; never anything else.
 */
export function decodeDeviceHeader(
  page0: Uint8Array,
  deviceSize: number,
  name = 'device',
): DeviceHeader {
  const bad = (why: string) =>
    new DeviceError('ENODEV', `${name}: not a valid livekexec device: ${why}`);
  if (page0.length < HDR_MAP) throw bad(`only ${page0.length} bytes, the header needs ${HDR_MAP}`);
  const v = new DataView(page0.buffer, page0.byteOffset, page0.byteLength);
  const magic = v.getUint32(HDR_MAGIC, true);
  if (magic !== DEVICE_MAGIC) throw bad(`bad magic ${hex(magic)}`);
  const version = v.getUint32(HDR_VERSION, true);
  const lastComp = v.getUint32(HDR_LAST_COMP, true);
  if (version === 0 || lastComp === 0 || lastComp > version) {
    throw bad(`bad format version ${version} (last compatible ${lastComp})`);
  }
  if (lastComp > DEVICE_FORMAT_VERSION) {
    throw bad(
      `format version ${version} needs a reader of version ${lastComp}; this one reads ${DEVICE_FORMAT_VERSION}`,
    );
  }
  const headerSize = v.getUint32(HDR_HEADER_SIZE, true);
  if (headerSize < HDR_MAP || headerSize > page0.length) {
    throw bad(`header size ${headerSize} is outside [${HDR_MAP}, ${page0.length}]`);
  }
  const stored = v.getUint32(HDR_CRC, true);
  const copy = page0.slice(0, headerSize);
  new DataView(copy.buffer).setUint32(HDR_CRC, 0, true);
  const crc = crc32c(copy);
  if (crc !== stored) throw bad(`checksum mismatch (stored ${hex(stored)}, computed ${hex(crc)})`);
  const count = v.getUint32(HDR_MAP_COUNT, true);
  if (count > DEVICE_MAP_MAX) throw bad(`memory map has ${count} entries (max ${DEVICE_MAP_MAX})`);
  if (HDR_MAP + count * MAP_ENTRY_SIZE > headerSize) {
    throw bad(`memory map of ${count} entries overruns the header size ${headerSize}`);
  }
  const fields = decodeFields(v);
  if (fields === null) throw bad('a 64-bit field is above 2^53');
  const problem = checkFields(fields, deviceSize);
  if (problem !== null) throw bad(problem);
  const record = decodeBootRecord(v, HDR_RECORD, headerSize);
  if (typeof record === 'string') throw bad(record);
  return { ...fields, version, lastCompatVersion: lastComp, record };
}

/** The fields after the checksum, or null when a u64 is not exact as a number. */
function decodeFields(v: DataView): DeviceHeader | null {
  const u64 = (at: number) => getSafeU64(v, at) ?? null;
  const count = Math.min(v.getUint32(HDR_MAP_COUNT, true), DEVICE_MAP_MAX);
  const memmap: MemoryRange[] = [];
  for (let i = 0; i < count; i++) {
    const at = HDR_MAP + i * MAP_ENTRY_SIZE;
    const addr = u64(at + MAP_ENTRY_ADDR);
    const size = u64(at + MAP_ENTRY_SIZE_FIELD);
    if (addr === null || size === null) return null;
    memmap.push({ base: addr, size, type: v.getUint32(at + MAP_ENTRY_TYPE, true) });
  }
  const size = u64(HDR_DEVICE_SIZE);
  const created = u64(HDR_CREATED);
  const generation = u64(HDR_GENERATION);
  const bootBlock = u64(HDR_BOOT_BLOCK);
  if (size === null || created === null || generation === null || bootBlock === null) return null;
  const uuid = new Uint8Array(v.buffer, v.byteOffset + HDR_UUID, 16);
  return {
    version: v.getUint32(HDR_VERSION, true),
    lastCompatVersion: v.getUint32(HDR_LAST_COMP, true),
    size,
    pageSize: v.getUint32(HDR_PAGE_SIZE, true),
    uuid: formatUuid(uuid),
    created,
    generation,
    bootBlock,
    ownerPid: v.getUint32(HDR_OWNER_PID, true),
    bootId: Buffer.from(v.buffer, v.byteOffset + HDR_BOOT_ID, 16).toString('hex'),
    memmap,
  };
}

/** The latest time a Date can hold (ECMA-262: 8.64e15 ms); a later `created` is garbage. */
const MAX_TIME_MS = 8.64e15;

/** The first thing wrong with the fields for a device of `deviceSize` bytes, or null. */
function checkFields(h: DeviceHeader | null, deviceSize: number): string | null {
  if (h === null) return 'a 64-bit field is above 2^53';
  if (h.pageSize !== PAGE_SIZE) return `page size ${h.pageSize}, expected ${PAGE_SIZE}`;
  if (h.size !== deviceSize) return `header says ${h.size} bytes, the device has ${deviceSize}`;
  if (h.size < 2 * PAGE_SIZE || h.size % PAGE_SIZE !== 0)
    return `device size ${h.size} is not 2 or more whole pages`;
  if (/^0{8}-0{4}-0{4}-0{4}-0{12}$/.test(h.uuid)) return 'uuid is zero';
  if (h.created > MAX_TIME_MS)
    return `creation time ${h.created} ms is past the last date there is`;
  if (
    h.bootBlock !== 0 &&
    (h.bootBlock < PAGE_SIZE || h.bootBlock >= h.size || h.bootBlock % 8 !== 0)
  ) {
    return `boot block address ${hex(h.bootBlock)} is not an aligned address past page 0 inside the device`;
  }
  let end = 0;
  for (let i = 0; i < h.memmap.length; i++) {
    const r = h.memmap[i];
    if (r.type === 0) return `memory map entry ${i} has type 0`;
    if (r.size === 0 || r.base % PAGE_SIZE !== 0 || r.size % PAGE_SIZE !== 0) {
      return `memory map entry ${i} [${hex(r.base)}, +${hex(r.size)}) is not whole pages`;
    }
    if (r.base + r.size > h.size) return `memory map entry ${i} ends past the device`;
    if (r.base < end) return `memory map entry ${i} is out of order or overlaps the one before`;
    end = r.base + r.size;
  }
  return null;
}

/** @throws DeviceError EINVAL a value that is not a safe non-negative integer */
function setField64(v: DataView, at: number, x: number, field: string): void {
  if (!Number.isSafeInteger(x) || x < 0)
    throw new DeviceError('EINVAL', `header field ${field}: bad value ${x}`);
  setU64(v, at, x);
}

function setU32(v: DataView, at: number, x: number, field: string): void {
  if (!Number.isInteger(x) || x < 0 || x > 0xffffffff) {
    throw new DeviceError('EINVAL', `header field ${field}: bad value ${x}`);
  }
  v.setUint32(at, x, true);
}

function parseUuid(uuid: string): Uint8Array {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(uuid)) {
    throw new DeviceError('EINVAL', `bad uuid '${uuid}'`);
  }
  return Uint8Array.from(Buffer.from(uuid.replace(/-/g, ''), 'hex'));
}

/** The boot id of a device that has never booted. */
export const NO_BOOT_ID = '0'.repeat(32);

function parseBootId(id: string): Uint8Array {
  if (!/^[0-9a-f]{32}$/.test(id)) throw new DeviceError('EINVAL', `bad boot id '${id}'`);
  return Uint8Array.from(Buffer.from(id, 'hex'));
}

function formatUuid(b: Uint8Array): string {
  const h = Buffer.from(b).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
