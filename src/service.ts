/**
 * What boot() does for a program run as a service: its release, its
 * default device, the descriptors a service manager passed it (socket
 * activation, the fd store) or a predecessor moved, and a pending handover
 * that a cold start finds (a restart handover, or a try that died).
 */

import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { messageOf } from './base/errors.js';
import { hex, hexDigits } from './base/hex.js';
import { getU64 } from './base/u64.js';
import { BootError } from './boot/errors.js';
import { readPendingBootBlock } from './kernel/boot-block-read.js';
import {
  type ListenFd,
  parseStoreName,
  removeStoredFd,
  storeName,
  takeListenFds,
} from './kexec/fd-store.js';
import { ENV_BOOT, ENV_DEVICE_FD, mainScriptRealPath } from './kexec/process-platform.js';
import { HDR_DEVICE_SIZE } from './memory/abi.js';
import { EMPTY_BOOT_RECORD } from './memory/boot-record.js';
import { crc32c } from './memory/crc32c.js';
import { PAGE_SIZE } from './memory/device.js';
import {
  type DeviceHeader,
  decodeDeviceHeader,
  readDeviceHeader,
  writeDeviceHeader,
} from './memory/header.js';
import { hotplugMemory } from './memory/hotplug.js';
import type { MappedDevice } from './memory/mapped.js';
import { failTry } from './trial-fail.js';

/** Moved descriptors handed on to a next try: `<store name>=<fd>` and `@<old number>=<fd>`, comma-separated. */
export const ENV_FD_MAP = 'LIVEKEXEC_FD_MAP';

/** Descriptors of the predecessor that are not at their old number here. */
const byName = new Map<string, number>();
const byNumber = new Map<number, number>();
/** What the service manager passed that no LUO session claims (socket activation). */
const passed: ListenFd[] = [];

/**
 * Takes LISTEN_FDS (a .socket unit's sockets, and what the fd store kept
 * under livekexec's names) and LIVEKEXEC_FD_MAP from the environment. Once
 * per process; later calls only return what was taken.
 */
export function takeServiceFds(): readonly ListenFd[] {
  if (taken) return passed;
  taken = true;
  const env = process.env;
  const map = env[ENV_FD_MAP];
  delete env[ENV_FD_MAP];
  for (const item of map ? map.split(',') : []) {
    const eq = item.lastIndexOf('=');
    const fd = Number(item.slice(eq + 1));
    if (eq < 1 || !Number.isSafeInteger(fd) || fd < 0) continue;
    const key = item.slice(0, eq);
    if (key.startsWith('@')) byNumber.set(Number(key.slice(1)), fd);
    else byName.set(key, fd);
  }
  for (const l of takeListenFds(env)) {
    if (parseStoreName(l.name) !== null) byName.set(l.name, l.fd);
    else passed.push(l);
  }
  return passed;
}
let taken = false;

/** A descriptor the predecessor had at `fd`, received here at `at` (preloaded successors). */
export function movedFd(fd: number, at: number): void {
  if (fd !== at) byNumber.set(fd, at);
}

/** Where the file preserved as (session, token) at `fd` in the predecessor is now, when it moved. */
export function inheritedFd(session: string, token: bigint, fd: number): number | undefined {
  return byName.get(storeName(session, token)) ?? byNumber.get(fd);
}

/** The moves, for the environment of a next try. */
export function fdMapEnv(): Record<string, string> {
  const items = [
    ...[...byName].map(([k, fd]) => `${k}=${fd}`),
    ...[...byNumber].map(([n, fd]) => `@${n}=${fd}`),
  ];
  return items.length > 0 ? { [ENV_FD_MAP]: items.join(',') } : {};
}

/** The descriptors a next try must inherit: every moved one. */
export function movedFds(): number[] {
  return [...byName.values(), ...byNumber.values()];
}

/** The handover is taken for good: the fd store may forget what it kept for it. */
export function forgetStoredFds(): void {
  for (const name of byName.keys()) removeStoredFd(name);
}

/**
 * Descriptors the service manager passed that no handover claims: a
 * `.socket` unit's listening sockets (socket activation), named by its
 * FileDescriptorName= ('unknown' when unnamed). Empty outside a service
 * manager. A program listens on one with `server.listen({ fd })` and may
 * preserve it for its successors like any other.
 */
