/**
 * The downtime of a handover between real processes, with 64 MiB, 1 GiB and
 * 4 GiB preserved on a mapped device in /dev/shm, side by side:
 *
 * - bare execve (the floor): the same program on the same device with
 *   nothing preserved, restarted by a plain execve (no kexec): it imports
 *   livekexec and cold-boots the device;
 * - node alone (a reference): node execve'd into itself, no livekexec code
 *   in the successor, "ready" at its first statement: node's own start-up;
 * - in place: kexec exec replaces the process by execve (same PID); the
 *   successor boots from LIVEKEXEC_BOOT and restores the memory with KHO
 *   (each generation serves a turn of its event loop before its exec, as a
 *   program does);
 *   with boot counting on (the default), so the successor preloads
 *   trial-boot.cjs and boots on trial;
 * - in place, no boot counting: the same with kexec.load({ trial: false }),
 *   so the difference is what the fallback machinery costs an upgrade;
 * - preloaded: the successor is spawned at kexec load and waits, ready, in
 *   boot(); exec hands over and the old process exits;
 * - snapshot-reload (the classic peer): the old process writes the state to
 *   a tmpfs file, execve's, and the new process reads it back.
 *
 * Downtime is from the old generation's last stamp before it stops serving
 * (right before kexec.exec(), execve or the snapshot write) to the new
 * generation's stamp once it can serve (boot() returned and the memory
 * restored; the read done for the peer). Both stamps are
 * process.hrtime.bigint(), CLOCK_MONOTONIC, one clock for every process on
 * the machine, so they subtract across processes. The programs keep their
 * stamps in memory and append them to a file outside the measured windows.
 * Each program runs a chain of `rounds` handovers; the median is kept.
 * With --chains=K, K chains per way run in turn (each way's first chain,
 * then each way's second, ...), so that a machine's drift over the run falls
 * on every way alike; the median is over all K x rounds handovers.
 *
 * Options: --rounds=N (handovers per chain, default 5), --chains=K (chains
 * per way and size, default 1), --sizes=MiB,... (default 64,1024,4096),
 * --ways=restart,node,inplace,untried,preload,snapshot (default all; a target is
 * judged only when both of its ways ran).
 *
 * --allocs=N,... (e.g. 1000,100000,1000000) adds an axis: the state is N
 * order-0 folios, allocated one by one and preserved as one KHO page list;
 * each successor restores it (restorePageListView) before "ready". Its ways
 * are node alone, in place and preloaded, and its peer libpmemobj: a new
 * process's pmemobj_open + first pmemobj_alloc of a pool holding N objects
 * of 4 KiB (bench/c/pmemobj_open_bench.c, up to 100,000 objects). Without
 * --sizes, --allocs runs alone.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, statfsSync, unlinkSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readStamps, type Stamp, table } from './_harness.js';

const MiB = 2 ** 20;
const DEFAULT_SIZES = [64, 1024, 4096];
const DEFAULT_ROUNDS = 5;
/** A whole chain (fill included) must end within this. */
const CHAIN_TIMEOUT_MS = 180_000;

type Way = 'restart' | 'node' | 'inplace' | 'untried' | 'preload' | 'snapshot';

const WAYS: readonly { way: Way; label: string }[] = [
  { way: 'restart', label: 'bare execve, nothing preserved (floor)' },
  { way: 'node', label: 'node alone (no livekexec)' },
  { way: 'inplace', label: 'in place (execve) + KHO' },
  { way: 'untried', label: 'in place, no boot counting' },
  { way: 'preload', label: 'preloaded + KHO' },
  { way: 'snapshot', label: 'snapshot-reload (tmpfs)' },
];

/** One JSON line a benchmark program printed. */

/** What one chain measured: per handover, its downtime and each phase, in ms. */
interface Samples {
  way: Way;
  downtimes: number[];
  /** CPU time of the downtime where one process spans it (in place, node alone, restart), ms. */
  cpu: number[];
  phases: [string, number[]][];
}

