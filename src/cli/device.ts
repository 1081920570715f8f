/**
 * `livekexec device create|info|rm`: make, inspect and remove memory device
 * files. Errors (DeviceError, BootError) reach main.ts, which prints
 * `livekexec: <message>` and exits 1.
 */
import { unlinkSync } from 'node:fs';
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { hex } from '../base/hex.js';
import { memparseExact } from '../boot/memparse.js';
import { type BootRecord, EMPTY_BOOT_RECORD } from '../memory/boot-record.js';
import { PAGE_SIZE } from '../memory/device.js';
import { DeviceError } from '../memory/errors.js';
import {
  decodeDeviceHeader,
  formatDevice,
  readDeviceHeader,
  writeDeviceHeader,
} from '../memory/header.js';
import { describeSize } from '../memory/heap.js';
import { MappedDevice } from '../memory/mapped.js';
import { MemoryMap } from '../memory/memmap.js';
import { e820TypeName } from '../memory/memmap-types.js';
import { ReadonlyDevice } from '../memory/readonly.js';
import { CliError } from './cli-exit.js';
import { runDeviceCheck } from './device-check.js';
import { describePendingHandover } from './pending.js';

/** Show a progress bar only once preallocation has run this long (ms). */
const PROGRESS_AFTER_MS = 300;

export function registerDeviceCommands(program: Command): void {
  const device = program.command('device').description('create, inspect and remove memory devices');

  device
    .command('create')
    .description('create a memory device file (0600), preallocate it and write its header')
    .argument('<path>', 'device file, e.g. /dev/shm/app')
    .requiredOption('-s, --size <size>', 'device size, memparse syntax (64M, 1G, 0x100000)')
    .action((path: string, opts: { size: string }) => create(path, opts.size));

  device
    .command('info')
    .description('print the device header and its memory map as the kernel prints it')
    .argument('<path>', 'device file')
    .option('--json', 'print a JSON object instead')
    .action((path: string, opts: { json?: boolean }) => info(path, opts.json === true));

  device
    .command('check')
    .description(
      'check that what a successor would read is sound: header, boot block, KHO handover, pools',
    )
    .argument('<path>', 'device file')
    .option('--json', 'print a JSON object instead')
    .action((path: string, opts: { json?: boolean }) => runDeviceCheck(path, opts.json === true));

  device
    .command('discard-pending')
    .description(
      'drop the handover pending on a device no process owns, so the next boot is cold (preserved memory stays reserved)',
    )
    .argument('<path>', 'device file')
    .action((path: string) => discardPending(path));

  device
    .command('rm')
    .description('remove a device file that no process owns')
    .argument('<path>', 'device file')
    .option(
      '-f, --force',
      'remove it even when its header is not a valid livekexec header, or a handover is pending',
    )
    .action((path: string, opts: { force?: boolean }) => remove(path, opts.force === true));
}

function create(path: string, sizeText: string): void {
  const size = memparseExact(sizeText, '--size');
  if (size < 2 * PAGE_SIZE || size % PAGE_SIZE !== 0) {
    throw new DeviceError(
      'EINVAL',
      `--size: ${size} bytes is not a multiple of ${PAGE_SIZE} of at least 2 pages`,
    );
  }
  const progress = progressReporter();
  let dev: MappedDevice;
  try {
    dev = MappedDevice.open(path, {
      create: true,
      exclusive: true,
      size,
      onProgress: progress.update,
    });
  } finally {
    progress.stop();
  }
  try {
    const h = formatDevice(dev);
    process.stdout.write(
      `created ${path}: ${describeSize(h.size)} (${h.size / PAGE_SIZE} pages), uuid ${h.uuid}\n`,
    );
  } catch (err) {
    unlinkSync(path);
    throw err;
  } finally {
    dev.close();
  }
}

/** A cli-progress bar on a TTY that appears only when preallocation is slow. */
function progressReporter(): { update: (done: number, total: number) => void; stop: () => void } {
  const start = Date.now();
  let bar: SingleBar | null = null;
  return {
    update(done, total) {
      if (bar === null) {
        if (!process.stderr.isTTY || Date.now() - start < PROGRESS_AFTER_MS || done >= total)
          return;
        bar = new SingleBar({
          stream: process.stderr,
          format: 'preallocating [{bar}] {percentage}% | {value}/{total} MiB',
          hideCursor: true,
        });
        bar.start(Math.ceil(total / 2 ** 20), 0);
      }
      bar.update(Math.floor(done / 2 ** 20));
    },
    stop() {
      bar?.stop();
    },
  };
}

