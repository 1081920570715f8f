/**
 * The kernel's side of the status area (src/status/abi.ts): early boot
 * finds or makes the area and reads what the previous generation left
 * there; the running generation writes its status into it at boot, at each
 * handover event and when asked (a real process: every second), and puts
 * the exec's start time in the boot block so the successor can tell the
 * downtime.
 */

import { messageOf } from '../base/errors.js';
import { getU64, setU64 } from '../base/u64.js';
import { SETUP } from '../boot/abi.js';
import type { SetupData } from '../boot/bootblock.js';
import type { EarlyContext } from '../boot/early-context.js';
import type { HandoverPart, HandoverSubsystem } from '../boot/handover.js';
import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import { E820 } from '../memory/memmap-types.js';
import {
  CLOCK_MONOTONIC_US,
  CLOCK_REALTIME_US,
  CLOCK_SIZE,
  CLOCK_WAY,
  HANDOVER_WAYS,
  MAX_LAYOUT_RUNS,
  SLOT_HEADER_SIZE,
  STATUS_AREA_SIZE,
} from '../status/abi.js';
import { findStatusArea, readArea, writeArea } from '../status/area.js';
import { StatusError } from '../status/errors.js';
import { emptyHistory, recordHandover } from '../status/history.js';
import type {
  HandoverHistory,
  LastHandover,
  PublishedStatus,
  StatusRange,
} from '../status/model.js';
import { decodeStatusHistory, encodeStatusPayload } from '../status/payload.js';
import type { BootInfo } from './boot-info.js';

export interface StatusEarly {
  readonly area: StatusRange | null;
  /**
   * What the previous generation last published there, read when first
   * needed (the first publish, or a read of the history), not in the boot:
   * checking and decoding it ran cold in every successor's downtime.
   */
  readonly previous: () => PreviousStatus;
}

/** The previous generation's status, as far as it goes on: the history, and the slot to write after. */
export interface PreviousStatus {
  readonly history: HandoverHistory | null;
  readonly slot: 0 | 1 | null;
  readonly sequence: number;
}

const NO_PREVIOUS: PreviousStatus = { history: null, slot: null, sequence: 0 };

/** An early status with no area. */
export const NO_STATUS: StatusEarly = { area: null, previous: () => NO_PREVIOUS };

/**
 * Finds the status area in the memory map (it keeps its address for the
 * life of the device); makes one, top-down in memblock, when there is none
 * and `want` is set. The previous generation's status in it is read later
 * (StatusEarly.previous). A damaged area is logged and read as empty:
 * status never fails a boot.
 */
export function statusEarly(ctx: EarlyContext, want: boolean): StatusEarly {
  let area: StatusRange | null;
  try {
    area = findStatusArea(ctx.memoryMap.entries(), ctx.device.size);
  } catch (err) {
    if (!(err instanceof StatusError)) throw err;
    ctx.log(`status: ignoring the status area: ${err.message}`);
    return NO_STATUS;
  }
  if (area) {
    const { device, log } = ctx;
    const found = area;
    return { area, previous: () => readPrevious(device, found, log) };
  }
  if (!want) return NO_STATUS;
  const base = ctx.memblock.tryAlloc(STATUS_AREA_SIZE, PAGE_SIZE);
  if (base === null) {
    ctx.log(`status: no room for a ${STATUS_AREA_SIZE}-byte status area; not publishing`);
    return NO_STATUS;
  }
  ctx.memoryMap.add(base, STATUS_AREA_SIZE, E820.STATUS);
  // Whatever the pages held before is not a status.
  ctx.device.bytes(base, STATUS_AREA_SIZE).fill(0);
  return { area: { base, size: STATUS_AREA_SIZE }, previous: () => NO_PREVIOUS };
}

