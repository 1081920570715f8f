/**
 * `livekexec device check PATH`: an fsck for a device. Reads it in place
 * (no lock, no mapping) and says whether each part a successor would read is
 * sound: the header, a pending boot block, the KHO handover, the pools.
 */
import { messageOf } from '../base/errors.js';
import { hex } from '../base/hex.js';
import { readPendingBootBlock } from '../kernel/boot-block-read.js';
import { inspectDeviceHandover } from '../kho/status.js';
import type { MemoryDevice } from '../memory/device.js';
import { type DeviceHeader, readDeviceHeader } from '../memory/header.js';
import { E820 } from '../memory/memmap-types.js';
import { ReadonlyDevice } from '../memory/readonly.js';
import { inspectPools } from '../pmpool/status.js';
import { ExitCode } from './cli-exit.js';

export interface CheckFinding {
  level: 'ok' | 'warning' | 'error';
  part: string;
  detail: string;
}

/** Every finding about the device at `path`; an error means a successor would refuse or lose something. */
export function checkDevice(path: string): CheckFinding[] {
  const d = ReadonlyDevice.open(path);
  try {
    let header: DeviceHeader;
    try {
      header = readDeviceHeader(d);
    } catch (err) {
      return [{ level: 'error', part: 'header', detail: messageOf(err) }];
    }
    const out: CheckFinding[] = [
      {
        level: 'ok',
        part: 'header',
        detail: `generation ${header.generation}, ${header.memmap.length} memory map entries`,
      },
    ];
    out.push(checkBootBlock(d, header));
    if (header.bootBlock !== 0) out.push(...checkKhoHandover(d));
    out.push(...checkPools(d, header));
    return out;
  } finally {
    d.close();
  }
}

/** The pending boot block, as a successor would read it (none pending is fine). */
export function checkBootBlock(device: MemoryDevice, header: DeviceHeader): CheckFinding {
  const part = 'boot block';
  if (header.bootBlock === 0) return { level: 'ok', part, detail: 'none pending' };
  try {
    const bb = readPendingBootBlock(device, header, header.bootBlock);
    return {
      level: 'ok',
      part,
      detail: `pending at ${hex(header.bootBlock)} for generation ${bb.generation}`,
    };
  } catch (err) {
    return { level: 'error', part, detail: `a successor would refuse it: ${messageOf(err)}` };
  }
}

/** The pending KHO handover: unreadable or a tree checksum that fails is an error, a bad subtree a warning. */
export function checkKhoHandover(device: MemoryDevice): CheckFinding[] {
  const kho = inspectDeviceHandover(device);
  if (kho.error) return [{ level: 'error', part: 'kho', detail: kho.error }];
  const h = kho.handover;
  if (!h) return [];
  const out: CheckFinding[] = [
    h.checksumOk
      ? {
          level: 'ok',
          part: 'kho',
          detail: `${h.preserved.reduce((n, o) => n + o.bytes, 0)} bytes preserved, ${h.subtrees.length} subtrees`,
        }
      : {
          level: 'error',
          part: 'kho',
          detail:
            'the preserved-memory tree does not match its checksum: a successor will refuse revival',
        },
  ];
  for (const t of h.subtrees) {
    if (t.error) out.push({ level: 'warning', part: `kho subtree ${t.name}`, detail: t.error });
  }
  return out;
}

/** Each range the map reserves for the kernel: a readable pool, or a warning. */
export function checkPools(device: MemoryDevice, header: DeviceHeader): CheckFinding[] {
  const kept = header.memmap
    .filter((r) => r.type === E820.RESERVED_KERN)
    .map((r) => ({ base: r.addr, size: r.size }));
  return inspectPools(device, kept).map((p) =>
    p.ok
      ? {
          level: 'ok',
          part: `pmpool at ${hex(p.base)}`,
          detail: `${p.stats.usedPages} of ${p.stats.totalPages} pages used${p.pending.length ? `; in flight: ${p.pending.join(', ')}` : ''}`,
        }
      : {
          level: 'warning',
          part: `range at ${hex(p.base)}`,
          detail: `reserved by kernel, not a readable pool: ${p.error}`,
        },
  );
}

export function runDeviceCheck(path: string, json: boolean): void {
  const findings = checkDevice(path);
  if (json)
    process.stdout.write(
      `${JSON.stringify({ path, ok: !findings.some((f) => f.level === 'error'), findings }, null, 2)}\n`,
    );
  else {
    for (const f of findings) process.stdout.write(`${f.level.padEnd(7)} ${f.part}: ${f.detail}\n`);
  }
  if (findings.some((f) => f.level === 'error')) throw new ExitCode(1);
}
