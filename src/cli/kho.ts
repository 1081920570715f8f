/**
 * `livekexec kho status|check`: what the kernel's debugfs `kho/out` shows for
 * the handover a device holds, and whether a successor will understand it.
 */
import type { Command } from 'commander';
import { hex } from '../base/hex.js';
import { checkHandover, knownCompatibles } from '../kho/compat.js';
import { readFdtAt } from '../kho/device-fdt.js';
import {
  type DeviceHandoverStatus,
  inspectDeviceHandover,
  pendingKhoSetupData,
} from '../kho/status.js';
import { ReadonlyDevice } from '../memory/readonly.js';
import { CliError, ExitCode } from './cli-exit.js';

export function registerKhoCommands(program: Command): void {
  const kho = program.command('kho').description('inspect Kexec HandOver state on a device');
  kho
    .command('status')
    .description(
      'the pending handover (root FDT, sub-FDTs, scratch, preserved memory), like debugfs kho/out',
    )
    .requiredOption('-d, --device <path>', 'device file')
    .option('--json', 'print a JSON object instead')
    .action((opts: { device: string; json?: boolean }) => status(opts.device, opts.json === true));
  kho
    .command('check')
    .description('whether a successor with this command line understands the pending handover')
    .requiredOption('-d, --device <path>', 'device file')
    .option('-c, --cmdline <text>', "the successor's command line", '')
    .option(
      '--compatible <abi...>',
      `ABIs the successor reads (default: this build's: ${knownCompatibles().join(', ')})`,
    )
    .option('--json', 'print a JSON object instead')
    .action((opts: { device: string; cmdline: string; compatible?: string[]; json?: boolean }) =>
      check(opts),
    );
}

function withDevice<T>(path: string, fn: (d: ReadonlyDevice) => T): T {
  const d = ReadonlyDevice.open(path);
  try {
    return fn(d);
  } finally {
    d.close();
  }
}

function status(path: string, json: boolean): void {
  const s = withDevice(path, inspectDeviceHandover);
  if (json) {
    process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
    return;
  }
  process.stdout.write(render(path, s));
}

function render(path: string, s: DeviceHandoverStatus): string {
  const out: string[] = [`device: ${path} (generation ${s.generation})`];
  for (const r of s.preservedRanges)
    out.push(`preserved: [mem ${hex(r.base, 16)}-${hex(r.base + r.size - 1, 16)}]`);
  if (s.pendingBootBlock === 0) {
    out.push('kho/out: no handover pending (none committed, or the successor consumed it)');
    return `${out.join('\n')}\n`;
  }
  out.push(`boot block: ${hex(s.pendingBootBlock, 16)} (pending)`);
  if (s.error) out.push(`kho/out: cannot read the handover: ${s.error}`);
  const h = s.handover;
  if (!h) return `${out.join('\n')}\n`;
  out.push('kho/out/fdt:', h.fdt.trimEnd());
  for (const a of h.scratch) {
    out.push(
      `kho/out/scratch: ${a.kind}${a.node === undefined ? '' : ` node ${a.node}`} phys ${hex(a.base, 16)} len ${hex(a.size, 16)}`,
    );
  }
  for (const t of h.subtrees) {
    out.push(`kho/out/sub_fdts/${t.name}:`);
    out.push(t.dts ? t.dts.trimEnd() : `  (unreadable: ${t.error})`);
  }
  out.push(
    `preserved memory${h.checksumOk ? '' : ' (tree checksum MISMATCH: the successor will refuse it)'}:`,
  );
  for (const o of h.preserved) out.push(`  order ${o.order}: ${o.blocks} blocks, ${o.bytes} bytes`);
  out.push(`metadata: ${h.metadataBytes} bytes (radix tree pages and root FDT)`);
  return `${out.join('\n')}\n`;
}

function check(opts: {
  device: string;
  cmdline: string;
  compatible?: string[];
  json?: boolean;
}): void {
  const report = withDevice(opts.device, (d) => {
    const s = inspectDeviceHandover(d);
    if (!s.handover) return null;
    const subs = new Map(s.handover.subtrees.map((t) => [t.name, t]));
    const rootBytes = pendingKhoSetupData(d)?.rootFdt;
    if (!rootBytes) return null;
    return checkHandover(
      rootBytes,
      d.size,
      (name) => {
        const t = subs.get(name);
        if (!t?.dts || t.size === undefined) return null;
        return readFdtAt(d, t.phys, t.size);
      },
      { cmdline: opts.cmdline, compatibles: opts.compatible },
    );
  });
  if (!report) throw new CliError('ENOENT', `${opts.device}: no KHO handover is pending`, 2);
  if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    process.stdout.write(`${report.understood ? 'understood' : 'NOT understood'}\n`);
    for (const r of report.reasons) process.stdout.write(`  ${r}\n`);
    for (const n of report.notes) process.stdout.write(`  note: ${n}\n`);
  }
  if (!report.understood) throw new ExitCode(1);
}
