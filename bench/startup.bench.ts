/**
 * `npm run bench -- startup [--rounds=N]`: what livekexec adds to a node
 * process's start-up before a successor can boot, two ways side by side in
 * the same run: importing the package (its bundle through V8's code cache,
 * as every successor does), and a user-land startup snapshot holding
 * livekexec already evaluated (`node --snapshot-blob`, built here with
 * `node --build-snapshot` from the same bundle), which issue 14 proposed
 * for the in-place successor. Beside them: node alone (the same program,
 * nothing of ours) and node started from a snapshot of nothing of ours,
 * which is what a user-land snapshot costs by itself.
 *
 * A row imports without the code cache (LIVEKEXEC_CODE_CACHE=off): what a
 * successor pays when V8 refuses the cache. Two more load koffi's addon as
 * boot() does (it maps the device through it), alone and after the import:
 * what every successor pays before its boot's first step, which the last
 * line holds against what issue 14's in-place target (1.25x of node alone)
 * leaves livekexec, a quarter of node alone.
 *
 * Each way is a new process running bench/fixtures/startup-app.mjs, timed
 * from spawn to exit; the ways are interleaved round by round (default 21
 * rounds) and the table gives medians. The import and snapshot ways load
 * no koffi (the import leaves it to boot(), and no snapshot can hold a
 * native addon).
 *
 * The code cache is per node: build with the node that runs the benchmark
 * (`npm run build`), or the import way runs without it (the table says
 * which). Run it pinned and without NODE_EXTRA_CA_CERTS, as the handover
 * benchmark.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { intOption, median, table } from './_harness.js';

/** The options run() reads (`--NAME` or `--NAME=VALUE`); main.ts refuses others. */
export const options: readonly string[] = ['rounds'];

const APP = fileURLToPath(new URL('../../bench/fixtures/startup-app.mjs', import.meta.url));
const BUILDER = fileURLToPath(
  new URL('../../bench/fixtures/startup-snapshot.cjs', import.meta.url),
);
const BUNDLE = fileURLToPath(new URL('../../dist/pkg/livekexec.cjs', import.meta.url));

interface Way {
  label: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
}

/** Builds a snapshot blob (of the bundle, or of nothing of ours when `bundle` is ''). */
function buildSnapshot(blob: string, bundle: string): void {
  const r = spawnSync(process.execPath, ['--snapshot-blob', blob, '--build-snapshot', BUILDER], {
    env: { ...process.env, LKX_BUNDLE: bundle },
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    throw new Error(`startup: node --build-snapshot failed (${r.status}): ${r.stderr.trim()}`);
  }
}

/** Milliseconds from spawn to exit of one run of the program. */
function timeOnce(way: Way): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, way.args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: way.env ?? process.env,
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) {
    throw new Error(`startup: ${way.label} exited ${r.status}: ${String(r.stderr).trim()}`);
  }
  return ms;
}

export async function run(args: string[]): Promise<void> {
  const rounds = intOption(args, 'rounds', 21, 1000);
  const dir = mkdtempSync(join(tmpdir(), 'livekexec-startup-'));
  try {
    const ours = join(dir, 'livekexec.blob');
    const none = join(dir, 'empty.blob');
    buildSnapshot(ours, BUNDLE);
    buildSnapshot(none, '');
    const cache = spawnSync(process.execPath, [APP, 'import', 'state'], { encoding: 'utf8' });
    if (cache.status !== 0) throw new Error(`startup: importing livekexec failed: ${cache.stderr}`);
    const ways: Way[] = [
      { label: 'node alone', args: [APP, 'node'] },
      { label: 'import livekexec (code cache)', args: [APP, 'import'] },
      // What a cache V8 refuses (made under other flags) costs: the whole compilation.
      {
        label: 'import livekexec, no code cache',
        args: [APP, 'import'],
        env: { ...process.env, LIVEKEXEC_CODE_CACHE: 'off' },
      },
      {
        label: 'snapshot of nothing of ours',
        args: ['--snapshot-blob', none, APP, 'empty-snapshot'],
      },
      { label: 'snapshot holding livekexec', args: ['--snapshot-blob', ours, APP, 'snapshot'] },
      // What a successor pays before its boot's first step, whatever that boot does: koffi's
      // addon (boot() maps the device through it) alone, then with the import.
      { label: "koffi's addon loaded, nothing of ours", args: [APP, 'koffi'] },
      { label: "import livekexec + koffi's addon", args: [APP, 'import-koffi'] },
    ];
    const times = ways.map(() => [] as number[]);
    for (const w of ways) timeOnce(w); // the files into the page cache
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < ways.length; i++) times[i].push(timeOnce(ways[i]));
    }
    process.stdout.write(
      `node ${process.version}; ${rounds} rounds, interleaved; code cache: ${cache.stdout.trim()}; ` +
        `snapshot blobs: ${(statSync(ours).size / 2 ** 20).toFixed(1)} MiB (livekexec), ` +
        `${(statSync(none).size / 2 ** 20).toFixed(1)} MiB (nothing of ours)\n`,
    );
    const alone = median(times[0]);
    table(
      ['way', 'median ms', 'min', 'max', 'x node alone', 'over node alone'],
      ways.map((w, i) => [
        w.label,
        median(times[i]).toFixed(1),
        Math.min(...times[i]).toFixed(1),
        Math.max(...times[i]).toFixed(1),
        `${(median(times[i]) / alone).toFixed(2)}x`,
        i === 0 ? '-' : `${(median(times[i]) - alone).toFixed(1)} ms`,
      ]),
    );
    const imported = median(times[1]);
    const snap = median(times[4]);
    process.stdout.write(
      `the snapshot ${snap < imported ? 'saves' : 'costs'} ${Math.abs(imported - snap).toFixed(1)} ms ` +
        `against the import (median ${snap.toFixed(1)} vs ${imported.toFixed(1)})\n`,
    );
    // Issue 14's in-place target, 1.25x of node alone, leaves livekexec a quarter of node's own
    // start-up for all of a successor's work; this much of it is spent before boot() reads a byte.
    const budget = alone * 0.25;
    const before = median(times[6]) - alone;
    process.stdout.write(
      `in place <= 1.25x of node alone leaves livekexec ${budget.toFixed(1)} ms; a successor's import ` +
        `and koffi's addon take ${before.toFixed(1)} of it before its boot's first step ` +
        `(${before <= budget ? `${(budget - before).toFixed(1)} ms left` : `${(before - budget).toFixed(1)} ms over`})\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
