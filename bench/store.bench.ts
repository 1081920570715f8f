/**
 * `npm run bench -- store`: livekexec/store side by side with its peers in
 * one run:
 *
 * - store: livekexec/store in kernel pages on a mapped device in /dev/shm;
 *   the handover does nothing for the store, the successor attaches to it;
 * - map: a JS Map, v8.serialize to a tmpfs file before the exec, read and
 *   v8.deserialize after it;
 * - lmdb: the lmdb package on /dev/shm with noSync, closed before the exec
 *   and opened again after it.
 *
 * For each value size (16-byte keys; 100-byte and 1 KiB values) and entry
 * count, two parts:
 *
 * - Rates (bench/fixtures/store-rates.mjs): put, get (a copy), view (the
 *   store's zero-copy getView, lmdb's getBinaryFast, the Map's own object)
 *   and delete, the store and lmdb in one process taking turns chunk by
 *   chunk, so that both meet the same machine; the Map in a process of its
 *   own (its heap would slow the others' collections).
 * - Handovers (bench/fixtures/store-peer.mjs): every entry count of a peer
 *   runs at once, each in its own process, and the benchmark hands them
 *   over in turns, `rounds` times each and in each way (`modes`): "zap"
 *   drops the device's mappings ahead (MemoryDevice.zap, what kernel.upgrade
 *   does), "plain" leaves them to the exec. Before each handover the
 *   generation gets every entry once (it has mapped what a process serving
 *   all of its state maps). Downtime: from the last moment generation N
 *   serves (its "stop", before the Map's serialize) to generation N+1's
 *   first get, both stamps CLOCK_MONOTONIC; medians. Its parts: state out
 *   (before the exec), execve + node's start (to the program's first line),
 *   boot (importing livekexec and boot()), attach (the state made ready: the
 *   store attached, the Map deserialized, lmdb opened) and the first get.
 *   Memory: RSS growth over generation 1's fill, and the store's own pages.
 *
 * Options: --sizes=10k,1M,10M (default 10k,1M), --values=100,1024 (default
 * both), --peers=store,map,lmdb (default all), --map-sizes (default 10k,1M:
 * a Map of 10M entries takes minutes per handover), --rounds=N (default 5),
 * --modes=zap,plain (default both), --parts=rates,handover (default both),
 * --device=shared|per-size: the store's handover programs all on a device
 * sized for the largest entry count (default: a handover then differs by
 * its entries alone), or each on a device sized for its own.
 * Whatever needs more memory than the machine has available runs one at a
 * time (the output says so); what cannot fit at all is skipped with a word.
 *
 * --attach measures only the store's side of a handover, without node's
 * start: on one emulated machine of the same size for every entry count,
 * each size is filled with 100-byte values and handed over `rounds` times;
 * the median kexec exec (the kernel's handover) and the median attach
 * (openStore and the first get).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Machine } from '../src/machine.js';
import { CLASS_SIZES, classOf } from '../src/store/classes.js';
import { openStore } from '../src/store/index.js';
import { median, readStamps, type Stamp, table } from './_harness.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FIXTURES = join(ROOT, 'bench', 'fixtures');
const SHM = '/dev/shm';
const MiB = 2 ** 20;
const GiB = 2 ** 30;
const PEERS = ['store', 'map', 'lmdb'] as const;
type Peer = (typeof PEERS)[number];
type Mode = 'zap' | 'plain';
const NODE_OPTIONS =
  `${process.env.NODE_OPTIONS ?? ''} --max-old-space-size=16384 --expose-gc`.trim();

interface Rates {
  put: number;
  get: number;
  view: number;
  delete: number;
}

interface HandoverFigures {
  downtimeMs: number;
  stateOutMs: number;
  /** exec stamp -> the successor's first line: execve (the old mappings' teardown) and node's start. */
  execMs: number;
  /** first line -> boot() returned: import livekexec and boot. */
  bootMs: number;
  /** boot() returned -> the state is ready (the store attached, the Map deserialized, lmdb open). */
  attachMs: number;
  /** ... -> the first get returned. */
  firstGetMs: number;
  stateInMs: number;
  handovers: number;
}

interface Case {
  peer: Peer;
  entries: number;
  valueBytes: number;
  /** The handover program's device. */
  deviceBytes: number;
  rates?: Rates;
  ratesNote?: string;
  fillPut?: number;
  rssPerEntry?: number;
  storePerEntry?: number;
  inUsePerEntry?: number;
  handover: Partial<Record<Mode, HandoverFigures>>;
  /** Each chain's stamps (a case runs twice when the sizes ran one after another). */
  stampSets: Stamp[][];
  handoverNote?: string;
}

