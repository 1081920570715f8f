/**
 * Building and shrinking a memory layout (runs of pages by use), whatever
 * its source: a live kernel, a published status, a device at rest.
 */
import { PAGE_SIZE } from '../memory/device.js';
import { type MemoryLayout, type MemoryRun, RUN_KINDS, type RunKind } from './model.js';

/** A range painted over a layout: later paints win. */
export interface Paint {
  readonly base: number;
  readonly size: number;
  readonly kind: RunKind;
  readonly owner?: string;
}

/**
 * `runs` (sorted, disjoint) with `paints` applied in order. One pass over
 * the runs, cut where a paint begins or ends: O(runs + paints x the paints
 * covering a point), and the set of paints covering a point is small (paints
 * of one kind do not overlap).
 */
export function paintRuns(runs: readonly MemoryRun[], paints: readonly Paint[]): MemoryRun[] {
  const byStart = paints
    .map((p, order) => ({ ...p, order }))
    .filter((p) => p.size > 0)
    .sort((a, b) => a.base - b.base);
  const cuts = [...new Set(byStart.flatMap((p) => [p.base, p.base + p.size]))].sort(
    (a, b) => a - b,
  );
  const out: { base: number; size: number; kind: RunKind; owner?: string }[] = [];
  const active: (typeof byStart)[number][] = [];
  let ci = 0;
  let pi = 0;
  for (const run of runs) {
    const end = run.base + run.size;
    for (let a = run.base; a < end; ) {
      while (ci < cuts.length && (cuts[ci] as number) <= a) ci++;
      const b = Math.min(end, cuts[ci] ?? end);
      while (pi < byStart.length && (byStart[pi] as Paint).base <= a)
        active.push(byStart[pi++] as (typeof byStart)[number]);
      for (let j = active.length - 1; j >= 0; j--) {
        const p = active[j] as Paint;
        if (p.base + p.size <= a) active.splice(j, 1);
      }
      let kind = run.kind;
      let owner = run.owner;
      let top = -1;
      for (const p of active) {
        if (p.order > top) {
          top = p.order;
          kind = p.kind;
          owner = p.owner;
        }
      }
      const last = out[out.length - 1];
      if (last && last.kind === kind && last.owner === owner && last.base + last.size === a) {
        last.size += b - a;
      } else {
        out.push(
          owner === undefined
            ? { base: a, size: b - a, kind }
            : { base: a, size: b - a, kind, owner },
        );
      }
      a = b;
    }
  }
  return out;
}

/**
 * Lays out [0, size) in cells of `cellBytes` (whole pages): the `owned`
 * runs (sorted, disjoint) at their exact bounds, and in the rest of each
 * cell the bytes `counts(c)` gives per kind, in its order (they must add up
 * to that rest; pages kept whole). Equal neighbours merge. O(cells + owned).
 */
export function layCells(
  size: number,
  cellBytes: number,
  counts: (cell: number) => [RunKind, number][],
  owned: readonly MemoryRun[],
): MemoryRun[] {
  const runs: MemoryRun[] = [];
  const push = (r: MemoryRun) => {
    if (r.size <= 0) return;
    const last = runs[runs.length - 1];
    if (last?.kind === r.kind && last.owner === r.owner && last.base + last.size === r.base)
      runs[runs.length - 1] = { ...last, size: last.size + r.size };
    else runs.push(r);
  };
  let oi = 0;
  for (let c = 0, start = 0; start < size; c++, start += cellBytes) {
    const end = Math.min(start + cellBytes, size);
    const left = counts(c);
    let ki = 0;
    let at = start;
    const fill = (to: number) => {
      while (at < to) {
        while (ki < left.length - 1 && (left[ki] as [RunKind, number])[1] <= 0) ki++;
        const entry = left[ki] ?? ['reserved', to - at];
        // The counts fill the rest of the cell; were they short, the remainder is reserved.
        const n = entry[1] > 0 ? Math.min(to - at, entry[1]) : to - at;
        push({ base: at, size: n, kind: entry[1] > 0 ? entry[0] : 'reserved' });
        entry[1] -= n;
        at += n;
      }
    };
    while (oi < owned.length && (owned[oi] as MemoryRun).base < end) {
      const r = owned[oi] as MemoryRun;
      fill(Math.max(at, r.base));
      const to = Math.min(end, r.base + r.size);
      push({ ...r, base: at, size: to - at });
      at = to;
      if (r.base + r.size > end) break;
      oi++;
    }
    fill(end);
  }
  return runs;
}

/**
 * At most `max` runs (max >= 4), every byte of each kind kept. Kinds with
 * few runs keep them exact (the fewest first, up to max / 4 runs: the
 * header, the status area, pools, scratch...), so a small region is never
 * lost; the others are counted per cell of an equal cut of the device and
 * laid out by kind in each cell (layCells), with as many cells as fit.
 * Owners are kept by the exact runs only. Work is O(runs x log(max)).
 */
export function coarsenRuns(layout: MemoryLayout, max: number): MemoryLayout {
  if (layout.runs.length <= max) return layout;
  const perKind = new Map<RunKind, number>();
  for (const r of layout.runs) perKind.set(r.kind, (perKind.get(r.kind) ?? 0) + 1);
  const exact = new Set<RunKind>();
  let pinned = 0;
  for (const [kind, n] of [...perKind].sort((a, b) => a[1] - b[1])) {
    if (pinned + n > max / 4) break;
    exact.add(kind);
    pinned += n;
  }
  const kept = layout.runs.filter((r) => exact.has(r.kind));
  const rest = layout.runs.filter((r) => !exact.has(r.kind));
  const pages = Math.ceil(layout.size / PAGE_SIZE);
  for (let cells = Math.max(1, Math.floor(max / 2)); ; cells = Math.floor(cells / 2)) {
    const cellBytes = Math.ceil(pages / Math.max(1, cells)) * PAGE_SIZE;
    const counts = bytesPerCell(rest, layout.size, cellBytes);
    const runs = layCells(layout.size, cellBytes, (c) => counts[c] ?? [], kept);
    if (runs.length <= max || cells <= 1) return { ...layout, runs };
  }
}

/** Bytes of each kind of `runs` (sorted, disjoint) in each cell, kinds in RUN_KINDS order. */
function bytesPerCell(
  runs: readonly MemoryRun[],
  size: number,
  cellBytes: number,
): [RunKind, number][][] {
  const out: [RunKind, number][][] = [];
  let ri = 0;
  for (let start = 0; start < size; start += cellBytes) {
    const end = Math.min(start + cellBytes, size);
    const bytes = new Map<RunKind, number>();
    while (ri < runs.length) {
      const r = runs[ri] as MemoryRun;
      if (r.base >= end) break;
      const a = Math.max(r.base, start);
      const b = Math.min(r.base + r.size, end);
      if (b > a) bytes.set(r.kind, (bytes.get(r.kind) ?? 0) + (b - a));
      if (r.base + r.size > end) break;
      ri++;
    }
    out.push(RUN_KINDS.filter((k) => bytes.has(k)).map((k) => [k, bytes.get(k) as number]));
  }
  return out;
}

/** Bytes per kind in a layout. */
export function bytesByKind(layout: MemoryLayout): Map<RunKind, number> {
  const out = new Map<RunKind, number>();
  for (const r of layout.runs) out.set(r.kind, (out.get(r.kind) ?? 0) + r.size);
  return out;
}
