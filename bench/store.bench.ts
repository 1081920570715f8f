/**
 * `npm run bench -- store`: livekexec/store side by side with its peers in
 * one run, each in its own process (bench/fixtures/store-peer.mjs):
 *
 * - store: livekexec/store in kernel pages on a mapped device in /dev/shm;
 *   the handover does nothing for the store, the successor attaches to it;
 * - map: a JS Map, v8.serialize to a tmpfs file before the exec, read and
 *   v8.deserialize after it;
 * - lmdb: the lmdb package on /dev/shm with noSync, closed before the exec
 *   and opened again after it.
 *
 * Every peer hands over the same way (kexec exec in place, same PID), so
 * they differ only by what they do for their state. For each size (16-byte
 * keys; 100-byte and 1 KiB values): put, get (a copy) and view (the store's
 * zero-copy getView, the Map's own object, lmdb's getBinaryFast) rates over
 * up to 1M random keys, delete rate in the successor, memory (RSS growth
 * over the fill per entry; the store's own pages), downtime (the last
 * moment generation 1 serves to the first get of generation 2: both stamps
 * CLOCK_MONOTONIC) and the successor's time from its start to its first get.
 *
 * Each program hands over `rounds` times in a chain (the state kept all the
 * way); downtime figures are the median.
 *
 * Options: --sizes=10k,1M,10M (default 10k,1M), --values=100,1024 (default
 * both), --peers=store,map,lmdb (default all), --rounds=N (default 3).
 *
 * --attach measures only the store's side of a handover, without node's
 * start: on one emulated machine of the same size for every entry count
 * (so the kernel's own boot costs the same), each size is filled with
 * 100-byte values and handed over `rounds` times (default 5); the table has
 * the median kexec exec (the kernel's handover) and the median attach
 * (openStore and the first get). 10M entries of 1 KiB need
 * ~12 GB per peer: give --sizes=10M only on a machine with room.
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Machine } from '../src/machine.js';
import { openStore } from '../src/store/index.js';
import { table } from './_harness.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PROGRAM = join(ROOT, 'bench', 'fixtures', 'store-peer.mjs');
const SHM = '/dev/shm';
const MiB = 2 ** 20;
const PEERS = ['store', 'map', 'lmdb'] as const;
type Peer = (typeof PEERS)[number];

interface Stamp {
  event: string;
  gen: number;
  ns: string;
  [field: string]: unknown;
}

export interface PeerResult {
  peer: Peer;
  entries: number;
  valueBytes: number;
  put: number;
  get: number;
  view: number;
  delete: number;
  rssPerEntry: number;
  storePerEntry: number;
  inUsePerEntry: number;
  /** stop (gen 1) -> first get (gen 2), ms. */
  downtimeMs: number;
  /** stop -> exec: what generation 1 did for its state, ms. */
  stateOutMs: number;
  /** gen 2 booted -> first get: what generation 2 did for its state, ms. */
  stateInMs: number;
  /** gen 2 start -> first get, ms. */
  firstGetMs: number;
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

export async function run(args: string[]): Promise<void> {
  const sizes = option(args, 'sizes', '10k,1M').map(parseCount);
  if (args.includes('--attach')) {
    attachOnOneMachine(sizes, Number(option(args, 'rounds', '5')[0]));
    return;
  }
  const valueSizes = option(args, 'values', '100,1024').map(Number);
  const peers = option(args, 'peers', PEERS.join(',')) as Peer[];
  const rounds = Number(option(args, 'rounds', '3')[0]);
  process.stdout.write(
    `load average before: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}\n`,
  );
  const results: PeerResult[] = [];
  for (const valueBytes of valueSizes) {
    for (const entries of sizes) {
      const rows: PeerResult[] = [];
      for (const peer of peers) {
        try {
          rows.push(await measure(peer, entries, valueBytes, rounds));
        } catch (err) {
          process.stdout.write(`${peer} ${entries} x ${valueBytes} B: ${(err as Error).message}\n`);
        }
      }
      results.push(...rows);
      process.stdout.write(
        `\n${entries.toLocaleString('en-US')} entries, 16-byte keys, ${valueBytes}-byte values\n`,
      );
      table(
        [
          'peer',
          'put/s',
          'get/s',
          'view/s',
          'delete/s',
          'RSS B/entry',
          'store B/entry',
          'downtime ms',
          'state out ms',
          'state in ms',
          'first get ms',
        ],
        rows.map((r) => [
          r.peer,
          r.put,
          r.get,
          r.view,
          r.delete,
          r.rssPerEntry,
          r.peer === 'store'
            ? `${r.storePerEntry.toFixed(0)} (${r.inUsePerEntry.toFixed(0)} in use)`
            : '-',
          r.downtimeMs,
          r.stateOutMs,
          r.stateInMs,
          r.firstGetMs,
        ]),
      );
    }
  }
  process.stdout.write(
    `\nload average after: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}\n`,
  );
  verdicts(results);
}

