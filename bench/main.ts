/**
 * `npm run bench [-- NAME... [--OPTION[=VALUE]...]]`: runs the benchmarks in
 * bench/NAME.bench.ts (all of them when no name is given). Each prints its
 * own table, side by side with its named peer, and BENCHMARKS.md records the
 * figures. `--help` lists each benchmark's options (the comment at the top of
 * its file says what they do); an option none of the named benchmarks reads
 * is refused, so a typo does not run an hour of defaults.
 */
import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface BenchModule {
  /** Runs the benchmark and prints its results; `args` are the words after the name. */
  run(args: string[]): Promise<void>;
  /** The options run() reads, by name without the dashes. */
  options: readonly string[];
}

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here)
  .filter((f) => f.endsWith('.bench.js'))
  .map((f) => f.slice(0, -'.bench.js'.length))
  .sort();

const words = process.argv.slice(2);
const flags = words.filter((a) => a.startsWith('-'));
const wanted = words.filter((a) => !a.startsWith('-'));
const names = wanted.length > 0 ? wanted : available;
for (const name of names) {
  if (!available.includes(name)) {
    process.stderr.write(`bench: no benchmark named ${name} (have: ${available.join(', ')})\n`);
    process.exit(2);
  }
}
const mods = new Map<string, BenchModule>();
for (const name of names) mods.set(name, (await import(`./${name}.bench.js`)) as BenchModule);
if (flags.includes('--help') || flags.includes('-h')) {
  process.stdout.write('npm run bench -- [NAME...] [--OPTION[=VALUE]...]\n');
  for (const [name, mod] of mods) {
    const list = mod.options.map((o) => `--${o}`).join(' ');
    process.stdout.write(`  ${name.padEnd(10)} ${list || '(no options)'}\n`);
  }
  process.stdout.write('What each option does: the comment at the top of bench/NAME.bench.ts.\n');
  process.exit(0);
}
for (const flag of flags) {
  const name = flag.replace(/^--?/, '').split('=')[0];
  if (![...mods.values()].some((m) => m.options.includes(name))) {
    process.stderr.write(
      `bench: no benchmark of ${names.join(', ')} takes ${flag} (npm run bench -- ${[...wanted, '--help'].join(' ')} lists their options)\n`,
    );
    process.exit(2);
  }
}
for (const [name, mod] of mods) {
  process.stdout.write(`\n== ${name} ==\n`);
  await mod.run(flags);
}