/** Medians of one way at one size, in ms. */
interface Result {
  way: Way;
  downtime: number;
  min: number;
  max: number;
  /** Median CPU time of the downtime, ms; NaN where two processes share it (preloaded). */
  cpu: number;
  /** Median of each phase of the downtime, in order. */
  phases: [string, number][];
}

const ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));
const SHM = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

/** Files and processes to remove if the run is interrupted. */
const live = { files: new Set<string>(), pids: new Set<number>() };

/** The options run() reads (`--NAME` or `--NAME=VALUE`); main.ts refuses others. */
export const options: readonly string[] = ['ways', 'sizes', 'allocs', 'rounds', 'chains'];

export async function run(args: string[]): Promise<void> {
  const rounds = intOption(args, 'rounds') ?? DEFAULT_ROUNDS;
  const chains = intOption(args, 'chains') ?? 1;
  const ways = waysOption(args);
  const allocs = allocsOption(args) ?? [];
  const sizes = listOption(args, 'sizes') ?? (allocs.length > 0 ? [] : DEFAULT_SIZES);
  const onSignal = (): void => {
    cleanup();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    process.stdout.write(`node ${process.version} (${process.execPath})\n`);
    printLoad('before');
    printStartupEnv();
    const all: { mib: number; results: Result[] }[] = [];
    for (const mib of sizes) {
      if (!fits(mib)) {
        process.stdout.write(`\n${fmtSize(mib)}: skipped, ${SHM} has no room for it\n`);
        continue;
      }
      const samples = new Map<Way, Samples[]>(ways.map((way) => [way, []]));
      for (let c = 0; c < chains; c++) {
        for (const way of ways) samples.get(way)?.push(await measure(way, mib * MiB, rounds));
      }
      const results = ways.map((way) => summarize(way, samples.get(way) ?? []));
      all.push({ mib, results });
      report(fmtSize(mib), results, rounds * chains);
    }
    const byAllocs: AllocsResult[] = [];
    for (const n of allocs) byAllocs.push(await measureAllocs(n, ways, rounds, chains));
    printLoad('after');
    verdicts(all);
    allocsVerdicts(byAllocs);
  } finally {
    cleanup();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

/** The --allocs axis at one count: its ways, and the libpmemobj peer. */
interface AllocsResult {
  allocs: number;
  results: Result[];
  /** pmemobj_open + first alloc, median ms; null when not run. */
  pmemobj: number | null;
}

const ALLOCS_WAYS: readonly Way[] = ['node', 'inplace', 'preload'];
/** The peer creates its pool with this many objects at most (4 KiB each). */
const PMEMOBJ_MAX_OBJECTS = 100_000;

async function measureAllocs(
  allocs: number,
  ways: readonly Way[],
  rounds: number,
  chains: number,
): Promise<AllocsResult> {
  const run = ways.filter((w) => ALLOCS_WAYS.includes(w));
  const samples = new Map<Way, Samples[]>(run.map((way) => [way, []]));
  for (let c = 0; c < chains; c++) {
    for (const way of run) samples.get(way)?.push(await measure(way, 0, rounds, allocs));
  }
  const results = run.map((way) => summarize(way, samples.get(way) ?? []));
  const pmemobj = allocs <= PMEMOBJ_MAX_OBJECTS ? pmemobjOpen(allocs, rounds * chains) : null;
  const label = `${allocs.toLocaleString('en-US')} order-0 folios`;
  report(label, results, rounds * chains);
  if (pmemobj !== null) {
    process.stdout.write(
      `libpmemobj, a pool of ${allocs.toLocaleString('en-US')} objects of 4 KiB: open + first alloc ${pmemobj.toFixed(1)} ms (median of ${rounds * chains} new processes)\n`,
    );
  }
  return { allocs, results, pmemobj };
}

/** Median ms of pmemobj_open + first alloc over `runs` new processes; null without libpmemobj. */
function pmemobjOpen(objects: number, runs: number): number | null {
  const harness = join(ROOT, 'bench', '.build', 'pmemobj_open_bench');
  const pool = join(SHM, `livekexec-bench-pmemobj-${process.pid}`);
  live.files.add(pool);
  try {
    mkdirSync(dirname(harness), { recursive: true });
    execFileSync(
      'cc',
      [
        '-O2',
        '-Wall',
        '-o',
        harness,
        join(ROOT, 'bench', 'c', 'pmemobj_open_bench.c'),
        '-lpmemobj',
      ],
      { stdio: 'pipe' },
    );
    execFileSync(harness, ['create', pool, String(objects), '4096'], { stdio: 'pipe' });
    const ms: number[] = [];
    for (let i = 0; i < runs; i++) {
      const out = execFileSync(harness, ['open', pool], { encoding: 'utf8' });
      const m = /^open_alloc_ms ([\d.]+) objects (\d+)/m.exec(out);
      if (m === null || Number(m[2]) !== objects) throw new Error(`unexpected output: ${out}`);
      ms.push(Number(m[1]));
    }
    return median(ms);
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    process.stdout.write(
      `libpmemobj: not run (${(e.stderr?.toString() ?? e.message).split('\n')[0]}); install libpmemobj-dev to compare\n`,
    );
    return null;
  } finally {
    remove(pool);
    live.files.delete(pool);
  }
}

/** Runs one chain of `rounds` handovers of one way and size (or of `allocs` folios). */
async function measure(way: Way, bytes: number, rounds: number, allocs = 0): Promise<Samples> {
  const file = join(SHM, `livekexec-bench-handover-${way}-${process.pid}`);
  const stampsFile = `${file}.stamps`;
  const program = join(
    ROOT,
    'bench',
    'fixtures',
    way === 'node'
      ? 'handover-bare.mjs'
      : way === 'snapshot'
        ? 'handover-snapshot.mjs'
        : 'handover-kho.mjs',
  );
  const argv =
    way === 'node'
      ? [String(rounds)]
      : way === 'snapshot'
        ? [file, String(bytes), String(rounds)]
        : [way, file, String(bytes), String(rounds), String(allocs)];
  live.files.add(file);
  live.files.add(stampsFile);
  try {
    const stamps = await chain(program, argv, stampsFile);
    return samplesOf(way, stamps, rounds);
  } finally {
    remove(file);
    remove(stampsFile);
    live.files.delete(file);
    live.files.delete(stampsFile);
  }
}

/** Runs a program until every generation has closed stdout; returns its stamps. */
function chain(program: string, argv: string[], stampsFile: string): Promise<Stamp[]> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('LIVEKEXEC_')) delete env[k];
  delete env.BENCH_GEN;
  delete env.NOTIFY_SOCKET;
  env.BENCH_STAMPS = stampsFile;
  const child: ChildProcess = spawn(process.execPath, [program, ...argv], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let output = '';
  if (child.pid !== undefined) live.pids.add(child.pid);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      killAll(readStamps(stampsFile), child);
      reject(new Error(`bench: ${program} did not finish in ${CHAIN_TIMEOUT_MS} ms; ${output}`));
    }, CHAIN_TIMEOUT_MS);
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (d: string) => {
      output += d;
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => {
      output += d;
    });
    // stdout ends when the last generation (also a preloaded one, not our child) has exited.
    child.stdout?.on('end', () => {
      clearTimeout(timer);
      const stamps = readStamps(stampsFile);
      killAll(stamps, child);
      const err = stamps.find((s) => s.event === 'error');
      if (err) reject(new Error(`bench: ${program}: generation ${err.gen}: ${err.message}`));
      else if (!stamps.some((s) => s.event === 'done'))
        reject(
          new Error(`bench: ${program} ended before its last generation; ${output.slice(-2000)}`),
        );
      else resolve(stamps);
    });
  });
}

