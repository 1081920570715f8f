/**
 * KHO through the kernel API on an emulated machine: preservation rate
 * (order-0 and order-9 folios, and preservePages of large ranges), then the
 * handover itself with 1, 4 and 16 GiB preserved: finalize, kexec.exec()
 * (boot block and successor boot, with its radix tree walk and memblock
 * reservations) and the restore of everything, beside the metadata bytes.
 * Peer: a naive snapshot handover, copying the preserved bytes into a new
 * ArrayBuffer. Kernel reference: 512 KiB of order-0 bitmaps per 16 GiB.
 *
 * Data pages are never touched by KHO, so the 16 GiB device costs only the
 * memory the kernels' own structures use (except the peer's 1 GiB copy).
 * Options: --rounds=N (handovers per case, best kept; default 3), --quick
 * (1 GiB cases only, one round), --case=GIB:SHAPE (one handover case, e.g.
 * 4:order0, for `node --cpu-prof`).
 */
import type { Kernel } from '../src/kernel/kernel.js';
import { KhoRadixTree } from '../src/kho/radix.js';
import { parseRootFdt } from '../src/kho/root-fdt.js';
import { Machine } from '../src/machine.js';
import { PAGE_SIZE } from '../src/memory/device.js';
import type { Folio } from '../src/mm/folio.js';
import { table } from './_harness.js';

const GiB = 2 ** 30;
const KiB = 1024;
/** Room above the preserved memory: the kernels' tree pages, scratch, boot blocks. */
const ROOM = 256 * 2 ** 20;
/** Every case runs on the same machine, so the successor's fixed boot cost is the same. */
const MACHINE_SIZE = 16 * GiB + ROOM;
const PAGES_PER_GIB = GiB / PAGE_SIZE;
/** The kernel's figure: 512 KiB of order-0 bitmaps per 16 GiB. */
const KERNEL_ORDER0_PER_GIB = (512 * KiB) / 16;

/** How a case preserves its memory, and how the successor takes it back. */
type Shape =
  /** preserveFolio of order-0 folios; restoreFolio of each. */
  | 'order0'
  /** preservePages(pfn, 512) of both halves of order-10 folios; restorePages of each. */
  | 'order9'
  /** preservePages of each contiguous run of order-10 folios (split into large aligned blocks). */
  | 'ranges';

interface Case {
  label: string;
  gib: number;
  shape: Shape;
}

/** Preserved memory as (pfn, count) pieces, the unit the shape preserves and restores. */
interface Pieces {
  pfn: Float64Array;
  count: Float64Array;
}

function ms(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function time(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return ms(t0);
}

function mustAlloc(kernel: Kernel, order: number): Folio {
  const f = kernel.allocPages(order);
  if (f === null) throw new Error(`bench: out of memory allocating order ${order}`);
  return f;
}

/** Contiguous runs of the given folios (all of one order), as pieces. */
function runsOf(folios: readonly Folio[]): Pieces {
  const span = 2 ** (folios[0]?.order ?? 0);
  const pfns = Float64Array.from(folios, (f) => f.pfn).sort();
  const starts: number[] = [];
  const counts: number[] = [];
  for (const p of pfns) {
    const last = starts.length - 1;
    if (last >= 0 && starts[last] + counts[last] === p) counts[last] += span;
    else {
      starts.push(p);
      counts.push(span);
    }
  }
  return { pfn: Float64Array.from(starts), count: Float64Array.from(counts) };
}

/** Allocates `gib` GiB in the shape's folios and returns the pieces it preserves. */
function allocate(kernel: Kernel, gib: number, shape: Shape): Pieces {
  const pages = gib * PAGES_PER_GIB;
  if (shape === 'order0') {
    const pfn = new Float64Array(pages);
    for (let i = 0; i < pages; i++) pfn[i] = mustAlloc(kernel, 0).pfn;
    return { pfn, count: new Float64Array(pages).fill(1) };
  }
  const folios: Folio[] = [];
  for (let i = 0; i < pages / 1024; i++) folios.push(mustAlloc(kernel, 10));
  if (shape === 'ranges') return runsOf(folios);
  const pfn = new Float64Array(pages / 512);
  folios.forEach((f, i) => {
    pfn[2 * i] = f.pfn;
    pfn[2 * i + 1] = f.pfn + 512;
  });
  return { pfn, count: new Float64Array(pfn.length).fill(512) };
}

function preserve(kernel: Kernel, shape: Shape, p: Pieces): void {
  const kho = kernel.kho;
  if (shape === 'order0') {
    for (let i = 0; i < p.pfn.length; i++) kho.preserveFolio({ pfn: p.pfn[i], order: 0 });
  } else {
    for (let i = 0; i < p.pfn.length; i++) kho.preservePages(p.pfn[i], p.count[i]);
  }
}

function restore(kernel: Kernel, shape: Shape, p: Pieces): void {
  const kho = kernel.kho;
  if (shape === 'order0') {
    for (let i = 0; i < p.pfn.length; i++) kho.restoreFolio(p.pfn[i] * PAGE_SIZE);
  } else {
    for (let i = 0; i < p.pfn.length; i++) kho.restorePages(p.pfn[i] * PAGE_SIZE, p.count[i]);
  }
}

function int(n: number): string {
  return n.toLocaleString('en-US');
}

function fmtBytes(n: number): string {
  if (n >= KiB * KiB) return `${(n / (KiB * KiB)).toFixed(1)} MiB`;
  if (n >= KiB) return `${(n / KiB).toFixed(1)} KiB`;
  return `${Math.round(n)} B`;
}

// ------------------------------------------------------------ preservation rate

interface RateRow {
  label: string;
  calls: number;
  pages: number;
  ms: number;
}

/** Best of `rounds` timed preserve loops over pieces allocated beforehand (allocation not timed). */
function preserveRate(
  label: string,
  rounds: number,
  pieces: Pieces,
  doPreserve: () => void,
  undo: () => void,
): RateRow {
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < rounds; r++) {
    best = Math.min(best, time(doPreserve));
    undo();
  }
  let pages = 0;
  for (const c of pieces.count) pages += c;
  return { label, calls: pieces.pfn.length, pages, ms: best };
}

