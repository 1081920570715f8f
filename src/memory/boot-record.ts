/**
 * The boot record in page 0 (layout in abi.ts): which release last booted
 * the device and how many kexec boots it is from a cold boot, and the boot
 * counting of a successor on trial, as A/B bootloaders count tries.
 */
import { getSafeU64, setU64 } from '../base/u64.js';
import {
  REASON_MAX,
  REC_KEXEC_COUNT,
  REC_LAST_AT,
  REC_LAST_OUTCOME,
  REC_LAST_REASON,
  REC_LAST_SUCCESSOR,
  REC_LAST_TRIES,
  REC_MAGIC,
  REC_RELEASE,
  REC_SIZE,
  REC_TRIAL_BASE_BOOT_ID,
  REC_TRIAL_BASE_GENERATION,
  REC_TRIAL_BOOT_BLOCK,
  REC_TRIAL_DEADLINE,
  REC_TRIAL_MAX_TRIES,
  REC_TRIAL_PID,
  REC_TRIAL_REASON,
  REC_TRIAL_RELEASE,
  REC_TRIAL_STARTED,
  REC_TRIAL_STATE,
  REC_TRIAL_TRIES,
  RECORD_MAGIC,
  RECORD_SIZE,
  RELEASE_MAX,
} from './abi.js';

/** A successor booting a pending handover without consuming it. */
export interface TrialRecord {
  /** 'on-trial': tries go on; 'falling-back': the tries are spent, the fallback boots next. */
  readonly state: 'on-trial' | 'falling-back';
  /** The pending boot block the trial boots (the header's). */
  readonly bootBlock: number;
  /** The generation and boot id of the predecessor that wrote it: a try validates the block against them. */
  readonly baseGeneration: number;
  readonly baseBootId: string;
  /** Tries started so far, and allowed before the fallback. */
  readonly tries: number;
  readonly maxTries: number;
  /** The process of the latest try. */
  readonly pid: number;
  /** How long a try has to be marked good (ms). */
  readonly deadlineMs: number;
  /** When the first try started (ms since the epoch). */
  readonly started: number;
  /** The successor's release once it booted ('' before). */
  readonly release: string;
  /** Why the latest try failed ('' when none has). */
  readonly reason: string;
}

/** How the last handover onto the device ended. */
export interface UpgradeOutcome {
  /** 'good': the successor was marked good; 'fell-back': its tries were spent and the fallback booted. */
  readonly outcome: 'good' | 'fell-back';
  /** The successor's release, or its command line when it never booted. */
  readonly successor: string;
  readonly tries: number;
  /** Why it fell back ('' for good). */
  readonly reason: string;
  /** When (ms since the epoch). */
  readonly at: number;
}

export interface BootRecord {
  /** Kexec boots since the last cold boot of the generation that last booted (0: a cold boot). */
  readonly kexecCount: number;
  /** That generation's release ('' when unknown). */
  readonly release: string;
  readonly trial: TrialRecord | null;
  readonly last: UpgradeOutcome | null;
}

export const EMPTY_BOOT_RECORD: BootRecord = {
  kexecCount: 0,
  release: '',
  trial: null,
  last: null,
};

const utf8 = new TextEncoder();
const utf8Lenient = new TextDecoder('utf-8');

/** Writes `record` at `at` in `v` (a zeroed page). Strings too long are cut at a character boundary. */
export function encodeBootRecord(v: DataView, at: number, record: BootRecord): void {
  v.setUint32(at + REC_MAGIC, RECORD_MAGIC, true);
  v.setUint32(at + REC_SIZE, RECORD_SIZE, true);
  v.setUint32(at + REC_KEXEC_COUNT, u32(record.kexecCount), true);
  putString(v, at + REC_RELEASE, 1, RELEASE_MAX, record.release);
  const t = record.trial;
  if (t !== null) {
    v.setUint32(at + REC_TRIAL_STATE, t.state === 'on-trial' ? 1 : 2, true);
    v.setUint32(at + REC_TRIAL_TRIES, u32(t.tries), true);
    v.setUint32(at + REC_TRIAL_MAX_TRIES, u32(t.maxTries), true);
    v.setUint32(at + REC_TRIAL_PID, u32(t.pid), true);
    v.setUint32(at + REC_TRIAL_DEADLINE, u32(t.deadlineMs), true);
    setField64(v, at + REC_TRIAL_BOOT_BLOCK, t.bootBlock);
    setField64(v, at + REC_TRIAL_STARTED, t.started);
    setField64(v, at + REC_TRIAL_BASE_GENERATION, t.baseGeneration);
    if (/^[0-9a-f]{32}$/.test(t.baseBootId)) {
      new Uint8Array(v.buffer, v.byteOffset + at + REC_TRIAL_BASE_BOOT_ID, 16).set(
        Buffer.from(t.baseBootId, 'hex'),
      );
    }
    putString(v, at + REC_TRIAL_RELEASE, 1, RELEASE_MAX, t.release);
    putString(v, at + REC_TRIAL_REASON, 2, REASON_MAX, t.reason);
  }
  const l = record.last;
  if (l !== null) {
    v.setUint32(at + REC_LAST_OUTCOME, l.outcome === 'good' ? 1 : 2, true);
    v.setUint32(at + REC_LAST_TRIES, u32(l.tries), true);
    setField64(v, at + REC_LAST_AT, l.at);
    putString(v, at + REC_LAST_SUCCESSOR, 1, RELEASE_MAX, l.successor);
    putString(v, at + REC_LAST_REASON, 2, REASON_MAX, l.reason);
  }
}