/** Downtime per handover of one chain, and its phases. */
function samplesOf(way: Way, stamps: Stamp[], rounds: number): Samples {
  const at = (event: string, gen: number): number => {
    const s = stamps.find((x) => x.event === event && x.gen === gen);
    if (!s) throw new Error(`bench: ${way}: no ${event} stamp of generation ${gen}`);
    return Number(BigInt(s.ns)) / 1e6;
  };
  const names: [string, string][] =
    way === 'node'
      ? [['execve + node start', 'ready']]
      : way === 'snapshot'
        ? [
            ['write', 'written'],
            ['execve + node start', 'start'],
            ['read', 'ready'],
          ]
        : way === 'restart'
          ? [
              ['execve + node start', 'start'],
              ['import livekexec', 'imported'],
              ['boot() (cold)', 'ready'],
            ]
          : way === 'inplace' || way === 'untried'
            ? [
                ['exec() before execve', 'execve'],
                ['execve + node start', 'start'],
                ['import livekexec', 'imported'],
                ['boot()', 'booted'],
                ['restore', 'ready'],
              ]
            : [
                ['exec() + go + boot()', 'booted'],
                ['restore', 'ready'],
              ];
  const downtimes: number[] = [];
  const cpu: number[] = [];
  const phases: number[][] = names.map(() => []);
  for (let g = 2; g <= rounds + 1; g++) {
    const t0 = at('exec', g - 1);
    downtimes.push(at('ready', g) - t0);
    // getrusage counts on across execve: one process's stamps subtract.
    const from = stamps.find((x) => x.event === 'exec' && x.gen === g - 1);
    const to = stamps.find((x) => x.event === 'ready' && x.gen === g);
    if (from?.pid === to?.pid && typeof from?.cpu === 'number' && typeof to?.cpu === 'number') {
      cpu.push((to.cpu - from.cpu) / 1000);
    }
    let prev = t0;
    names.forEach(([, event], i) => {
      // Phases before exec (a preloaded successor's start-up) are not downtime.
      // The old generation stamps 'written' and 'execve'; the new one the rest.
      const t = event === 'written' || event === 'execve' ? at(event, g - 1) : at(event, g);
      phases[i].push(t - prev);
      prev = t;
    });
  }
  return { way, downtimes, cpu, phases: names.map(([label], i) => [label, phases[i] ?? []]) };
}

