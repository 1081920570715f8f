/**
 * `npm run bench -- fdt`: build and parse+walk a 10,000-node tree (3
 * properties per node) and a ~4 KiB tree with our codec and, in the same run,
 * with a small C harness (bench/c/fdt_bench.c) linked against the system's
 * libfdt, built into bench/.build/ when libfdt-dev is present.
 * Target: each of ours at least 0.5x libfdt's throughput.
 *
 * Options: --ms=N time per measurement (default 500).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Fdt } from '../src/fdt/read.js';
import { FdtWriter } from '../src/fdt/write.js';
import { rate, table } from './_harness.js';

/** The same shapes the C harness builds: GROUPS bus nodes of PER_GROUP dev nodes. */
const TREES = [
  { label: '10,000 nodes', groups: 100, perGroup: 99 },
  { label: '4 KiB (48 nodes)', groups: 4, perGroup: 11 },
];

const SOURCE = fileURLToPath(new URL('../../bench/c/fdt_bench.c', import.meta.url));
const BUILD_DIR = fileURLToPath(new URL('../../bench/.build/', import.meta.url));
const BINARY = `${BUILD_DIR}fdt_bench`;

const names = new Map<string, string>();
function unitName(base: string, n: number): string {
  const key = `${base}${n}`;
  let s = names.get(key);
  if (s === undefined) {
    s = `${base}@${n.toString(16)}`;
    names.set(key, s);
  }
  return s;
}

function devProps(w: FdtWriter, index: number): void {
  w.propertyString('compatible', 'livekexec,bench-dev');
  w.propertyCells('reg', [index, 0x1000]);
  w.propertyU32('value', (index * 7) >>> 0);
}

/** Builds the tree with the sequential writer, as fdt_bench.c does with fdt_sw. */
function build(groups: number, perGroup: number): Uint8Array {
  const w = new FdtWriter({ capacity: 64 + (groups * (perGroup + 1) + 1) * 128 + 256 });
  w.finishReservations();
  w.beginNode('');
  w.propertyString('compatible', 'livekexec,bench');
  w.propertyU32('#address-cells', 1);
  w.propertyU32('#size-cells', 1);
  for (let g = 0; g < groups; g++) {
    w.beginNode(unitName('bus', g));
    devProps(w, g);
    for (let d = 0; d < perGroup; d++) {
      w.beginNode(unitName('dev', d));
      devProps(w, d);
      w.endNode();
    }
    w.endNode();
  }
  w.endNode();
  return w.finish();
}

/**
 * Checks the header, then visits every node and property reading names and
 * values; returns the checksum fdt_bench.c computes, so both walk the same tree.
 */
function walk(blob: Uint8Array): number {
  const fdt = Fdt.from(blob);
  let sum = 0;
  for (let n = fdt.nextNode(-1, 0); n.offset >= 0; n = fdt.nextNode(n.offset, n.depth)) {
    const name = fdt.getName(n.offset);
    sum = (sum + name.length + (name.length > 0 ? name.charCodeAt(0) : 0)) >>> 0;
    for (let p = fdt.firstPropertyOffset(n.offset); p >= 0; p = fdt.nextPropertyOffset(p)) {
      const prop = fdt.getPropertyByOffset(p);
      const v = prop.value;
      sum =
        (sum +
          v.length +
          prop.name.charCodeAt(0) +
          (v.length > 0 ? (v[v.length - 1] as number) : 0)) >>>
        0;
    }
  }
  return sum;
}

/** Builds the C harness when libfdt-dev is present; undefined (with the reason printed) if not. */
function libfdtHarness(): string | undefined {
  const hasCc = spawnSync('sh', ['-c', 'command -v cc'], { stdio: 'ignore' }).status === 0;
  if (!hasCc || !existsSync('/usr/include/libfdt.h')) {
    process.stdout.write(
      'libfdt: NOT MEASURED - libfdt-dev or a C compiler is missing (apt-get install libfdt-dev gcc); ours only.\n',
    );
    return undefined;
  }
  if (!existsSync(BINARY) || statSync(BINARY).mtimeMs < statSync(SOURCE).mtimeMs) {
    mkdirSync(BUILD_DIR, { recursive: true });
    execFileSync('cc', ['-O2', '-o', BINARY, SOURCE, '-lfdt'], { stdio: 'inherit' });
  }
  return BINARY;
}

interface CResult {
  build: number;
  walk: number;
  bytes: number;
  checksum: number;
}

function runC(bin: string, groups: number, perGroup: number, ms: number): CResult {
  const out = execFileSync(bin, [String(groups), String(perGroup), String(ms)], {
    encoding: 'utf8',
  });
  const b = /^build ([\d.]+) (\d+)$/m.exec(out);
  const w = /^walk ([\d.]+) (\d+)$/m.exec(out);
  if (!b || !w) throw new Error(`fdt_bench printed something unexpected:\n${out}`);
  return { build: Number(b[1]), bytes: Number(b[2]), walk: Number(w[1]), checksum: Number(w[2]) };
}

/** Measurements alternate between ours and libfdt, best of ROUNDS, so load from elsewhere hits both alike. */
const ROUNDS = 3;

/** The options run() reads (`--NAME` or `--NAME=VALUE`); main.ts refuses others. */
export const options: readonly string[] = ['ms'];

export async function run(args: string[]): Promise<void> {
  const msArg = args.find((a) => a.startsWith('--ms='));
  const ms = msArg ? Number(msArg.slice(5)) : 500;
  const bin = libfdtHarness();
  const rows: (string | number)[][] = [];
  for (const t of TREES) {
    const blob = build(t.groups, t.perGroup);
    const sum = walk(blob);
    let buildRate = 0;
    let walkRate = 0;
    let c: CResult | undefined;
    for (let round = 0; round < ROUNDS; round++) {
      buildRate = Math.max(
        buildRate,
        rate(() => build(t.groups, t.perGroup), ms),
      );
      walkRate = Math.max(
        walkRate,
        rate(() => walk(blob), ms),
      );
      if (!bin) continue;
      const r = runC(bin, t.groups, t.perGroup, ms);
      if (r.bytes !== blob.length || r.checksum !== sum) {
        throw new Error(
          `${t.label}: libfdt built ${r.bytes} bytes (sum ${r.checksum}), we built ${blob.length} (sum ${sum})`,
        );
      }
      c = c ? { ...r, build: Math.max(c.build, r.build), walk: Math.max(c.walk, r.walk) } : r;
    }
    const ratio = (ours: number, theirs: number | undefined) =>
      theirs ? `${(ours / theirs).toFixed(2)}x` : 'n/a';
    rows.push([
      `build ${t.label}, ${blob.length} B`,
      buildRate,
      c?.build ?? 'n/a',
      ratio(buildRate, c?.build),
    ]);
    rows.push([
      `parse+walk ${t.label}, ${blob.length} B`,
      walkRate,
      c?.walk ?? 'n/a',
      ratio(walkRate, c?.walk),
    ]);
  }
  table(['fdt', 'ours ops/s', 'libfdt ops/s', 'ours/libfdt'], rows);
  process.stdout.write(
    `best of ${ROUNDS} rounds of ${ms} ms each; target: ours/libfdt >= 0.50x for build and parse+walk\n`,
  );
}
