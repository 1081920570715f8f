/**
 * Reading and writing the status area's two slots (layout in abi.ts).
 */
import { hex } from '../base/hex.js';
import { crc32c } from '../memory/crc32c.js';
import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import { E820, type MemoryRange } from '../memory/memmap-types.js';
import {
  SLOT_CRC,
  SLOT_HEADER_SIZE,
  SLOT_LAST_COMP,
  SLOT_MAGIC,
  SLOT_PAYLOAD_LEN,
  SLOT_SEQUENCE,
  SLOT_VERSION,
  STATUS_AREA_MAX,
  STATUS_LAST_COMPAT_VERSION,
  STATUS_MAGIC,
  STATUS_VERSION,
} from './abi.js';
import { StatusError } from './errors.js';
import type { StatusRange } from './model.js';

/** The status area a memory map names, or null. @throws StatusError EINVAL when the range cannot be one. */
export function findStatusArea(
  map: readonly MemoryRange[],
  deviceSize: number,
): StatusRange | null {
  const r = map.find((e) => e.type === E820.STATUS);
  if (!r) return null;
  checkArea({ base: r.base, size: r.size }, deviceSize);
  return { base: r.base, size: r.size };
}

function checkArea(area: StatusRange, deviceSize: number): void {
  const { base, size } = area;
  if (
    base % PAGE_SIZE !== 0 ||
    size % (2 * PAGE_SIZE) !== 0 ||
    size === 0 ||
    size > STATUS_AREA_MAX ||
    base + size > deviceSize
  ) {
    throw new StatusError(
      'EINVAL',
      `status area [${hex(base)}, +${hex(size)}) is not two whole-page slots inside the device`,
    );
  }
}

/** One slot as bytes: header, payload, zero padding. @throws StatusError EINVAL when the payload does not fit. */
export function encodeSlot(payload: Uint8Array, sequence: number, slotSize: number): Uint8Array {
  if (SLOT_HEADER_SIZE + payload.length > slotSize) {
    throw new StatusError(
      'EINVAL',
      `status payload of ${payload.length} bytes does not fit a ${slotSize}-byte slot`,
    );
  }
  const out = new Uint8Array(SLOT_HEADER_SIZE + payload.length);
  const v = new DataView(out.buffer);
  v.setUint32(SLOT_MAGIC, STATUS_MAGIC, true);
  v.setUint32(SLOT_VERSION, STATUS_VERSION, true);
  v.setUint32(SLOT_LAST_COMP, STATUS_LAST_COMPAT_VERSION, true);
  v.setUint32(SLOT_PAYLOAD_LEN, payload.length, true);
  v.setBigUint64(SLOT_SEQUENCE, BigInt(sequence), true);
  out.set(payload, SLOT_HEADER_SIZE);
  v.setUint32(SLOT_CRC, crc32c(out), true);
  return out;
}

/**
 * A slot's payload and sequence.
 * @throws StatusError EINVAL (magic, length, checksum), EPROTONOSUPPORT (version).
 */
export function decodeSlot(slot: Uint8Array): { sequence: number; payload: Uint8Array } {
  if (slot.length < SLOT_HEADER_SIZE)
    throw new StatusError('EINVAL', 'slot shorter than its header');
  const v = new DataView(slot.buffer, slot.byteOffset, slot.byteLength);
  const magic = v.getUint32(SLOT_MAGIC, true);
  if (magic !== STATUS_MAGIC) throw new StatusError('EINVAL', `bad magic ${hex(magic)}`);
  const version = v.getUint32(SLOT_VERSION, true);
  const lastComp = v.getUint32(SLOT_LAST_COMP, true);
  if (version === 0 || lastComp === 0 || lastComp > version)
    throw new StatusError('EINVAL', `bad version ${version} (last compatible ${lastComp})`);
  if (lastComp > STATUS_VERSION) {
    throw new StatusError(
      'EPROTONOSUPPORT',
      `status version ${version} needs a reader of version ${lastComp}; this one reads ${STATUS_VERSION}`,
    );
  }
  const length = v.getUint32(SLOT_PAYLOAD_LEN, true);
  if (length > slot.length - SLOT_HEADER_SIZE)
    throw new StatusError(
      'EINVAL',
      `payload length ${length} overruns the ${slot.length}-byte slot`,
    );
  const stored = v.getUint32(SLOT_CRC, true);
  const copy = slot.slice(0, SLOT_HEADER_SIZE + length);
  new DataView(copy.buffer).setUint32(SLOT_CRC, 0, true);
  const crc = crc32c(copy);
  if (crc !== stored)
    throw new StatusError(
      'EINVAL',
      `checksum mismatch (stored ${hex(stored)}, computed ${hex(crc)})`,
    );
  const sequence = v.getBigUint64(SLOT_SEQUENCE, true);
  if (sequence > BigInt(Number.MAX_SAFE_INTEGER))
    throw new StatusError('EINVAL', 'sequence is above 2^53');
  return { sequence: Number(sequence), payload: copy.subarray(SLOT_HEADER_SIZE) };
}

/** The newest valid slot of an area, or why neither is. */
export type SlotRead =
  | { ok: true; sequence: number; slot: 0 | 1; payload: Uint8Array }
  | { ok: false; error: StatusError };

/**
 * Reads both slots (copies of what their headers claim) and picks the valid
 * one with the higher sequence. Every boot reads the area: a slot never
 * written (magic 0) is passed over without an error object, and a slot is
 * copied as far as its header's length, not whole (2 x 32 KiB).
 */
export function readArea(device: MemoryDevice, area: StatusRange): SlotRead {
  try {
    checkArea(area, device.size);
  } catch (err) {
    return { ok: false, error: err as StatusError };
  }
  const half = area.size / 2;
  let best: Extract<SlotRead, { ok: true }> | null = null;
  let firstError: StatusError | null = null;
  for (const i of [0, 1] as const) {
    const live = device.bytes(area.base + i * half, half);
    const head = new DataView(live.buffer, live.byteOffset, SLOT_HEADER_SIZE);
    if (head.getUint32(SLOT_MAGIC, true) === 0) continue;
    // The length is read again from the copy, and checked there: the copy is what counts.
    const claimed = head.getUint32(SLOT_PAYLOAD_LEN, true);
    try {
      const d = decodeSlot(live.slice(0, Math.min(half, SLOT_HEADER_SIZE + claimed)));
      if (best === null || d.sequence > best.sequence) best = { ok: true, slot: i, ...d };
    } catch (err) {
      if (!(err instanceof StatusError)) throw err;
      firstError ??= err;
    }
  }
  if (best) return best;
  // Not valid, so one was blank or failed.
  const why = firstError?.message ?? 'bad magic 0x0 (never written)';
  return {
    ok: false,
    error: new StatusError(firstError?.code ?? 'EINVAL', `no valid status slot: ${why}`),
  };
}

/**
 * Writes `payload` into the slot after `previous` (the other one), then
 * flushes it: the other slot stays whole until this one is complete.
 * @returns the slot written.
 */
export function writeArea(
  device: MemoryDevice,
  area: StatusRange,
  payload: Uint8Array,
  sequence: number,
  previous: 0 | 1 | null,
): 0 | 1 {
  const half = area.size / 2;
  const slot: 0 | 1 = previous === 0 ? 1 : 0;
  const bytes = encodeSlot(payload, sequence, half);
  const at = area.base + slot * half;
  device.bytes(at, bytes.length).set(bytes);
  device.flush(at, bytes.length);
  return slot;
}