/** Medians over every handover of every chain of one way. */
function summarize(way: Way, chains: Samples[]): Result {
  const downtimes = chains.flatMap((c) => c.downtimes);
  const cpu = chains.flatMap((c) => c.cpu);
  const labels = chains[0]?.phases.map(([label]) => label) ?? [];
  return {
    way,
    downtime: median(downtimes),
    min: Math.min(...downtimes),
    max: Math.max(...downtimes),
    cpu: cpu.length > 0 ? median(cpu) : Number.NaN,
    phases: labels.map((label, i) => [
      label,
      median(chains.flatMap((c) => c.phases[i]?.[1] ?? [])),
    ]),
  };
}

function report(what: string, results: Result[], rounds: number): void {
  const floor = results.find((r) => r.way === 'restart')?.downtime ?? Number.NaN;
  const node = results.find((r) => r.way === 'node');
  const ratio = (ms: number, of: number): string =>
    Number.isNaN(of) || Number.isNaN(ms) ? '-' : `${(ms / of).toFixed(2)}x`;
  process.stdout.write(`\n${what} preserved (median of ${rounds} handovers, ms):\n`);
  table(
    [
      'way',
      'downtime',
      'min',
      'max',
      'x floor',
      'x node alone',
      'CPU',
      'CPU x node alone',
      'phases (median ms)',
    ],
    results.map((r) => [
      WAYS.find((w) => w.way === r.way)?.label ?? r.way,
      r.downtime,
      r.min,
      r.max,
      ratio(r.downtime, floor),
      ratio(r.downtime, node?.downtime ?? Number.NaN),
      Number.isNaN(r.cpu) ? '-' : r.cpu,
      ratio(r.cpu, node?.cpu ?? Number.NaN),
      r.phases.map(([label, ms]) => `${label} ${ms.toFixed(1)}`).join(', '),
    ]),
  );
}