/** Reads the newest valid slot of an area; what cannot be read is logged and read as nothing. */
function readPrevious(
  device: MemoryDevice,
  area: StatusRange,
  log: (line: string) => void,
): PreviousStatus {
  const read = readArea(device, area);
  if (!read.ok) {
    log(`status: the previous status cannot be read: ${read.error.message}`);
    return NO_PREVIOUS;
  }
  try {
    // Only the history goes on: the rest of a status is the generation's own.
    const history = decodeStatusHistory(read.payload);
    return { history, slot: read.slot, sequence: read.sequence };
  } catch (err) {
    if (!(err instanceof StatusError)) throw err;
    log(`status: the previous status cannot be read: ${err.message}`);
    return { history: null, slot: read.slot, sequence: read.sequence };
  }
}

/** A clock reading: wall time for people, the monotonic clock for durations. */
interface ClockReading {
  realtimeUs: number;
  monotonicUs: number;
}

function readClock(): ClockReading {
  return {
    realtimeUs: Date.now() * 1000,
    monotonicUs: Number(process.hrtime.bigint() / 1000n),
  };
}

/** The longest downtime believed; a larger figure means the clocks disagree (another machine boot). */
const MAX_DOWNTIME_US = 24 * 3600 * 1e6;

function encodeClock(c: ClockReading, way: number): Uint8Array {
  const out = new Uint8Array(CLOCK_SIZE);
  const v = new DataView(out.buffer);
  setU64(v, CLOCK_REALTIME_US, Math.round(c.realtimeUs));
  setU64(v, CLOCK_MONOTONIC_US, Math.round(c.monotonicUs));
  v.setUint32(CLOCK_WAY, way, true);
  return out;
}

/** The predecessor's exec start, or null when absent or malformed (untrusted: it only feeds a figure). */
function decodeClock(data: Uint8Array | undefined): (ClockReading & { way: string }) | null {
  if (data === undefined || data.length < CLOCK_SIZE) return null;
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const realtimeUs = getU64(v, CLOCK_REALTIME_US);
  const monotonicUs = getU64(v, CLOCK_MONOTONIC_US);
  const way = HANDOVER_WAYS[v.getUint32(CLOCK_WAY, true)] ?? 'unknown';
  return { realtimeUs, monotonicUs, way };
}

/**
 * The status of one generation: its handover history and the area it
 * publishes into. As a handover subsystem it adds the exec's start time
 * to the boot block.
 */
export class KernelStatusArea implements HandoverSubsystem {
  readonly name = 'status';
  readonly area: StatusRange | null;
  readonly bootedAtMs = Date.now();
  #slot: 0 | 1 | null = null;
  #sequence = 0;
  #history: HandoverHistory = emptyHistory();
  /** Set until the previous status is read; what happened before goes on top of it then. */
  #previous: (() => PreviousStatus) | null;
  #recordedEarly: LastHandover[] = [];
  #began: (ClockReading & { way: number }) | null = null;
  #lastError: string | null = null;
  #published = false;

  readonly #device: MemoryDevice;

  constructor(device: MemoryDevice, early: StatusEarly) {
    this.#device = device;
    this.area = early.area;
    this.#previous = early.previous;
  }

  /** Reads the previous status, once: its history, then what this generation recorded before. */
  #readPrevious(): void {
    const read = this.#previous;
    if (read === null) return;
    this.#previous = null;
    let previous: PreviousStatus;
    try {
      previous = read();
    } catch (err) {
      // Status never fails its generation (a device closed since, say): counted from nothing.
      this.#lastError = messageOf(err);
      previous = NO_PREVIOUS;
    }
    this.#slot = previous.slot;
    this.#sequence = previous.sequence;
    let history = previous.history ?? emptyHistory();
    for (const last of this.#recordedEarly) history = recordHandover(history, last);
    this.#history = history;
    this.#recordedEarly = [];
  }

  /** Whether this generation has written its status into the area yet. */
  get published(): boolean {
    return this.#published;
  }

  get history(): HandoverHistory {
    this.#readPrevious();
    return this.#history;
  }

  /** Why the last publish failed, or null. */
  get lastError(): string | null {
    return this.#lastError;
  }