function parseCount(text: string): number {
  const m = /^(\d+)([kKmM]?)$/.exec(text);
  if (!m) throw new Error(`bench store: bad size '${text}'`);
  return Number(m[1]) * (m[2] === '' ? 1 : /k/i.test(m[2]) ? 1e3 : 1e6);
}

function option(args: string[], name: string, fallback: string): string[] {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return (a ? a.slice(name.length + 3) : fallback).split(',').filter((x) => x !== '');
}

function fmtCount(n: number): string {
  return n >= 1e6 ? `${n / 1e6}M` : n >= 1e3 ? `${n / 1e3}k` : String(n);
}

/** The store's device: records in their size class, slabs, the table (and the old one while it grows), extents' slack. */
export function storeDeviceBytes(entries: number, valueBytes: number): number {
  const cls = classOf(16 + 16 + valueBytes);
  const record = cls < 0 ? Math.ceil((32 + valueBytes) / 4096) * 4096 : CLASS_SIZES[cls];
  const table = 2 ** Math.ceil(Math.log2(Math.max(1024, entries / 0.625))) * 8;
  return 64 * MiB + Math.ceil((entries * record * 1.25 + table * 1.5) / MiB) * MiB;
}

/** What a peer holds in memory at `entries` (tmpfs pages count: they are memory). */
function memoryNeed(peer: Peer, entries: number, valueBytes: number, deviceBytes?: number): number {
  if (peer === 'store') return deviceBytes ?? storeDeviceBytes(entries, valueBytes);
  if (peer === 'lmdb') return 64 * MiB + entries * (valueBytes + 64) * 2;
  // The Map, its serialized copy, the file and the deserialized Map.
  return 64 * MiB + entries * (valueBytes + 200) * 3;
}

