/**
 * npm run torture: the standing fault suite. Seeded, reproducible fault
 * families (damaged metadata booted by emulated and real successors, SIGKILL
 * at random moments of real workloads), every outcome classified; prints a
 * tally and exits 1 on any unacceptable outcome, with the one command that
 * reproduces it. `npm run torture -- --help` for the options.
 */
import { randomInt } from 'node:crypto';
import { Command, InvalidArgumentError } from 'commander';
import { allFamilies, EmulatedRunner, type Family } from './families.js';
import { type CaseResult, OUTCOMES, type Outcome, unacceptable } from './outcome.js';

interface Options {
  seed?: number;
  time: number;
  cases?: number;
  family?: string[];
  case?: number;
  timeout: number;
  processTimeout: number;
  verbose?: boolean;
}

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number');
  return n;
};

const program = new Command('torture')
  .description('the standing fault suite: corrupted metadata and SIGKILL, every outcome classified')
  .option('--seed <n>', 'the run seed (default: random, printed)', int)
  .option('--time <seconds>', 'stop starting cases after this long', int, 120)
  .option('--cases <n>', 'at most this many cases per family', int)
  .option('--family <names>', 'only these families (comma-separated)', (v) => v.split(','))
  .option('--case <i>', 'run only case i of the families given (reproduce one case)', int)
  .option('--timeout <ms>', 'per-case limit of an emulated case (a hang past it)', int, 15_000)
  .option('--process-timeout <ms>', 'per-process limit of a real-process case', int, 60_000)
  .option('--verbose', 'print every case');

const opts = program.parse().opts<Options>();
const seed = opts.seed ?? randomInt(2 ** 32);
const emulated = new EmulatedRunner(opts.timeout);
const families = allFamilies(emulated, opts.processTimeout).filter(
  (f) => !opts.family || opts.family.includes(f.name),
);
if (opts.family) {
  const unknown = opts.family.filter((n) => !families.some((f) => f.name === n));
  if (unknown.length > 0) program.error(`unknown family: ${unknown.join(', ')}`);
}

console.log(
  `torture: seed ${seed}, node ${process.version}, families ${families.map((f) => f.name).join(' ')}`,
);
const tally = new Map<string, Map<Outcome, number>>(families.map((f) => [f.name, new Map()]));
const bad: string[] = [];
const started = Date.now();

function record(f: Family, index: number, r: CaseResult): void {
  const row = tally.get(f.name)!;
  row.set(r.outcome, (row.get(r.outcome) ?? 0) + 1);
  const line = `${f.name} case ${index}: ${r.outcome}`;
  if (unacceptable(r.outcome)) {
    const repro = `npm run torture -- --seed ${seed} --family ${f.name} --case ${index}`;
    bad.push(`${line}\n  fault: ${r.fault}\n  ${r.detail}\n  reproduce: ${repro}`);
    console.log(`UNACCEPTABLE ${bad.at(-1)}`);
  } else if (opts.verbose || opts.case !== undefined) {
    console.log(`${line}\n  fault: ${r.fault}\n  ${r.detail}`);
  }
}

if (opts.case !== undefined) {
  for (const f of families) record(f, opts.case, await f.run(seed, opts.case));
} else {
  const next = new Map(families.map((f) => [f.name, 0]));
  const full = (f: Family) => opts.cases !== undefined && next.get(f.name)! >= opts.cases;
  const late = () => Date.now() - started > opts.time * 1000;
  while (!late() && !families.every(full)) {
    for (const f of families) {
      for (let b = 0; b < f.burst && !full(f) && !late(); b++) {
        const index = next.get(f.name)!;
        next.set(f.name, index + 1);
        record(f, index, await f.run(seed, index));
      }
    }
  }
}
emulated.close();
printTally();
const secs = ((Date.now() - started) / 1000).toFixed(1);
if (bad.length > 0) {
  console.log(
    `\nFAIL: ${bad.length} unacceptable outcomes in ${secs} s (seed ${seed}):\n${bad.join('\n')}`,
  );
  process.exitCode = 1;
} else {
  console.log(`\nPASS: no unacceptable outcome in ${secs} s (seed ${seed})`);
}

function printTally(): void {
  const cols = ['family', ...OUTCOMES, 'cases'];
  const rows = families.map((f) => {
    const row = tally.get(f.name)!;
    const total = [...row.values()].reduce((a, b) => a + b, 0);
    return [f.name, ...OUTCOMES.map((o) => String(row.get(o) ?? 0)), String(total)];
  });
  const sums = cols.slice(1).map((_, i) => String(rows.reduce((a, r) => a + Number(r[i + 1]), 0)));
  rows.push(['total', ...sums]);
  const width = cols.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]) =>
    r.map((c, i) => (i === 0 ? c.padEnd(width[i]) : c.padStart(width[i]))).join('  ');
  console.log(`\n${fmt(cols)}\n${fmt(cols.map((_, i) => '-'.repeat(width[i])))}`);
  for (const r of rows) console.log(fmt(r));
  console.log(
    `(acceptable: refused, cold, full, partial; unacceptable: untyped, hang, double, wrong)`,
  );
}
