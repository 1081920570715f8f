/**
 * `livekexec demo`: the example service examples/kv-cache upgraded in place
 * under load, three times, with what each upgrade kept and cost. Needs
 * nothing but the built package: the device is a temporary file, removed at
 * the end (also on Ctrl-C), like the service process.
 */
import type { Command } from 'commander';
import { type DemoReport, runDemo, type UpgradeReport } from '../../examples/kv-cache/driver.js';
import { ExitCode } from './cli-exit.js';

/** The device grows with --keys (about 2.6 KB a key): 4 million keys take about 10 GB of tmpfs. */
const MAX_KEYS = 4_000_000;

interface DemoCliOptions {
  json?: boolean;
  upgrades: string;
  keys: string;
  seed: string;
  workers: string;
}

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description(
      'run examples/kv-cache, fill it, upgrade it in place under load and check each upgrade (exit 1 if a check fails)',
    )
    .option('--json', 'print the report as a JSON object')
    .option('--upgrades <n>', 'in-place upgrades (to versions 2, 3, ...)', '3')
    .option(
      '--keys <n>',
      `keys to fill before upgrading (the device is sized from it; at most ${MAX_KEYS})`,
      '5000',
    )
    .option('--seed <n>', 'seed of the values', '1')
    .option('--workers <n>', 'concurrent request loops during the upgrades', '4')
    .action((opts: DemoCliOptions) => demo(opts));
}

async function demo(opts: DemoCliOptions): Promise<void> {
  const json = opts.json === true;
  const upgrades = count('--upgrades', opts.upgrades, 1, 100);
  const keys = count('--keys', opts.keys, 1, MAX_KEYS);
  const seed = count('--seed', opts.seed, 0, 2 ** 32 - 1);
  const workers = count('--workers', opts.workers, 1, 64);
  const abort = new AbortController();
  const onSigint = (): void => abort.abort();
  process.once('SIGINT', onSigint);
  let report: DemoReport;
  try {
    report = await runDemo({
      upgrades,
      keys,
      seed,
      workers,
      signal: abort.signal,
      log: json ? undefined : (line) => process.stderr.write(`  ${line}\n`),
    });
  } catch (err) {
    if (abort.signal.aborted) {
      process.stderr.write('livekexec demo: interrupted; service stopped, device removed\n');
      throw new ExitCode(130);
    }
    throw err;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : render(report));
  if (!report.ok) throw new ExitCode(1);
}

/** @throws ExitCode 2 (after saying why) for a value that is not an integer in range. */
function count(name: string, text: string, min: number, max: number): number {
  const n = /^\d{1,10}$/.test(text) ? Number(text) : Number.NaN;
  if (!(n >= min && n <= max)) {
    process.stderr.write(
      `livekexec demo: ${name} must be an integer in ${min}..${max}, got '${text}'\n`,
    );
    throw new ExitCode(2);
  }
  return n;
}

function render(r: DemoReport): string {
  const rows: string[][] = [
    ['upgrade', 'version', 'generation', 'downtime', 'entries kept', 'PID', 'failed requests'],
    ...r.upgrades.map((u, i) => [
      String(i + 1),
      `${u.from} -> ${u.to}`,
      String(u.generation),
      Number.isFinite(u.downtimeMs) ? `${u.downtimeMs.toFixed(1)} ms` : '-',
      `${u.entriesKept}/${u.entries}${u.entriesKept === u.entries ? '' : ' LOST'}`,
      `${u.pid} ${u.pidUnchanged ? 'unchanged' : 'CHANGED'}`,
      String(u.failed),
    ]),
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  const table = rows.map((row) =>
    row
      .map((cell, c) => cell.padEnd(widths[c]))
      .join('  ')
      .trimEnd(),
  );
  const lines = [
    `kv-cache (examples/kv-cache): ${r.keys} keys, ${(r.valueBytes / 1e6).toFixed(1)} MB of values in preserved memory, PID ${r.pid}`,
    '',
    ...table,
    '',
    `${r.requests.total} requests from a second process, ${r.requests.failed} failed, ${r.requests.wrongValues} wrong values, ${(r.durationMs / 1000).toFixed(1)} s`,
    verdict(r),
  ];
  return `${lines.join('\n')}\n`;
}

function verdict(r: DemoReport): string {
  const n = r.upgrades.length;
  if (r.ok) {
    return `PASS: ${n} in-place upgrades, every entry kept, PID unchanged, 0 failed requests (max downtime ${maxDowntime(r.upgrades)} ms)`;
  }
  return `FAIL: ${r.problems.slice(0, 3).join('; ')}`;
}

function maxDowntime(upgrades: UpgradeReport[]): string {
  return Math.max(...upgrades.map((u) => u.downtimeMs)).toFixed(1);
}
