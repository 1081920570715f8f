/** Small timing helpers shared by the benchmarks. */
import { readFileSync } from 'node:fs';

/** Runs `fn` repeatedly for about `ms` milliseconds and returns calls per second. */
export function rate(fn: () => void, ms = 500): number {
  fn(); // warm up
  let calls = 0;
  const start = process.hrtime.bigint();
  const limit = BigInt(ms) * 1_000_000n;
  let elapsed = 0n;
  do {
    fn();
    calls++;
    elapsed = process.hrtime.bigint() - start;
  } while (elapsed < limit);
  return calls / (Number(elapsed) / 1e9);
}

/** Milliseconds taken by one call of `fn` (best of `runs`). */
export function bestMs(fn: () => void, runs = 3): number {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return best;
}

/** Prints rows as an aligned table. */
export function table(head: string[], rows: (string | number)[][]): void {
  const cells = [head, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? fmt(c) : c)))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)));
  for (const r of cells) {
    process.stdout.write(`${r.map((c, i) => String(c ?? '').padEnd(widths[i])).join('  ')}\n`);
  }
}

function fmt(n: number): string {
  if (n >= 100) return Math.round(n).toLocaleString('en-US');
  return n.toPrecision(3);
}

/** A stamp a benchmark program appended (bench/fixtures/handover-common.mjs): CLOCK_MONOTONIC ns. */
export interface Stamp {
  event: string;
  pid: number;
  gen: number;
  ns: string;
  message?: string;
  [field: string]: unknown;
}

/** The stamps the generations appended to `file` (none if it was never written). */
export function readStamps(file: string): Stamp[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Stamp);
}

/** `--name=N`, a whole number in 1..max, or `fallback` when absent. */
export function intOption(
  args: readonly string[],
  name: string,
  fallback: number,
  max: number,
): number {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  const n = a === undefined ? fallback : Number(a.slice(name.length + 3));
  if (!Number.isInteger(n) || n < 1 || n > max)
    throw new Error(`--${name} takes 1..${max}, not ${a}`);
  return n;
}

/** The median (the upper one of an even count). */
export function median(xs: readonly number[]): number {
  return [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;
}