function rates(rounds: number, quick: boolean): void {
  const gib0 = quick ? 1 : 4;
  const gib9 = quick ? 1 : 16;
  const machine = Machine.create({ size: MACHINE_SIZE });
  const kernel = machine.boot('');
  const kho = kernel.kho;
  const rows: RateRow[] = [];

  const p0 = allocate(kernel, gib0, 'order0');
  rows.push(
    preserveRate(
      `preserveFolio, order 0 (${gib0} GiB)`,
      rounds,
      p0,
      () => {
        for (let i = 0; i < p0.pfn.length; i++) kho.preserveFolio({ pfn: p0.pfn[i], order: 0 });
      },
      () => {
        for (let i = 0; i < p0.pfn.length; i++) kho.unpreserveFolio({ pfn: p0.pfn[i], order: 0 });
      },
    ),
  );
  for (const pfn of p0.pfn) kernel.freePages({ pfn, order: 0 });

  // Order-9 folios: the allocator hands them out as asked.
  const n9 = (gib9 * PAGES_PER_GIB) / 512;
  const p9: Pieces = { pfn: new Float64Array(n9), count: new Float64Array(n9).fill(512) };
  for (let i = 0; i < n9; i++) p9.pfn[i] = mustAlloc(kernel, 9).pfn;
  rows.push(
    preserveRate(
      `preserveFolio, order 9 (${gib9} GiB)`,
      rounds,
      p9,
      () => {
        for (let i = 0; i < n9; i++) kho.preserveFolio({ pfn: p9.pfn[i], order: 9 });
      },
      () => {
        for (let i = 0; i < n9; i++) kho.unpreserveFolio({ pfn: p9.pfn[i], order: 9 });
      },
    ),
  );
  // The same pages as contiguous ranges: preservePages checks every page, then splits.
  const runs = runsOf([...p9.pfn].map((pfn) => ({ pfn, order: 9 })));
  rows.push(
    preserveRate(
      `preservePages, ${runs.pfn.length} contiguous range(s) (${gib9} GiB)`,
      rounds,
      runs,
      () => {
        for (let i = 0; i < runs.pfn.length; i++) kho.preservePages(runs.pfn[i], runs.count[i]);
      },
      () => {
        for (let i = 0; i < runs.pfn.length; i++) kho.unpreservePages(runs.pfn[i], runs.count[i]);
      },
    ),
  );
  table(
    ['preservation (allocation not timed)', 'calls', 'pages', 'ms', 'calls/s', 'pages/s'],
    rows.map((r) => [
      r.label,
      int(r.calls),
      int(r.pages),
      r.ms,
      r.calls / (r.ms / 1000),
      r.pages / (r.ms / 1000),
    ]),
  );
}

/**
 * The kernel's own figure is for 16 GiB of order-0 pages: preserve exactly
 * that (metadata only, no handover) to put our bytes beside it.
 */
function order0Metadata16(): void {
  const machine = Machine.create({ size: MACHINE_SIZE });
  const kernel = machine.boot('');
  const p = allocate(kernel, 16, 'order0');
  preserve(kernel, 'order0', p);
  const status = kernel.kho.preserved();
  const root = kernel.kho.finalize();
  const bytes = status.metadataPages * PAGE_SIZE + root.length;
  process.stdout.write(
    `\n16 GiB preserved as ${int(p.pfn.length)} order-0 folios: ${status.metadataPages} tree pages + ${root.length} B root FDT = ${fmtBytes(bytes)} ` +
      `(${fmtBytes(bytes / 16)} per GiB); kernel: 512 KiB of bitmaps (32.0 KiB per GiB).\n`,
  );
}