/**
 * Reads the record at `at` of a header `headerSize` bytes long: the empty
 * record when the header ends before it (version 1) or holds no record.
 * @returns the record, or a string saying what is wrong with it.
 */
export function decodeBootRecord(v: DataView, at: number, headerSize: number): BootRecord | string {
  if (headerSize < at + RECORD_SIZE || v.getUint32(at + REC_MAGIC, true) !== RECORD_MAGIC) {
    return EMPTY_BOOT_RECORD;
  }
  if (v.getUint32(at + REC_SIZE, true) < RECORD_SIZE) return 'boot record is truncated';
  const state = v.getUint32(at + REC_TRIAL_STATE, true);
  const outcome = v.getUint32(at + REC_LAST_OUTCOME, true);
  if (state > 2) return `boot record: unknown trial state ${state}`;
  if (outcome > 2) return `boot record: unknown handover outcome ${outcome}`;
  const bootBlock = getSafeU64(v, at + REC_TRIAL_BOOT_BLOCK);
  const started = getSafeU64(v, at + REC_TRIAL_STARTED);
  const lastAt = getSafeU64(v, at + REC_LAST_AT);
  const baseGeneration = getSafeU64(v, at + REC_TRIAL_BASE_GENERATION);
  if (
    bootBlock === undefined ||
    started === undefined ||
    lastAt === undefined ||
    baseGeneration === undefined
  ) {
    return 'boot record: a 64-bit field is above 2^53';
  }
  return {
    kexecCount: v.getUint32(at + REC_KEXEC_COUNT, true),
    release: getString(v, at + REC_RELEASE, 1, RELEASE_MAX),
    trial:
      state === 0
        ? null
        : {
            state: state === 1 ? 'on-trial' : 'falling-back',
            bootBlock,
            baseGeneration,
            baseBootId: Buffer.from(
              v.buffer,
              v.byteOffset + at + REC_TRIAL_BASE_BOOT_ID,
              16,
            ).toString('hex'),
            tries: v.getUint32(at + REC_TRIAL_TRIES, true),
            maxTries: v.getUint32(at + REC_TRIAL_MAX_TRIES, true),
            pid: v.getUint32(at + REC_TRIAL_PID, true),
            deadlineMs: v.getUint32(at + REC_TRIAL_DEADLINE, true),
            started,
            release: getString(v, at + REC_TRIAL_RELEASE, 1, RELEASE_MAX),
            reason: getString(v, at + REC_TRIAL_REASON, 2, REASON_MAX),
          },
    last:
      outcome === 0
        ? null
        : {
            outcome: outcome === 1 ? 'good' : 'fell-back',
            successor: getString(v, at + REC_LAST_SUCCESSOR, 1, RELEASE_MAX),
            tries: v.getUint32(at + REC_LAST_TRIES, true),
            reason: getString(v, at + REC_LAST_REASON, 2, REASON_MAX),
            at: lastAt,
          },
  };
}

/**
 * `text` as UTF-8 of at most `max` bytes, cut before a character that does
 * not fit whole.
 */
export function truncateUtf8(text: string, max: number): Uint8Array {
  const bytes = utf8.encode(text);
  if (bytes.length <= max) return bytes;
  let end = max;
  // Back off continuation bytes (10xxxxxx) to the start of the cut character.
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

function putString(v: DataView, at: number, lenBytes: 1 | 2, max: number, text: string): void {
  const bytes = truncateUtf8(text, max);
  if (lenBytes === 1) v.setUint8(at, bytes.length);
  else v.setUint16(at, bytes.length, true);
  new Uint8Array(v.buffer, v.byteOffset + at + lenBytes, bytes.length).set(bytes);
}

/** A length-prefixed string; a length past the slot is cut to it (the crc vouched for the bytes). */
function getString(v: DataView, at: number, lenBytes: 1 | 2, max: number): string {
  const len = Math.min(lenBytes === 1 ? v.getUint8(at) : v.getUint16(at, true), max);
  return utf8Lenient.decode(new Uint8Array(v.buffer, v.byteOffset + at + lenBytes, len));
}

function u32(x: number): number {
  return Number.isInteger(x) && x >= 0 ? Math.min(x, 0xffffffff) : 0;
}

/** A u64 field; what is not a byte count or a time (not a safe integer, negative) is stored as 0. */
function setField64(v: DataView, at: number, x: number): void {
  setU64(v, at, Number.isSafeInteger(x) && x >= 0 ? x : 0);
}