export function listenFds(): readonly ListenFd[] {
  return takeServiceFds();
}

/**
 * This program's release: `name@version` of the package.json nearest its
 * main script, else the script's name.
 */
export function defaultRelease(): string {
  const main = mainScript();
  if (main === null) return 'node';
  for (let dir = dirname(main), up = 0; up < 32; dir = dirname(dir), up++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: unknown;
        version?: unknown;
      };
      if (typeof pkg.name === 'string' && typeof pkg.version === 'string') {
        return `${pkg.name}@${pkg.version}`;
      }
    } catch {
      // none here, or not JSON: look further up
    }
    if (dirname(dir) === dir) break;
  }
  return basename(main);
}

/**
 * /dev/shm/livekexec-<script name>-<8 hex digits of the main script's real
 * path> (the temp directory without /dev/shm): two programs both called
 * index.mjs get two devices, and one program reached through a symlink
 * gets the same device.
 */
export function defaultDevicePath(): string {
  const main = mainScript();
  const stem = main ? basename(main).replace(/\.[cm]?[jt]s$/, '') : 'node';
  const tag = hexDigits(crc32c(Buffer.from(main ?? process.execPath, 'utf8')), 8);
  const name = `livekexec-${stem.replace(/[^A-Za-z0-9._-]/g, '_') || 'node'}-${tag}`;
  return join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), name);
}

function mainScript(): string | null {
  return mainScriptRealPath() ?? null;
}

/**
 * A cold start found a handover pending on `device`: its owner is gone
 * (this process holds the device's lock), so it is a restart handover, or a
 * try that died without counting itself. Returns the boot block to boot as
 * the successor. A try that died is counted first: then this process execs
 * the trial loader (the next try, or the fallback) and this never returns.
 * @throws BootError ESTALE when the pending block cannot be booted; the
 *   message names `discardPending`.
 */
export function takePendingHandover(device: MappedDevice, discard: boolean): number | null {
  const header = peekHeader(device);
  if (header.bootBlock === 0) return null;
  const record = header.record ?? EMPTY_BOOT_RECORD;
  if (discard) {
    hotplugMemory(device);
    const now = readDeviceHeader(device);
    writeDeviceHeader(device, { ...now, bootBlock: 0, record: { ...record, trial: null } });
    return null;
  }
  try {
    readPendingBootBlock(device, header, header.bootBlock);
  } catch (err) {
    throw new BootError(
      'ESTALE',
      `${device.path}: a handover is pending at ${hex(header.bootBlock)} but cannot be booted (${messageOf(err)}); boot({ discardPending: true }) or 'livekexec device discard-pending ${device.path}' drops it (its preserved memory stays reserved)`,
    );
  }
  const trial = record.trial;
  if (trial !== null && trial.bootBlock === header.bootBlock && trial.pid !== 0) {
    // A try ran in a process that is gone (this one holds the lock) without
    // counting itself: killed, or crashed in native code. Count it.
    process.env[ENV_BOOT] = `${device.path}@${hex(header.bootBlock)}`;
    process.env[ENV_DEVICE_FD] = String(device.fd);
    Object.assign(process.env, fdMapEnv());
    failTryNow(
      `the try in PID ${trial.pid} ended without exiting (killed by a signal, or crashed)`,
    );
  }
  return header.bootBlock;
}

/**
 * The header as written, on a device that may have grown since (the boot
 * brings the new memory online; until then the header records the old size).
 */
function peekHeader(device: MappedDevice): DeviceHeader {
  const page0 = device.bytes(0, Math.min(device.size, PAGE_SIZE));
  const recorded = getU64(
    new DataView(page0.buffer, page0.byteOffset, page0.length),
    HDR_DEVICE_SIZE,
  );
  const size = recorded > 0 && recorded < device.size ? recorded : device.size;
  return decodeDeviceHeader(page0, size, device.name);
}

/** Arms a trial for this process only to fail it at once (the loader counts it). */
function failTryNow(reason: string): never {
  armNow();
  failTry(reason);
  throw new BootError('ESTALE', `cannot start the trial loader: ${reason}`);
}

let armNow: () => void = () => {};

/** process.ts tells how to arm a trial (it knows the loader's URL and the descriptors). */
export function setTrialArmer(arm: () => void): void {
  armNow = arm;
}