/** The issue's targets, judged on what ran. */
function verdicts(rs: PeerResult[]): void {
  const find = (peer: Peer, entries: number, v: number) =>
    rs.find((r) => r.peer === peer && r.entries === entries && r.valueBytes === v);
  const lines: string[] = [];
  for (const v of [100, 1024]) {
    const small = find('store', 1e4, v);
    const big = find('store', 1e7, v) ?? find('store', 1e6, v);
    if (small && big) {
      const ratio = big.downtimeMs / small.downtimeMs;
      lines.push(
        `downtime ${big.entries.toLocaleString('en-US')} / 10k entries (${v} B): ${ratio.toFixed(2)}x (target <= 1.1x) ${ratio <= 1.1 ? 'MET' : 'NOT MET'}`,
      );
    }
    for (const entries of [1e4, 1e6, 1e7]) {
      const s = find('store', entries, v);
      const l = find('lmdb', entries, v);
      if (s && l) {
        const put = s.put / l.put;
        const get = s.get / l.get;
        const view = s.view / l.get;
        lines.push(
          `${entries.toLocaleString('en-US')} x ${v} B vs lmdb: put ${put.toFixed(2)}x, get ${get.toFixed(2)}x (target >= 1x), view ${view.toFixed(2)}x lmdb's get (target >= 2x) ${put >= 1 && get >= 1 && view >= 2 ? 'MET' : 'NOT MET'}`,
        );
      }
      const m = find('map', entries, v);
      if (s && m && entries === 1e6) {
        const state = (m.stateOutMs + m.stateInMs) / (s.stateOutMs + s.stateInMs);
        const down = m.downtimeMs / s.downtimeMs;
        lines.push(
          `1,000,000 x ${v} B vs Map + v8.serialize: state handover ${state.toFixed(0)}x faster (target >= 100x) ${state >= 100 ? 'MET' : 'NOT MET'}; whole downtime ${down.toFixed(1)}x`,
        );
      }
      if (s && v === 1024) {
        const ratio = s.storePerEntry / (16 + v);
        const inUse = s.inUsePerEntry / (16 + v);
        lines.push(
          `${entries.toLocaleString('en-US')} x 1 KiB: memory held ${ratio.toFixed(2)}x raw, in use ${inUse.toFixed(2)}x, RSS ${(s.rssPerEntry / (16 + v)).toFixed(2)}x (target <= 1.3x) ${ratio <= 1.3 ? 'MET' : 'NOT MET'}`,
        );
      }
    }
  }
  process.stdout.write(`\n${lines.join('\n')}\n`);
}

/** Runs one peer at one size: fill, reads, the handover, deletes. */
async function measure(
  peer: Peer,
  entries: number,
  valueBytes: number,
  rounds: number,
): Promise<PeerResult> {
  const base = join(SHM, `livekexec-bench-store-${peer}-${process.pid}`);
  const stampsFile = `${base}.stamps`;
  const statePath = `${base}.state`;
  // The store's device holds the records (a size class over key + value + header), the table and room to grow.
  const deviceBytes =
    peer === 'store'
      ? 64 * MiB + Math.ceil((entries * (valueBytes + 16 + 16) * 1.4 + entries * 24) / MiB) * MiB
      : 64 * MiB;
  const env: NodeJS.ProcessEnv = { ...process.env, BENCH_STAMPS: stampsFile, BENCH_GEN: '1' };
  env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --max-old-space-size=16384 --expose-gc`.trim();
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        [
          PROGRAM,
          peer,
          base,
          String(deviceBytes),
          String(entries),
          String(valueBytes),
          statePath,
          String(rounds),
        ],
        { env, stdio: ['ignore', 'inherit', 'pipe'] },
      );
      let stderr = '';
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (d: string) => {
        stderr = (stderr + d).slice(-2000);
      });
      child.on('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`exit ${code}: ${stderr.trim()}`)),
      );
    });
    const stamps = readFileSync(stampsFile, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Stamp);
    const at = (event: string, gen: number): Stamp => {
      const s = stamps.find((x) => x.event === event && x.gen === gen);
      if (!s) {
        const err = stamps.find((x) => x.event === 'error');
        throw new Error(
          `no ${event} stamp of generation ${gen}${err ? `: ${String(err.message)}` : ''}`,
        );
      }
      return s;
    };
    const ms = (a: Stamp, b: Stamp) => Number(BigInt(b.ns) - BigInt(a.ns)) / 1e6;
    const filled = at('filled', 1);
    const gens = Array.from({ length: rounds }, (_, i) => i + 1);
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1];
    return {
      peer,
      entries,
      valueBytes,
      put: Number(filled.put),
      get: Number(filled.get),
      view: Number(filled.view),
      delete: Number(at('deleted', rounds + 1).delete),
      rssPerEntry: Number(filled.rssBytes) / entries,
      storePerEntry: Number(filled.storeBytes) / entries,
      inUsePerEntry: Number(filled.inUseBytes) / entries,
      downtimeMs: median(gens.map((g) => ms(at('stop', g), at('first-get', g + 1)))),
      stateOutMs: median(gens.map((g) => ms(at('stop', g), at('exec', g)))),
      stateInMs: median(gens.map((g) => ms(at('booted', g + 1), at('first-get', g + 1)))),
      firstGetMs: median(gens.map((g) => ms(at('start', g + 1), at('first-get', g + 1)))),
    };
  } finally {
    // lmdb leaves a lock file beside its data file.
    for (const f of [base, stampsFile, statePath, `${statePath}-lock`]) {
      rmSync(f, { recursive: true, force: true });
    }
  }
}

/** The store's side of a handover on one emulated machine, for each entry count. */
function attachOnOneMachine(sizes: number[], rounds: number): void {
  const most = Math.max(...sizes);
  const deviceBytes = 256 * MiB + Math.ceil((most * 200) / MiB) * MiB;
  const rows: (string | number)[][] = [];
  const value = Buffer.alloc(100, 7);
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1];
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
