/**
 * Kexec metadata (layout in abi.ts): the release that wrote a boot block,
 * the kexec count since a cold boot, and the boot counting of the successor
 * with the command to retry and the last good one to fall back to.
 */
import {
  KMETA_COMMAND_LEN,
  KMETA_COMMAND_MAX,
  KMETA_COMMAND_OFF,
  KMETA_DEADLINE_MS,
  KMETA_FALLBACK,
  KMETA_FLAG_REQUIRE_GOOD,
  KMETA_FLAG_TRIAL,
  KMETA_FLAGS,
  KMETA_HEADER_SIZE,
  KMETA_KEXEC_COUNT,
  KMETA_PREVIOUS_RELEASE,
  KMETA_RELEASE_SIZE,
  KMETA_SUCCESSOR,
  KMETA_TRIES,
  KMETA_VERSION,
  KMETA_VERSION_OFF,
} from './abi.js';
import { BootError } from './errors.js';

/** A program to exec: its working directory, file and full argv. */
export interface KexecCommand {
  readonly cwd: string;
  readonly file: string;
  readonly argv: readonly string[];
}

/** A/B boot counting of the successor. */
export interface BootCounting {
  /** Tries of the successor before the fallback boots (systemd-boot's +N). */
  readonly tries: number;
  /** How long a try has to be marked good (ms). */
  readonly deadlineMs: number;
  /** True: a try not marked good by the deadline fails; false: living that long marks it good. */
  readonly requireGood: boolean;
  readonly successor: KexecCommand;
  /** The last known-good program: the one that wrote the block. */
  readonly fallback: KexecCommand;
}