/** MemAvailable, in bytes. */
function availableMemory(): number {
  const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

function load(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

/** The options run() reads (`--NAME` or `--NAME=VALUE`); main.ts refuses others. */
export const options: readonly string[] = [
  'sizes',
  'attach',
  'values',
  'peers',
  'map-sizes',
  'rounds',
  'modes',
  'parts',
  'device',
];

/**
 * Runs the benchmark. A generation started with NODE_OPTIONS' flags that V8
 * counts writes its own code cache beside the build's (scripts/pkg/loader.mjs),
 * which stays for programs without them (the tests).
 */
export async function run(args: string[]): Promise<void> {
  const sizes = option(args, 'sizes', '10k,1M').map(parseCount);
  if (args.includes('--attach')) {
    attachOnOneMachine(sizes, Number(option(args, 'rounds', '5')[0]));
    return;
  }
  const valueSizes = option(args, 'values', '100,1024').map(Number);
  const peers = option(args, 'peers', PEERS.join(',')) as Peer[];
  const mapSizes = option(args, 'map-sizes', '10k,1M').map(parseCount);
  const rounds = Number(option(args, 'rounds', '5')[0]);
  const modes = option(args, 'modes', 'zap,plain') as Mode[];
  const parts = option(args, 'parts', 'rates,handover');
  const perSize = option(args, 'device', 'shared')[0] === 'per-size';
  process.stdout.write(
    `node ${process.version}; load average before: ${load()}; memory available ${(availableMemory() / GiB).toFixed(1)} GiB\n`,
  );
  const cases: Case[] = [];
  for (const valueBytes of valueSizes) {
    const here: Case[] = [];
    // One device size for every entry count (the largest needs it): a handover then differs by its entries alone.
    const shared = storeDeviceBytes(Math.max(...sizes), valueBytes);
    for (const entries of sizes) {
      for (const peer of peers) {
        if (peer === 'map' && !mapSizes.includes(entries)) continue;
        const deviceBytes =
          peer !== 'store' ? 64 * MiB : perSize ? storeDeviceBytes(entries, valueBytes) : shared;
        here.push({ peer, entries, valueBytes, deviceBytes, handover: {}, stampSets: [] });
      }
    }
    if (parts.includes('rates')) for (const entries of sizes) await rates(here, entries);
    if (parts.includes('handover')) {
      // Zapping the device's mappings is the store's way; the peers' state is not in the device.
      for (const peer of peers) {
        await handovers(
          here.filter((c) => c.peer === peer),
          rounds,
          peer === 'store' ? modes : ['plain'],
        );
      }
    }
    cases.push(...here);
    report(here, modes);
  }
  process.stdout.write(`\nload average after: ${load()}\n`);
  verdicts(cases, modes);
}

// ------------------------------------------------------------------ rates

/** The rates of every peer at one size: the store and lmdb taking turns in one process when memory allows. */
async function rates(cases: Case[], entries: number): Promise<void> {
  const at = cases.filter((c) => c.entries === entries);
  const turns = at.filter((c) => c.peer !== 'map');
  const alone = at.filter((c) => c.peer === 'map');
  const need = (cs: Case[]) =>
    cs.reduce((s, c) => s + memoryNeed(c.peer, entries, c.valueBytes), 0);
  const groups: Case[][] = [];
  if (turns.length > 0 && need(turns) < availableMemory() * 0.85) groups.push(turns);
  else for (const c of turns) groups.push([c]);
  for (const c of alone) groups.push([c]);
  for (const group of groups) {
    const avail = availableMemory();
    if (need(group) > avail * 0.85) {
      for (const c of group) {
        c.ratesNote = `skipped: needs ${(need(group) / GiB).toFixed(1)} GiB, ${(avail / GiB).toFixed(1)} available`;
      }
      continue;
    }
    const note =
      group.length === 1 && turns.length > 1 && group[0].peer !== 'map'
        ? `alone: the peers together need more than the ${(avail / GiB).toFixed(1)} GiB available`
        : undefined;
    const valueBytes = group[0].valueBytes;
    const base = join(SHM, `livekexec-bench-rates-${process.pid}`);
    try {
      const out = await runJson(join(FIXTURES, 'store-rates.mjs'), [
        group.map((c) => c.peer).join(','),
        `${base}.dev`,
        String(storeDeviceBytes(entries, valueBytes)),
        String(entries),
        String(valueBytes),
        `${base}.lmdb`,
      ]);
      for (const c of group) {
        c.rates = out[c.peer] as Rates;
        c.ratesNote = note;
      }
    } catch (err) {
      for (const c of group) c.ratesNote = `failed: ${(err as Error).message}`;
    } finally {
      for (const f of [`${base}.dev`, `${base}.lmdb`, `${base}.lmdb-lock`]) {
        rmSync(f, { recursive: true, force: true });
      }
    }
  }
}

function runJson(program: string, argv: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [program, ...argv], {
      env: { ...process.env, NODE_OPTIONS },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr = (stderr + d).slice(-2000);
    });
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`exit ${code}: ${stderr.trim()}`));
      else resolve(JSON.parse(stdout) as Record<string, unknown>);
    });
  });
}

// ------------------------------------------------------------------ handovers

/** One handover program (a peer at one size) and its files. */
interface Chain {
  c: Case;
  base: string;
  stamps: string;
  control: string;
  child: ChildProcess;
  exited: string | null;
  gen: number;
}

/** Hands the cases over in turns, as many at once as memory allows. */
async function handovers(cases: Case[], rounds: number, modes: Mode[]): Promise<void> {
  const batches: Case[][] = [];
  let batch: Case[] = [];
  let used = 0;
  const avail = availableMemory() * 0.85;
  for (const c of [...cases].sort((a, b) => a.entries - b.entries)) {
    const need = memoryNeed(c.peer, c.entries, c.valueBytes, c.deviceBytes);
    if (need > avail) {
      c.handoverNote = `skipped: needs ${(need / GiB).toFixed(1)} GiB, ${(avail / 0.85 / GiB).toFixed(1)} available`;
      continue;
    }
    if (used + need > avail && batch.length > 0) {
      batches.push(batch);
      batch = [];
      used = 0;
    }
    batch.push(c);
    used += need;
  }
  if (batch.length > 0) batches.push(batch);
  // One after another, the machine may change between batches: the first (smallest) runs
  // again last, and its figures are the medians of both runs.
  const order = batches.length > 1 ? [...batches, batches[0]] : batches;
  for (const b of order) {
    if (batches.length > 1) {
      for (const c of b) {
        c.handoverNote = `sizes handed over ${b.length === 1 ? 'one at a time' : 'in batches'} (the first again last): together they need more than the ${(avail / 0.85 / GiB).toFixed(1)} GiB available`;
      }
    }
    await handoverBatch(b, rounds, modes);
  }
  for (const c of cases) if (c.stampSets.length > 0) c.handover = figures(c.stampSets, modes);
}