function verdicts(all: { mib: number; results: Result[] }[]): void {
  const get = (r: Result[], way: Way): number =>
    r.find((x) => x.way === way)?.downtime ?? Number.NaN;
  const targets: string[] = [];
  // A target whose ways did not both run (--ways) is left out.
  const line = (text: string, ratio: number, ok: boolean): void => {
    if (!Number.isNaN(ratio))
      targets.push(`  ${text}: ${ratio.toFixed(3)}x  ${ok ? 'met' : 'MISSED'}\n`);
  };
  for (const { mib, results } of all) {
    const ratio = get(results, 'inplace') / get(results, 'restart');
    line(`in place / floor at ${fmtSize(mib)} (<= 1.1x)`, ratio, ratio <= 1.1);
  }
  const big = all.find((a) => a.mib === 4096);
  if (big) {
    const pre = get(big.results, 'preload') / get(big.results, 'restart');
    line('preloaded / floor at 4 GiB (<= 0.1x)', pre, pre <= 0.1);
    const snap = get(big.results, 'snapshot') / get(big.results, 'inplace');
    line('snapshot-reload / in place at 4 GiB (>= 100x)', snap, snap >= 100);
    const snapPre = get(big.results, 'snapshot') / get(big.results, 'preload');
    line('snapshot-reload / preloaded at 4 GiB (>= 100x)', snapPre, snapPre >= 100);
  }
  if (targets.length > 0) {
    process.stdout.write(
      '\ntargets (the floor: the same program, bare execve, nothing preserved):\n',
    );
    for (const t of targets) process.stdout.write(t);
  }
  const alone: string[] = [];
  const lineAlone = (text: string, ratio: number, ok: boolean): void => {
    if (!Number.isNaN(ratio))
      alone.push(`  ${text}: ${ratio.toFixed(3)}x  ${ok ? 'met' : 'MISSED'}\n`);
  };
  for (const { mib, results } of all) {
    const node = get(results, 'node');
    const inPlace = get(results, 'inplace') / node;
    lineAlone(`in place / node alone at ${fmtSize(mib)} (<= 1.25x)`, inPlace, inPlace <= 1.25);
    const cpuOf = (way: Way): number => results.find((x) => x.way === way)?.cpu ?? Number.NaN;
    const inPlaceCpu = cpuOf('inplace') / cpuOf('node');
    lineAlone(
      `in place / node alone at ${fmtSize(mib)}, CPU time (<= 1.25x)`,
      inPlaceCpu,
      inPlaceCpu <= 1.25,
    );
    const pre = get(results, 'preload') / node;
    lineAlone(`preloaded / node alone at ${fmtSize(mib)} (<= 0.1x)`, pre, pre <= 0.1);
  }
  if (alone.length > 0) {
    process.stdout.write('targets against node alone (node execve, no livekexec code):\n');
    for (const l of alone) process.stdout.write(l);
  }
  for (const { mib, results } of all) {
    const cost = get(results, 'inplace') - get(results, 'untried');
    if (Number.isNaN(cost)) continue;
    process.stdout.write(
      `boot counting's cost per in-place upgrade at ${fmtSize(mib)}: ${cost.toFixed(1)} ms (in place - no boot counting, medians)\n`,
    );
  }
}

/** Restore targets of the --allocs axis: 1M folios in <= 200 ms, 100k within libpmemobj's open. */
function allocsVerdicts(all: readonly AllocsResult[]): void {
  const lines: string[] = [];
  for (const { allocs, results, pmemobj } of all) {
    for (const r of results) {
      if (r.way === 'node') continue;
      const restore = r.phases.find(([label]) => label === 'restore')?.[1] ?? Number.NaN;
      const way = r.way === 'inplace' ? 'in place' : 'preloaded';
      const n = allocs.toLocaleString('en-US');
      const perFolio = ((restore * 1000) / allocs).toFixed(3);
      if (allocs === 1_000_000) {
        lines.push(
          `  ${way}: restore of ${n} folios ${restore.toFixed(1)} ms (${perFolio} us each; <= 200 ms)  ${restore <= 200 ? 'met' : 'MISSED'}\n`,
        );
      }
      if (pmemobj !== null) {
        lines.push(
          `  ${way}: restore of ${n} folios ${restore.toFixed(1)} ms, libpmemobj open + first alloc ${pmemobj.toFixed(1)} ms: ${(restore / pmemobj).toFixed(2)}x (<= 1x)  ${restore <= pmemobj ? 'met' : 'MISSED'}\n`,
        );
      }
    }
  }
  if (lines.length > 0) {
    process.stdout.write('restore targets (--allocs):\n');
    for (const l of lines) process.stdout.write(l);
  }
}