// ------------------------------------------------------------ handover

interface HandoverResult {
  c: Case;
  blocks: number;
  metadata: number;
  finalizeMs: number;
  walkMs: number;
  execMs: number;
  restoreMs: number;
  /** Milliseconds of the snapshot peer (copy of the preserved bytes), when measured. */
  copyMs?: { fresh: number; warm: number };
}

/**
 * One case on a fresh machine: preserve, then `rounds` handovers. Each
 * successor restores everything (timed) and preserves it again for the next.
 * The snapshot peer runs last, on the same pieces.
 */
function handover(c: Case, rounds: number, withPeer: boolean): HandoverResult {
  const machine = Machine.create({ size: MACHINE_SIZE });
  let kernel = machine.boot('');
  const pieces = c.gib > 0 ? allocate(kernel, c.gib, c.shape) : null;
  const out: HandoverResult = {
    c,
    blocks: 0,
    metadata: 0,
    finalizeMs: Number.POSITIVE_INFINITY,
    walkMs: Number.POSITIVE_INFINITY,
    execMs: Number.POSITIVE_INFINITY,
    restoreMs: Number.POSITIVE_INFINITY,
  };
  for (let r = 0; r < rounds; r++) {
    if (pieces) preserve(kernel, c.shape, pieces);
    const status = kernel.kho.preserved();
    out.blocks = status.byOrder.reduce((n, o) => n + o.blocks, 0);
    if (status.bytes !== c.gib * GiB)
      throw new Error(`bench: ${c.label}: preserved ${status.bytes} bytes`);
    kernel.kexec.load();
    let root: Uint8Array = new Uint8Array(0);
    out.finalizeMs = Math.min(
      out.finalizeMs,
      time(() => {
        root = kernel.kho.finalize();
      }),
    );
    out.metadata = status.metadataPages * PAGE_SIZE + root.length;
    // The successor's walk alone (it also validates and checksums the tree, and reserves).
    const treePhys = parseRootFdt(root, machine.device.size).memoryMapPhys;
    out.walkMs = Math.min(
      out.walkMs,
      time(() => KhoRadixTree.walk(machine.device, treePhys, () => {})),
    );
    let next = kernel;
    out.execMs = Math.min(
      out.execMs,
      time(() => {
        next = kernel.kexec.exec();
      }),
    );
    if (!next.kho.isKhoBoot())
      throw new Error(`bench: ${c.label}: the successor did not revive KHO`);
    kernel = next;
    if (pieces)
      out.restoreMs = Math.min(
        out.restoreMs,
        time(() => restore(kernel, c.shape, pieces)),
      );
    else out.restoreMs = 0;
    const left = kernel.kho.unclaimed();
    if (left.blocks !== 0) throw new Error(`bench: ${c.label}: ${left.blocks} blocks not restored`);
  }
  // After the handovers, so its gigabyte of page faults does not disturb them.
  if (withPeer && pieces) out.copyMs = snapshotPeer(machine, pieces);
  return out;
}

/**
 * The peer: a handover that serializes the data copies every preserved byte
 * (here once, into a new ArrayBuffer; the successor would copy it back). The
 * source is filled first so the copy reads real pages, not untouched ones.
 * `fresh` copies into a new buffer (page faults included, as a real snapshot
 * pays them); `warm` copies again into the same, already touched buffer.
 */
function snapshotPeer(machine: Machine, pieces: Pieces): { fresh: number; warm: number } {
  let total = 0;
  for (const c of pieces.count) total += c * PAGE_SIZE;
  for (let i = 0; i < pieces.pfn.length; i++) {
    machine.device.bytes(pieces.pfn[i] * PAGE_SIZE, pieces.count[i] * PAGE_SIZE).fill(0xa5);
  }
  let snap = new Uint8Array(0);
  const copy = (): void => {
    let at = 0;
    for (let i = 0; i < pieces.pfn.length; i++) {
      const src = machine.device.bytes(pieces.pfn[i] * PAGE_SIZE, pieces.count[i] * PAGE_SIZE);
      snap.set(src, at);
      at += src.length;
    }
  };
  const fresh = time(() => {
    snap = new Uint8Array(new ArrayBuffer(total));
    copy();
  });
  const warm = time(copy);
  if (snap[0] !== 0xa5 || snap[total - 1] !== 0xa5)
    throw new Error('bench: snapshot copy lost data');
  return { fresh, warm };
}