async function handoverBatch(cases: Case[], rounds: number, modes: Mode[]): Promise<void> {
  const chains: Chain[] = [];
  try {
    for (const c of cases) chains.push(startChain(c));
    for (const ch of chains) {
      const filled = await waitFor(ch, 'ready', 1, 3_600_000);
      const f = filled.find((s) => s.event === 'filled');
      if (f && ch.c.fillPut === undefined) {
        ch.c.fillPut = Number(f.put);
        ch.c.rssPerEntry = Number(f.rssBytes) / ch.c.entries;
        ch.c.storePerEntry = Number(f.storeBytes) / ch.c.entries;
        ch.c.inUsePerEntry = Number(f.inUseBytes) / ch.c.entries;
      }
    }
    for (let r = 0; r < rounds; r++) {
      for (const mode of r % 2 === 0 ? modes : [...modes].reverse()) {
        // The first of a turn alternates, so that no size always follows the same one.
        const k = r % chains.length;
        for (const ch of [...chains.slice(k), ...chains.slice(0, k)]) {
          writeFileSync(ch.control, mode);
          ch.child.kill('SIGUSR2');
          ch.gen++;
          await waitFor(ch, 'ready', ch.gen, 3_600_000);
        }
      }
    }
    for (const ch of chains) ch.c.stampSets.push(readStamps(ch.stamps));
  } catch (err) {
    for (const ch of chains) ch.c.handoverNote = `failed: ${(err as Error).message}`;
  } finally {
    for (const ch of chains) {
      if (ch.exited === null) {
        writeFileSync(ch.control, 'exit');
        ch.child.kill('SIGUSR2');
      }
    }
    for (const ch of chains) {
      const deadline = Date.now() + 10_000;
      while (ch.exited === null && Date.now() < deadline) await sleep(20);
      if (ch.exited === null) ch.child.kill('SIGKILL');
      for (const f of [
        ch.base,
        ch.stamps,
        ch.control,
        `${ch.base}.state`,
        `${ch.base}.state-lock`,
      ]) {
        rmSync(f, { recursive: true, force: true });
      }
    }
  }
}

function startChain(c: Case): Chain {
  const base = join(SHM, `livekexec-bench-store-${c.peer}-${c.entries}-${process.pid}`);
  const stamps = `${base}.stamps`;
  const control = `${base}.control`;
  const child = spawn(
    process.execPath,
    [
      join(FIXTURES, 'store-peer.mjs'),
      c.peer,
      base,
      String(c.deviceBytes),
      String(c.entries),
      String(c.valueBytes),
      `${base}.state`,
      control,
    ],
    {
      env: { ...process.env, BENCH_STAMPS: stamps, BENCH_GEN: '1', NODE_OPTIONS },
      stdio: ['ignore', 'inherit', 'pipe'],
    },
  );
  const ch: Chain = { c, base, stamps, control, child, exited: null, gen: 1 };
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-2000);
  });
  child.on('exit', (code, signal) => {
    ch.exited = `exit ${code ?? signal}${stderr.trim() ? `: ${stderr.trim()}` : ''}`;
  });
  return ch;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits for a chain's stamp; polls every 20 ms (never inside a measured interval: the chain stamps and flushes itself). */
async function waitFor(ch: Chain, event: string, gen: number, timeoutMs: number): Promise<Stamp[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stamps = readStamps(ch.stamps);
    if (stamps.some((s) => s.event === event && s.gen === gen)) return stamps;
    const err = stamps.find((s) => s.event === 'error');
    if (err) throw new Error(`${ch.c.peer} ${fmtCount(ch.c.entries)}: ${String(err.message)}`);
    if (ch.exited !== null) throw new Error(`${ch.c.peer} ${fmtCount(ch.c.entries)}: ${ch.exited}`);
    if (Date.now() > deadline) throw new Error(`${ch.c.peer}: no ${event} of generation ${gen}`);
    await sleep(20);
  }
}

