/**
 * `livekexec device check PATH`: an fsck for a device. Reads it in place
 * (no lock, no mapping) and says whether each part a successor would read is
 * sound: the header, a pending boot block, the KHO handover, the pools.
 */

import { readPendingBootBlock } from '../kernel/boot-block-read.js';
import { inspectDeviceHandover } from '../kho/status.js';
import { readDeviceHeader } from '../memory/header.js';
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
  const out: CheckFinding[] = [];
  const d = ReadonlyDevice.open(path);
  try {
    let header: ReturnType<typeof readDeviceHeader>;
    try {
      header = readDeviceHeader(d);
    } catch (err) {
      out.push({ level: 'error', part: 'header', detail: (err as Error).message });
      return out;
    }
    out.push({
      level: 'ok',
      part: 'header',
      detail: `generation ${header.generation}, ${header.memmap.length} memory map entries`,
    });
    if (header.bootBlock === 0) {
      out.push({ level: 'ok', part: 'boot block', detail: 'none pending' });
    } else {
      try {
        const bb = readPendingBootBlock(d, header, header.bootBlock);
        out.push({
          level: 'ok',
          part: 'boot block',
          detail: `pending at 0x${header.bootBlock.toString(16)} for generation ${bb.generation}`,
        });
      } catch (err) {
        out.push({
          level: 'error',
          part: 'boot block',
          detail: `a successor would refuse it: ${(err as Error).message}`,
        });
      }
      const kho = inspectDeviceHandover(d);
      if (kho.error) out.push({ level: 'error', part: 'kho', detail: kho.error });
      else if (kho.handover) {
        const h = kho.handover;
        out.push(
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
        );
        for (const t of h.subtrees) {
          if (t.error)
            out.push({ level: 'warning', part: `kho subtree ${t.name}`, detail: t.error });
        }
      }
    }
    const kept = header.memmap
      .filter((r) => r.type === E820.RESERVED_KERN)
      .map((r) => ({ base: r.addr, size: r.size }));
    for (const p of inspectPools(d, kept)) {
      out.push(
        p.ok
          ? {
              level: 'ok',
              part: `pmpool at 0x${p.base.toString(16)}`,
              detail: `${p.stats.usedPages} of ${p.stats.totalPages} pages used${p.pending.length ? `; in flight: ${p.pending.join(', ')}` : ''}`,
            }
          : {
              level: 'warning',
              part: `range at 0x${p.base.toString(16)}`,
              detail: `reserved by kernel, not a readable pool: ${p.error}`,
            },
      );
    }
  } finally {
    d.close();
  }
  return out;
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
