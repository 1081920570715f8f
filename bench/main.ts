/**
 * `npm run bench [-- NAME...]`: runs the benchmarks in bench/NAME.bench.ts
 * (all of them when no name is given). Each prints its own table, side by
 * side with its named peer, and BENCHMARKS.md records the figures.
 */
import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface BenchModule {
  /** Runs the benchmark and prints its results; `args` are the words after the name. */
  run(args: string[]): Promise<void>;
}

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here)
  .filter((f) => f.endsWith('.bench.js'))
  .map((f) => f.slice(0, -'.bench.js'.length))
  .sort();

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const names = wanted.length > 0 ? wanted : available;
for (const name of names) {
  if (!available.includes(name)) {
    process.stderr.write(`bench: no benchmark named ${name} (have: ${available.join(', ')})\n`);
    process.exit(2);
  }
}
for (const name of names) {
  process.stdout.write(`\n== ${name} ==\n`);
  const mod = (await import(`./${name}.bench.js`)) as BenchModule;
  await mod.run(process.argv.slice(2).filter((a) => a.startsWith('-')));
}