/** Every handover of a chain: generation g's stop to g + 1's first get, in ms. */
function handoverRows(stamps: Stamp[], mode: Mode): HandoverFigures[] {
  const at = (event: string, gen: number) => stamps.find((s) => s.event === event && s.gen === gen);
  const ms = (a: Stamp, b: Stamp) => Number(BigInt(b.ns) - BigInt(a.ns)) / 1e6;
  const rows: HandoverFigures[] = [];
  for (const stop of stamps.filter(
    (s) => s.event === 'stop' && (s.zap ? 'zap' : 'plain') === mode,
  )) {
    const g = stop.gen;
    const exec = at('exec', g);
    const start = at('start', g + 1);
    const booted = at('booted', g + 1);
    const attached = at('attached', g + 1);
    const first = at('first-get', g + 1);
    if (!exec || !start || !booted || !attached || !first) continue;
    rows.push({
      downtimeMs: ms(stop, first),
      stateOutMs: ms(stop, exec),
      execMs: ms(exec, start),
      bootMs: ms(start, booted),
      attachMs: ms(booted, attached),
      firstGetMs: ms(attached, first),
      stateInMs: ms(booted, first),
      handovers: 1,
    });
  }
  return rows;
}

/** Medians per mode over the handovers of every chain of a case. */
function figures(stampSets: Stamp[][], modes: Mode[]): Partial<Record<Mode, HandoverFigures>> {
  const out: Partial<Record<Mode, HandoverFigures>> = {};
  for (const mode of modes) {
    const rows = stampSets.flatMap((stamps) => handoverRows(stamps, mode));
    if (rows.length === 0) continue;
    const pick = (f: (r: HandoverFigures) => number) => median(rows.map(f));
    out[mode] = {
      downtimeMs: pick((r) => r.downtimeMs),
      stateOutMs: pick((r) => r.stateOutMs),
      execMs: pick((r) => r.execMs),
      bootMs: pick((r) => r.bootMs),
      attachMs: pick((r) => r.attachMs),
      firstGetMs: pick((r) => r.firstGetMs),
      stateInMs: pick((r) => r.stateInMs),
      handovers: rows.length,
    };
  }
  return out;
}

// ------------------------------------------------------------------ output

function report(cases: Case[], modes: Mode[]): void {
  const v = cases[0]?.valueBytes;
  if (v === undefined) return;
  process.stdout.write(
    `\n16-byte keys, ${v}-byte values: rates (store and lmdb taking turns in one process)\n`,
  );
  table(
    ['entries', 'peer', 'put/s', 'get/s', 'view/s', 'delete/s', 'note'],
    cases.map((c) => [
      fmtCount(c.entries),
      c.peer,
      c.rates?.put ?? '-',
      c.rates?.get ?? '-',
      c.rates?.view ?? '-',
      c.rates?.delete ?? '-',
      c.ratesNote ?? '',
    ]),
  );
  process.stdout.write(`\n16-byte keys, ${v}-byte values: memory (generation 1's fill, alone)\n`);
  table(
    ['entries', 'peer', 'fill put/s', 'RSS B/entry', 'store B/entry (in use)'],
    cases.map((c) => [
      fmtCount(c.entries),
      c.peer,
      c.fillPut ?? '-',
      c.rssPerEntry ?? '-',
      c.peer === 'store' && c.storePerEntry !== undefined
        ? `${c.storePerEntry.toFixed(0)} (${(c.inUsePerEntry ?? 0).toFixed(0)})`
        : '-',
    ]),
  );
  process.stdout.write(
    `\n16-byte keys, ${v}-byte values: handovers in place (medians; zap: the device's mappings dropped ahead, plain: left to the exec)\n`,
  );
  const rows: (string | number)[][] = [];
  for (const c of cases) {
    const ways = modes.filter((m) => c.handover[m] !== undefined);
    for (const mode of ways.length > 0 ? ways : [undefined]) {
      const h = mode === undefined ? undefined : c.handover[mode];
      rows.push([
        fmtCount(c.entries),
        c.peer,
        mode ?? '-',
        String(h?.handovers ?? 0),
        h?.downtimeMs ?? '-',
        h?.stateOutMs ?? '-',
        h?.execMs ?? '-',
        h?.bootMs ?? '-',
        h?.attachMs ?? '-',
        h?.firstGetMs ?? '-',
        h?.stateInMs ?? '-',
        c.handoverNote ?? '',
      ]);
    }
  }
  table(
    [
      'entries',
      'peer',
      'way',
      'n',
      'downtime ms',
      'state out ms',
      'execve + node ms',
      'boot ms',
      'attach ms',
      'first get ms',
      'state in ms',
      'note',
    ],
    rows,
  );
}