function info(path: string, json: boolean): void {
  const peek = MappedDevice.peek(path);
  const h = decodeDeviceHeader(peek.page0, peek.size, path);
  const map = MemoryMap.from(h.memmap);
  if (json) {
    const out = {
      path,
      ...h,
      memmap: h.memmap.map((r) => ({ ...r, typeName: e820TypeName(r.type) })),
      owner: peek.ownerPid ?? null,
    };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return;
  }
  const lines = [
    `device:     ${path}`,
    `uuid:       ${h.uuid}`,
    `format:     version ${h.version} (compatible back to ${h.lastCompatVersion})`,
    `size:       ${h.size} bytes (${describeSize(h.size)}), ${h.size / h.pageSize} pages of ${h.pageSize} bytes`,
    `created:    ${new Date(h.created).toISOString()}`,
    `generation: ${h.generation}`,
    `boot block: ${h.bootBlock === 0 ? 'none pending' : `pending at ${hex(h.bootBlock)}`}`,
    `owner:      ${peek.ownerPid === undefined ? 'none (not in use)' : `PID ${peek.ownerPid}`}` +
      (h.ownerPid !== 0 ? `; last written by PID ${h.ownerPid}` : ''),
    ...recordLines(h.record ?? EMPTY_BOOT_RECORD, h.generation),
    'memory map:',
    ...map.print(),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** The boot record as `device info` prints it: release and kexec count, a trial, the last outcome. */
function recordLines(r: BootRecord, generation: number): string[] {
  const out: string[] = [];
  if (generation > 0) {
    const how =
      r.kexecCount === 0 ? 'a cold boot' : `kexec boot ${r.kexecCount} since the cold boot`;
    out.push(`release:    ${r.release || 'unknown'} (${how})`);
  }
  const t = r.trial;
  if (t !== null) {
    const who = t.release || 'the successor';
    out.push(
      t.state === 'on-trial'
        ? `trial:      ${who} on trial, try ${t.tries} of ${t.maxTries} (PID ${t.pid || 'none yet'})` +
            (t.reason ? `; last failure: ${t.reason}` : '')
        : `trial:      ${who} failed ${t.tries} tries (${t.reason}); the fallback boots next`,
    );
  }
  const l = r.last;
  if (l !== null) {
    const when = new Date(l.at).toISOString();
    out.push(
      l.outcome === 'good'
        ? `last:       ${l.successor} marked good after ${l.tries} ${l.tries === 1 ? 'try' : 'tries'} (${when})`
        : `last:       fell back: ${l.successor} marked bad after ${l.tries} ${l.tries === 1 ? 'try' : 'tries'}: ${l.reason} (${when})`,
    );
  }
  return out;
}

function discardPending(path: string): void {
  const dev = MappedDevice.open(path);
  try {
    const h = readDeviceHeader(dev);
    if (h.bootBlock === 0) {
      process.stdout.write(`${path}: no handover is pending\n`);
      return;
    }
    const record = h.record ?? EMPTY_BOOT_RECORD;
    writeDeviceHeader(dev, { ...h, bootBlock: 0, record: { ...record, trial: null } });
    process.stdout.write(
      `${path}: dropped the handover pending at ${hex(h.bootBlock)}; its preserved memory stays reserved\n`,
    );
  } finally {
    dev.close();
  }
}

/**
 * Removes a device no process owns, reading it but never mapping or
 * allocating it. A pending handover (a successor never booted) is lost with
 * the file: that needs --force, and the lines say what goes.
 */
function remove(path: string, force: boolean): void {
  const hold = MappedDevice.holdIdle(path);
  try {
    let lost: string[] = [];
    const reader = ReadonlyDevice.open(path);
    try {
      let header: ReturnType<typeof readDeviceHeader> | null = null;
      try {
        header = readDeviceHeader(reader);
      } catch (err) {
        if (!force) throw err;
      }
      if (header !== null) lost = describePendingHandover(reader, header);
    } finally {
      reader.close();
    }
    if (lost.length > 0 && !force) {
      throw new CliError(
        'EBUSY',
        `${path} holds a pending handover; removing it loses:\n${lost.map((l) => `  ${l}`).join('\n')}\nrun 'livekexec kexec --device ${path} -- PROGRAM' to boot it, 'livekexec device discard-pending ${path}' to drop it, or add --force to remove the device anyway`,
      );
    }
    unlinkSync(path);
    process.stdout.write(`removed ${path}\n`);
    if (lost.length > 0) process.stdout.write(`lost:\n${lost.map((l) => `  ${l}`).join('\n')}\n`);
  } finally {
    hold.release();
  }
}