function handovers(rounds: number, quick: boolean, only: string | undefined): void {
  const cases: Case[] = [
    { label: 'nothing preserved (KHO on)', gib: 0, shape: 'order9' },
    { label: '1 GiB, order 9', gib: 1, shape: 'order9' },
    { label: '1 GiB, order 0', gib: 1, shape: 'order0' },
  ];
  if (!quick) {
    cases.push(
      { label: '4 GiB, order 9', gib: 4, shape: 'order9' },
      { label: '4 GiB, order 0', gib: 4, shape: 'order0' },
      { label: '16 GiB, order 9', gib: 16, shape: 'order9' },
      { label: '16 GiB, large ranges', gib: 16, shape: 'ranges' },
    );
  }
  const results: HandoverResult[] = [];
  for (const c of cases) {
    if (only !== undefined && only !== `${c.gib}:${c.shape}`) continue;
    results.push(handover(c, rounds, c.gib === 1 && c.shape === 'order9'));
  }
  table(
    [
      'preserved',
      'blocks',
      'metadata',
      'metadata/GiB',
      'kernel/GiB',
      'finalize ms',
      'walk ms',
      'exec ms',
      'restore ms',
    ],
    results.map((r) => {
      const perGib = r.c.gib > 0 ? fmtBytes(r.metadata / r.c.gib) : '-';
      const kernel = r.c.shape === 'order0' && r.c.gib > 0 ? fmtBytes(KERNEL_ORDER0_PER_GIB) : '-';
      return [
        r.c.label,
        int(r.blocks),
        fmtBytes(r.metadata),
        perGib,
        kernel,
        r.finalizeMs,
        r.walkMs,
        r.execMs,
        r.restoreMs,
      ];
    }),
  );
  process.stdout.write(
    '\nmetadata: radix tree pages * 4096 + root FDT bytes; kernel/GiB: 512 KiB of order-0 bitmaps per 16 GiB.\n' +
      'walk: one KhoRadixTree.walk of the tree (validate, then visit every block), timed outside exec.\n' +
      'exec: kexec.exec() (boot block and successor boot, with the walk, checksum and memblock reservations); finalize is before it.\n' +
      'Every case runs on the same 16.25 GiB machine; "nothing preserved" is the boot cost KHO does not add.\n',
  );

  const base = results.find((r) => r.c.gib === 0);
  const big = results.find((r) => r.c.gib === 16 && r.c.shape === 'order9');
  const small0 = results.find((r) => r.c.gib === 1 && r.c.shape === 'order0');
  const one9 = results.find((r) => r.c.gib === 1 && r.c.shape === 'order9');
  if (base && big && small0) {
    const total = (r: HandoverResult) => r.finalizeMs + r.execMs;
    const over = (r: HandoverResult) => (total(r) - total(base)).toFixed(1);
    process.stdout.write(
      `\ncomparison (finalize + exec): 16 GiB as order 9 (${int(big.blocks)} blocks, ${fmtBytes(big.metadata)} metadata) ${total(big).toFixed(1)} ms, ${over(big)} ms over nothing preserved; ` +
        `1 GiB as order 0 (${int(small0.blocks)} blocks, ${fmtBytes(small0.metadata)} metadata) ${total(small0).toFixed(1)} ms, ${over(small0)} ms over; ` +
        `nothing preserved ${total(base).toFixed(1)} ms.\n`,
    );
  }
  if (one9?.copyMs !== undefined) {
    const mibs = (t: number) => (GiB / 2 ** 20 / (t / 1000)).toFixed(0);
    const { fresh, warm } = one9.copyMs;
    process.stdout.write(
      `peer (1 GiB): naive snapshot, copying the preserved bytes once into a new ArrayBuffer: ${fresh.toFixed(1)} ms ` +
        `(${mibs(fresh)} MiB/s with page faults; ${warm.toFixed(1)} ms, ${mibs(warm)} MiB/s into a touched buffer) ` +
        `vs KHO finalize + exec ${(one9.finalizeMs + one9.execMs).toFixed(1)} ms with ${fmtBytes(one9.metadata)} of metadata.\n`,
    );
  }
}

/** The options run() reads (`--NAME` or `--NAME=VALUE`); main.ts refuses others. */
export const options: readonly string[] = ['quick', 'rounds', 'case'];

export async function run(args: string[]): Promise<void> {
  const quick = args.includes('--quick');
  const roundsArg = args.find((a) => a.startsWith('--rounds='));
  const rounds = quick ? 1 : roundsArg ? Math.max(1, Number(roundsArg.slice(9)) | 0) : 3;
  // --case=GIB:SHAPE (e.g. 4:order0) runs that handover case alone, for profiling.
  const only = args.find((a) => a.startsWith('--case='))?.slice(7);
  if (only === undefined) {
    rates(rounds, quick);
    if (!quick) order0Metadata16();
    process.stdout.write('\n');
  }
  handovers(rounds, quick, only);
}