/** The issue's targets, judged on what ran. */
function verdicts(cs: Case[], modes: Mode[]): void {
  const find = (peer: Peer, entries: number, v: number) =>
    cs.find((c) => c.peer === peer && c.entries === entries && c.valueBytes === v);
  const lines: string[] = [];
  const met = (ok: boolean) => (ok ? 'MET' : 'NOT MET');
  for (const v of [100, 1024]) {
    for (const entries of [1e6, 1e7]) {
      for (const mode of modes) {
        const a = find('store', 1e4, v)?.handover[mode];
        const b = find('store', entries, v)?.handover[mode];
        if (!a || !b) continue;
        const ratio = b.downtimeMs / a.downtimeMs;
        lines.push(
          `downtime ${fmtCount(entries)} / 10k entries (${v} B, ${mode}): ${b.downtimeMs.toFixed(1)} / ${a.downtimeMs.toFixed(1)} ms = ${ratio.toFixed(2)}x (target <= 1.1x) ${met(ratio <= 1.1)}`,
        );
      }
    }
    for (const entries of [1e4, 1e6, 1e7]) {
      const s = find('store', entries, v);
      const l = find('lmdb', entries, v);
      if (s?.rates && l?.rates) {
        const put = s.rates.put / l.rates.put;
        const get = s.rates.get / l.rates.get;
        const view = s.rates.view / l.rates.get;
        lines.push(
          `${fmtCount(entries)} x ${v} B vs lmdb: put ${put.toFixed(2)}x (target >= 1x) ${met(put >= 1)}, get ${get.toFixed(2)}x (target >= 1x) ${met(get >= 1)}, view ${view.toFixed(2)}x lmdb's get (target >= 2x) ${met(view >= 2)}`,
        );
      }
      const m = find('map', entries, v);
      for (const mode of modes) {
        const sh = s?.handover[mode];
        const mh = m?.handover.plain;
        if (sh && mh && entries === 1e6) {
          const state = (mh.stateOutMs + mh.stateInMs) / (sh.stateOutMs + sh.stateInMs);
          const down = mh.downtimeMs / sh.downtimeMs;
          lines.push(
            `1M x ${v} B vs Map + v8.serialize (${mode}): the state's handover ${state.toFixed(0)}x faster (target >= 100x) ${met(state >= 100)}; whole downtime ${down.toFixed(1)}x`,
          );
        }
      }
      if (s?.storePerEntry !== undefined && v === 1024) {
        const raw = 16 + v;
        const held = s.storePerEntry / raw;
        lines.push(
          `${fmtCount(entries)} x 1 KiB: memory held ${held.toFixed(2)}x raw, in use ${((s.inUsePerEntry ?? 0) / raw).toFixed(2)}x, RSS ${((s.rssPerEntry ?? 0) / raw).toFixed(2)}x (target <= 1.3x) ${met(held <= 1.3)}`,
        );
      }
    }
  }
  process.stdout.write(`\n${lines.join('\n')}\n`);
}

// ------------------------------------------------------------------ attach

/** The store's side of a handover on one emulated machine, for each entry count. */
function attachOnOneMachine(sizes: number[], rounds: number): void {
  const most = Math.max(...sizes);
  const deviceBytes = 256 * MiB + Math.ceil((most * 200) / MiB) * MiB;
  const rows: (string | number)[][] = [];
  const value = Buffer.alloc(100, 7);
  for (const entries of sizes) {
    let k = Machine.create({ size: deviceBytes }).boot();
    const s = openStore(k, { name: 'attach' });
    for (let i = 0; i < entries; i++) s.put(`k${String(i).padStart(15, '0')}`, value);
    const extents = s.stats().extents;
    const exec: number[] = [];
    const attach: number[] = [];
    for (let r = 0; r < rounds; r++) {
      k.kexec.load();
      const t0 = performance.now();
      k = k.kexec.exec();
      const t1 = performance.now();
      const again = openStore(k, { name: 'attach', create: false });
      if (again.getView('k000000000000000')?.length !== 100)
        throw new Error('bench store: lost the first key');
      attach.push(performance.now() - t1);
      exec.push(t1 - t0);
      if (again.size !== entries)
        throw new Error(`bench store: ${again.size} entries, expected ${entries}`);
    }
    rows.push([entries.toLocaleString('en-US'), String(extents), median(exec), median(attach)]);
  }
  process.stdout.write(
    `\nattach on one emulated machine of ${deviceBytes / MiB} MiB, 100-byte values, median of ${rounds}\n`,
  );
  table(['entries', 'extents', 'kexec exec ms', 'attach + first get ms'], rows);
}