function printLoad(when: string): void {
  const [a, b, c] = loadavg();
  process.stdout.write(`load average ${when}: ${a.toFixed(2)} ${b.toFixed(2)} ${c.toFixed(2)}\n`);
}

/**
 * Environment that every node start of every way pays for, named so that runs
 * compare: NODE_EXTRA_CA_CERTS alone made node's start 60 -> 100 ms on one
 * machine (node parses the certificates before the first statement).
 */
function printStartupEnv(): void {
  const set = ['NODE_OPTIONS', 'NODE_EXTRA_CA_CERTS', 'NODE_COMPILE_CACHE', 'NODE_V8_COVERAGE']
    .filter((k) => (process.env[k] ?? '') !== '')
    .map((k) => `${k}=${process.env[k]}`);
  process.stdout.write(
    `node start-up environment: ${set.length > 0 ? set.join(' ') : 'none set'}\n`,
  );
}

/** Whether the device (size + its room) or the snapshot file fits in the tmpfs now. */
function fits(mib: number): boolean {
  try {
    const st = statfsSync(SHM);
    return st.bavail * st.bsize > mib * MiB * 1.1 + 256 * MiB;
  } catch {
    return true;
  }
}

function killAll(stamps: readonly Stamp[], child: ChildProcess): void {
  for (const pid of new Set(stamps.map((s) => s.pid))) {
    tryKill(pid);
    live.pids.delete(pid);
  }
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  if (child.pid !== undefined) live.pids.delete(child.pid);
}

function cleanup(): void {
  for (const pid of live.pids) tryKill(pid);
  live.pids.clear();
  for (const f of live.files) remove(f);
  live.files.clear();
}

function tryKill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function remove(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // never created, or removed by the last generation
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function fmtSize(mib: number): string {
  return mib >= 1024 && mib % 1024 === 0 ? `${mib / 1024} GiB` : `${mib} MiB`;
}

function intOption(args: readonly string[], name: string): number | undefined {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  if (a === undefined) return undefined;
  const n = Number(a.slice(name.length + 3));
  if (!Number.isSafeInteger(n) || n < 1 || n > 100) {
    throw new Error(`bench: --${name} takes an integer from 1 to 100, got ${a}`);
  }
  return n;
}

function waysOption(args: readonly string[]): Way[] {
  const a = args.find((x) => x.startsWith('--ways='));
  if (a === undefined) return WAYS.map(({ way }) => way);
  const names = a.slice('--ways='.length).split(',');
  const known = new Set<string>(WAYS.map(({ way }) => way));
  const bad = names.filter((n) => !known.has(n));
  if (names.length === 0 || bad.length > 0) {
    throw new Error(`bench: --ways takes ${[...known].join(',')}, got ${a}`);
  }
  // In the table's order, each once.
  return WAYS.map(({ way }) => way).filter((w) => names.includes(w));
}

function allocsOption(args: readonly string[]): number[] | undefined {
  const a = args.find((x) => x.startsWith('--allocs='));
  if (a === undefined) return undefined;
  const out = a.slice('--allocs='.length).split(',').map(Number);
  if (out.some((n) => !Number.isSafeInteger(n) || n < 1 || n > 4_000_000)) {
    throw new Error(`bench: --allocs takes folio counts (1..4,000,000), got ${a}`);
  }
  return out;
}

function listOption(args: readonly string[], name: string): number[] | undefined {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  if (a === undefined) return undefined;
  const out = a
    .slice(name.length + 3)
    .split(',')
    .map(Number);
  if (
    out.length === 0 ||
    out.some((n) => !Number.isSafeInteger(n) || n < 4 || n > 65536 || n % 4 !== 0)
  ) {
    throw new Error(`bench: --${name} takes sizes in MiB (multiples of 4, 4..65536), got ${a}`);
  }
  return out;
}

/** The repository root: the nearest folder above `dir` holding package.json. */
function findRoot(dir: string): string {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, 'package.json'))) return d;
    if (dirname(d) === d) throw new Error(`bench: no package.json above ${dir}`);
  }
}
