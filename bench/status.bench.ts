/**
 * `npm run bench -- status [--quick]`: what a serving process pays every
 * second to publish its status (kernel.publishStatus(): counters, lists
 * and the memory layout, encoded and written into the status area), and
 * the memory layout alone, on fragmented emulated devices of 64 MiB, 1 GiB
 * and 4 GiB; side by side in the same run with one scrape of prom-client's
 * default Node.js metrics (collectDefaultMetrics + registry.metrics()),
 * which such a service already pays. `--quick` stops at 1 GiB.
 *
 * Fragmented: half the device allocated as order-0 folios, every other one
 * freed again, 1 in 64 of the rest preserved in KHO, 1 in 16 saved in PKRAM,
 * and one page allocated and freed before each measurement so nothing
 * cached stands in for the work.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Kernel } from '../src/kernel/kernel.js';
import { Machine } from '../src/machine.js';
import type { Folio } from '../src/mm/folio.js';
import { table } from './_harness.js';

const MiB = 1024 * 1024;
const ROUNDS = 40;

function fragmented(size: number): Kernel {
  const k = Machine.create({ size, status: true }).boot('kho=on');
  const folios: Folio[] = [];
  for (let i = 0; i < size / 4096 / 2; i++) folios.push(k.allocPages(0) as Folio);
  for (let i = 0; i < folios.length; i += 2) k.freePages(folios[i] as Folio);
  for (let i = 1; i < folios.length; i += 64) k.kho.preserveFolio(folios[i] as Folio);
  const node = k.pkram.prepareSave('bench');
  const obj = node.prepareSaveObj();
  for (let i = 3; i < folios.length; i += 16) obj.saveFolio(folios[i] as Folio, i);
  obj.finishSaveObj();
  node.finishSave();
  return k;
}

/** Median ms of `fn` over ROUNDS calls, each after a page changed state. */
function medianMs(k: Kernel | null, fn: () => unknown): number {
  const times: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    if (k) k.freePages(k.allocPages(0) as Folio);
    const t0 = process.hrtime.bigint();
    fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return times.sort((a, b) => a - b)[ROUNDS >> 1] as number;
}

/** The options run() reads (`--NAME` or `--NAME=VALUE`); main.ts refuses others. */
export const options: readonly string[] = ['quick'];

export async function run(args: string[]): Promise<void> {
  const sizes = args.includes('--quick')
    ? [64 * MiB, 1024 * MiB]
    : [64 * MiB, 1024 * MiB, 4096 * MiB];
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const rows: (string | number)[][] = [];
  for (const size of sizes) {
    const k = fragmented(size);
    const runs = k.memoryLayout().runs.length;
    const layoutMs = medianMs(k, () => k.memoryLayout());
    const publishMs = medianMs(k, () => k.publishStatus());
    const metricsMs = medianMs(k, () => k.metrics());
    // prom-client's scrape is async (collectors may await); timed to its promise's end.
    const scrapes: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const t0 = process.hrtime.bigint();
      await registry.metrics();
      scrapes.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    const scrapeMs = scrapes.sort((a, b) => a - b)[ROUNDS >> 1] as number;
    rows.push([`${size / MiB} MiB`, runs, layoutMs, publishMs, metricsMs, scrapeMs]);
  }
  process.stdout.write(`median of ${ROUNDS} calls, each after a page changed state\n`);
  table(
    [
      'device',
      'layout runs',
      'memoryLayout ms',
      'publishStatus ms',
      'kernel.metrics ms',
      'prom-client default scrape ms',
    ],
    rows,
  );
}
