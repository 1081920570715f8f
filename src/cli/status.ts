/**
 * `livekexec status`, `livekexec iomem` and `livekexec map`: what a device
 * holds, live or at rest, read in place without its lock (see status-read.ts).
 */
import { writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { describeSize } from '../memory/heap.js';
import { formatPrometheus, metricFamilies } from '../status/metrics.js';
import { ExitCode } from './cli-exit.js';
import { renderHtml, renderSvg } from './map-picture.js';
import { formatIomem, formatStatus } from './status-format.js';
import { type DeviceStatusView, devicesOfPid, readDeviceStatus } from './status-read.js';

interface Target {
  device?: string;
  pid?: string;
}

function withTarget(cmd: Command): Command {
  return cmd
    .option('-d, --device <path>', 'device file')
    .option('-p, --pid <pid>', 'the process running on the device');
}

/** The device paths a verb looks at. @throws ExitCode 2 on a usage error. */
function targets(opts: Target): string[] {
  if ((opts.device === undefined) === (opts.pid === undefined)) {
    process.stderr.write('livekexec: give exactly one of --device PATH and --pid PID\n');
    throw new ExitCode(2);
  }
  if (opts.device !== undefined) return [opts.device];
  const text = opts.pid as string;
  if (!/^[1-9]\d{0,9}$/.test(text)) {
    process.stderr.write(`livekexec: --pid: '${text}' is not a process id\n`);
    throw new ExitCode(2);
  }
  return devicesOfPid(Number(text));
}

export function registerStatusCommands(program: Command): void {
  withTarget(
    program
      .command('status')
      .description(
        "a device's generation, uptime, pages, preserved memory per subsystem, sessions and handovers, live or at rest",
      ),
  )
    .option('--json', 'print JSON')
    .option('-w, --watch', 'print again every --interval until interrupted')
    .option('--interval <ms>', 'refresh period of --watch', '1000')
    .option('--count <n>', 'with --watch: stop after n prints')
    .action(
      async (
        opts: Target & { json?: boolean; watch?: boolean; interval: string; count?: string },
      ) => {
        const paths = targets(opts);
        const interval = positiveInt(opts.interval, '--interval');
        const count =
          opts.count === undefined ? Number.POSITIVE_INFINITY : positiveInt(opts.count, '--count');
        for (let i = 0; ; ) {
          const views = paths.map(readDeviceStatus);
          const now = Date.now();
          const text = opts.json
            ? `${JSON.stringify(views.length === 1 ? toJson(views[0] as DeviceStatusView, now) : views.map((v) => toJson(v, now)), null, 2)}\n`
            : `${views.map((v) => formatStatus(v, now).join('\n')).join('\n\n')}\n`;
          if (opts.watch && process.stdout.isTTY) process.stdout.write('\x1b[H\x1b[2J');
          process.stdout.write(text);
          i++;
          if (!opts.watch || i >= count) return;
          await new Promise((r) => setTimeout(r, interval));
        }
      },
    );

  withTarget(
    program
      .command('metrics')
      .description(
        "the running generation's Prometheus metrics, read from its status area (for node_exporter's textfile collector)",
      ),
  ).action((opts: Target) => {
    const [path] = targets(opts);
    const v = readDeviceStatus(path as string);
    if (!v.status) {
      process.stderr.write(`livekexec: ${v.path}: ${v.statusError}\n`);
      throw new ExitCode(1);
    }
    process.stdout.write(formatPrometheus(metricFamilies(v.status)));
  });

  withTarget(
    program
      .command('iomem')
      .description(
        'the memory map as /proc/iomem prints it: ranges, and what uses them nested inside',
      ),
  ).action((opts: Target) => {
    const out = targets(opts).map((p) => formatIomem(readDeviceStatus(p)).join('\n'));
    process.stdout.write(`${out.join('\n\n')}\n`);
  });

  withTarget(
    program
      .command('map')
      .description(
        "draw the device's physical memory, one strip per node, with a legend (HTML page or SVG)",
      ),
  )
    .option('--html <file>', 'write an HTML page')
    .option('--svg <file>', 'write an SVG picture')
    .action((opts: Target & { html?: string; svg?: string }) => {
      if (opts.html === undefined && opts.svg === undefined) {
        process.stderr.write('livekexec: map needs --html FILE or --svg FILE\n');
        throw new ExitCode(2);
      }
      const [path] = targets(opts);
      const v = readDeviceStatus(path as string);
      const info = {
        title: `livekexec memory map: ${basename(v.path)}`,
        subtitle:
          `${describeSize(v.header.size)}, generation ${v.header.generation}, ` +
          (v.live
            ? `live (PID ${v.status?.ownerPid}), as published`
            : 'at rest, from the device map') +
          ` at ${new Date(v.live && v.status ? v.status.publishedAtMs : Date.now()).toISOString()}`,
      };
      if (opts.html !== undefined) writeFileSync(opts.html, renderHtml(v.layout, info));
      if (opts.svg !== undefined) writeFileSync(opts.svg, renderSvg(v.layout, info));
    });
}

function positiveInt(text: string, name: string): number {
  const n = /^\d{1,9}$/.test(text) ? Number(text) : 0;
  if (n < 1) {
    process.stderr.write(`livekexec: ${name}: '${text}' is not a positive integer\n`);
    throw new ExitCode(2);
  }
  return n;
}

/** The JSON of `status --json`: the view, with the derived figures a script wants. */
function toJson(v: DeviceStatusView, now: number): unknown {
  const s = v.status;
  return {
    path: v.path,
    generation: v.header.generation,
    uuid: v.header.uuid,
    size: v.header.size,
    owner: v.owner,
    live: v.live,
    uptimeMs: v.live && s ? now - s.bootedAtMs : null,
    pendingBootBlock: v.header.bootBlock === 0 ? null : v.header.bootBlock,
    pending: v.pending,
    status: s,
    statusError: v.statusError ?? null,
    pools: v.pools,
    layoutSource: v.layoutSource,
  };
}