export interface KexecMetadata {
  /** Kexec boots since the last cold boot, the one this block starts included. */
  readonly kexecCount: number;
  /** The release of the generation that wrote the block. */
  readonly previousRelease: string;
  readonly counting: BootCounting | null;
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** @throws BootError EINVAL for a count or a command that does not fit. */
export function encodeKexecMetadata(m: KexecMetadata): Uint8Array {
  const release = utf8.encode(m.previousRelease);
  if (release.length >= KMETA_RELEASE_SIZE || release.includes(0)) {
    throw new BootError('EINVAL', `release of ${release.length} bytes: at most 64, no NUL`);
  }
  const c = m.counting;
  const successor = c ? encodeCommand(c.successor, 'successor') : new Uint8Array(0);
  const fallback = c ? encodeCommand(c.fallback, 'fallback') : new Uint8Array(0);
  const out = new Uint8Array(KMETA_HEADER_SIZE + successor.length + fallback.length);
  const v = new DataView(out.buffer);
  v.setUint32(KMETA_VERSION_OFF, KMETA_VERSION, true);
  v.setUint32(KMETA_KEXEC_COUNT, u32(m.kexecCount, 'kexec count'), true);
  out.set(release, KMETA_PREVIOUS_RELEASE);
  if (c) {
    v.setUint32(
      KMETA_FLAGS,
      KMETA_FLAG_TRIAL | (c.requireGood ? KMETA_FLAG_REQUIRE_GOOD : 0),
      true,
    );
    v.setUint32(KMETA_TRIES, u32(c.tries, 'tries'), true);
    v.setUint32(KMETA_DEADLINE_MS, u32(c.deadlineMs, 'deadline'), true);
    v.setUint32(KMETA_SUCCESSOR + KMETA_COMMAND_OFF, KMETA_HEADER_SIZE, true);
    v.setUint32(KMETA_SUCCESSOR + KMETA_COMMAND_LEN, successor.length, true);
    v.setUint32(KMETA_FALLBACK + KMETA_COMMAND_OFF, KMETA_HEADER_SIZE + successor.length, true);
    v.setUint32(KMETA_FALLBACK + KMETA_COMMAND_LEN, fallback.length, true);
    out.set(successor, KMETA_HEADER_SIZE);
    out.set(fallback, KMETA_HEADER_SIZE + successor.length);
  }
  return out;
}

/**
 * Decodes and checks an entry; nothing is trusted.
 * @throws BootError EFAULT saying what is wrong.
 */
export function decodeKexecMetadata(bytes: Uint8Array): KexecMetadata {
  const bad = (why: string) => new BootError('EFAULT', `kexec metadata: ${why}`);
  if (bytes.length < KMETA_HEADER_SIZE)
    throw bad(`${bytes.length} bytes, at least ${KMETA_HEADER_SIZE} needed`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = v.getUint32(KMETA_VERSION_OFF, true);
  if (version !== KMETA_VERSION)
    throw bad(`version ${version} not supported (expected ${KMETA_VERSION})`);
  const field = bytes.subarray(KMETA_PREVIOUS_RELEASE, KMETA_PREVIOUS_RELEASE + KMETA_RELEASE_SIZE);
  const nul = field.indexOf(0);
  if (nul < 0) throw bad('previous release is not NUL-terminated');
  const previousRelease = decodeText(field.subarray(0, nul), 'previous release', bad);
  const flags = v.getUint32(KMETA_FLAGS, true);
  let counting: BootCounting | null = null;
  if (flags & KMETA_FLAG_TRIAL) {
    const tries = v.getUint32(KMETA_TRIES, true);
    if (tries < 1) throw bad('boot counting with 0 tries');
    counting = {
      tries,
      deadlineMs: v.getUint32(KMETA_DEADLINE_MS, true),
      requireGood: (flags & KMETA_FLAG_REQUIRE_GOOD) !== 0,
      successor: decodeCommand(bytes, v, KMETA_SUCCESSOR, 'successor', bad),
      fallback: decodeCommand(bytes, v, KMETA_FALLBACK, 'fallback', bad),
    };
  }
  return { kexecCount: v.getUint32(KMETA_KEXEC_COUNT, true), previousRelease, counting };
}

function encodeCommand(c: KexecCommand, what: string): Uint8Array {
  const parts = [c.cwd, c.file, ...c.argv].map((s) => utf8.encode(s));
  if (parts.some((p) => p.includes(0)) || c.file === '' || c.argv.length === 0) {
    throw new BootError('EINVAL', `${what} command: empty, or a string holds a NUL`);
  }
  const total = parts.reduce((n, p) => n + p.length + 1, 0);
  if (total > KMETA_COMMAND_MAX) {
    throw new BootError(
      'EINVAL',
      `${what} command of ${total} bytes (at most ${KMETA_COMMAND_MAX})`,
    );
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length + 1;
  }
  return out;
}

function decodeCommand(
  bytes: Uint8Array,
  v: DataView,
  at: number,
  what: string,
  bad: (why: string) => BootError,
): KexecCommand {
  const off = v.getUint32(at + KMETA_COMMAND_OFF, true);
  const len = v.getUint32(at + KMETA_COMMAND_LEN, true);
  if (off < KMETA_HEADER_SIZE || len > KMETA_COMMAND_MAX || off + len > bytes.length) {
    throw bad(`${what} command [${off}, +${len}) is outside the entry`);
  }
  const body = bytes.subarray(off, off + len);
  if (len === 0 || body[len - 1] !== 0) throw bad(`${what} command is not NUL-terminated`);
  const strings: string[] = [];
  let start = 0;
  for (let i = 0; i < len; i++) {
    if (body[i] !== 0) continue;
    strings.push(decodeText(body.subarray(start, i), `${what} command`, bad));
    start = i + 1;
  }
  if (strings.length < 3 || strings[1] === '') throw bad(`${what} command has no file or argv`);
  return { cwd: strings[0], file: strings[1], argv: strings.slice(2) };
}

function decodeText(b: Uint8Array, what: string, bad: (why: string) => BootError): string {
  try {
    return utf8Strict.decode(b);
  } catch {
    throw bad(`${what} is not UTF-8`);
  }
}

function u32(x: number, what: string): number {
  if (!Number.isInteger(x) || x < 0 || x > 0xffffffff) {
    throw new BootError('EINVAL', `kexec metadata: ${what} ${x} is not a u32`);
  }
  return x;
}