  /**
   * The boot is done: a kexec boot counts its handover (with the downtime
   * from the predecessor's exec start to now), a boot that refused the
   * handover it was offered counts a refusal.
   */
  booted(boot: BootInfo, predecessorGeneration: number): void {
    if (boot.kind === 'kexec') {
      const began = decodeClock(boot.setupData.find((s) => s.type === SETUP.HANDOVER_CLOCK)?.data);
      const now = readClock();
      let downtimeUs: number | undefined;
      if (began) {
        const mono = now.monotonicUs - began.monotonicUs;
        const real = now.realtimeUs - began.realtimeUs;
        const d = mono >= 0 && mono < MAX_DOWNTIME_US ? mono : real;
        if (d >= 0 && d < MAX_DOWNTIME_US) downtimeUs = Math.round(d);
      }
      // A fallback boot: the successor failed its tries and the last good program took the handover.
      const fell = boot.fellBackFrom;
      this.#record({
        outcome: fell ? 'fallback' : 'ok',
        atMs: began ? Math.floor(began.realtimeUs / 1000) : Date.now(),
        way: began?.way ?? 'unknown',
        fromGeneration: predecessorGeneration,
        toGeneration: boot.generation,
        ...(downtimeUs === undefined ? {} : { downtimeUs }),
        ...(fell ? { reason: `${fell.successor}: ${fell.reason}` } : {}),
      });
    } else if (boot.coldReason !== undefined) {
      this.#record({
        outcome: 'refused',
        atMs: Date.now(),
        way: 'unknown',
        fromGeneration: predecessorGeneration,
        toGeneration: boot.generation,
        reason: boot.coldReason,
      });
    }
  }

  /** kexec exec has begun: the downtime starts now. */
  handoverBegan(preload: boolean): void {
    this.#began = { ...readClock(), way: preload ? 2 : 1 };
  }

  /** The exec failed before the successor took over; this generation goes on. */
  handoverFailed(fromGeneration: number, reason: string): void {
    const began = this.#began;
    this.#began = null;
    this.#record({
      outcome: 'failed',
      atMs: began ? Math.floor(began.realtimeUs / 1000) : Date.now(),
      way: HANDOVER_WAYS[began?.way ?? 0] ?? 'unknown',
      fromGeneration,
      toGeneration: fromGeneration + 1,
      reason,
    });
  }

  #record(last: LastHandover): void {
    if (this.#previous !== null) this.#recordedEarly.push(last);
    else this.#history = recordHandover(this.#history, last);
  }

  freeze(): HandoverPart {
    const began = this.#began ?? { ...readClock(), way: 0 };
    const setupData: SetupData[] = [
      { type: SETUP.HANDOVER_CLOCK, data: encodeClock(began, began.way) },
    ];
    return { setupData };
  }

  /**
   * Writes the status `build` makes into the area (the slot not written
   * last), asking for fewer layout runs while it does not fit a slot.
   * @returns false when there is no area or it could not be written (the reason is in lastError).
   */
  publish(build: (maxRuns: number) => PublishedStatus): boolean {
    const area = this.area;
    if (!area) return false;
    const room = area.size / 2 - SLOT_HEADER_SIZE;
    try {
      // The slot and sequence to write after, and the history the status carries.
      this.#readPrevious();
      let payload: Uint8Array | null = null;
      for (let runs = MAX_LAYOUT_RUNS; payload === null; runs = Math.floor(runs / 2)) {
        const bytes = encodeStatusPayload(build(runs));
        if (bytes.length <= room) payload = bytes;
        else if (runs <= 1)
          throw new StatusError('EINVAL', `status of ${bytes.length} bytes does not fit ${room}`);
      }
      this.#sequence += 1;
      this.#slot = writeArea(this.#device, area, payload, this.#sequence, this.#slot);
      this.#published = true;
      this.#lastError = null;
      return true;
    } catch (err) {
      this.#lastError = messageOf(err);
      return false;
    }
  }
}
