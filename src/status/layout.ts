/**
 * Building and shrinking a memory layout (runs of pages by use), whatever
 * its source: a live kernel, a published status, a device at rest.
 */
import { PAGE_SIZE } from '../memory/device.js';
import type { MemoryLayout, MemoryRun, RunKind } from './model.js';

/** A range painted over a layout: later paints win; `over` limits which kinds it may cover. */
export interface Paint {
  readonly base: number;
  readonly size: number;
  readonly kind: RunKind;
  readonly owner?: string;
  readonly over?: readonly RunKind[];
}

/**
 * `runs` (sorted, disjoint) with `paints` applied in order. One sweep over
 * the boundaries: O((runs + paints) log (runs + paints)); the set of paints
 * covering a point is small (paints of one kind do not overlap).
 */
export function paintRuns(runs: readonly MemoryRun[], paints: readonly Paint[]): MemoryRun[] {
  const points = new Set<number>();
  for (const r of runs) {
    points.add(r.base);
    points.add(r.base + r.size);
  }
  const byStart = paints
    .map((p, order) => ({ ...p, order }))
    .filter((p) => p.size > 0)
    .sort((a, b) => a.base - b.base);
  for (const p of byStart) {
    points.add(p.base);
    points.add(p.base + p.size);
  }
  const sorted = [...points].sort((a, b) => a - b);
  const out: MemoryRun[] = [];
  const active: (typeof byStart)[number][] = [];
  let ri = 0;
  let pi = 0;
  for (let i = 0; i + 1 < sorted.length; i++) {
    const a = sorted[i] as number;
    const b = sorted[i + 1] as number;
    while (ri < runs.length && (runs[ri] as MemoryRun).base + (runs[ri] as MemoryRun).size <= a)
      ri++;
    const run = runs[ri];
    if (run === undefined || run.base > a) continue;
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
      if (p.order > top && (!p.over || p.over.includes(run.kind))) {
        top = p.order;
        kind = p.kind;
        owner = p.owner;
      }
    }
    const last = out[out.length - 1];
    if (last && last.kind === kind && last.owner === owner && last.base + last.size === a) {
      out[out.length - 1] = { ...last, size: last.size + (b - a) };
    } else {
      out.push(
        owner === undefined
          ? { base: a, size: b - a, kind }
          : { base: a, size: b - a, kind, owner },
      );
    }
  }
  return out;
}

/**
 * At most `max` runs: when there are more, the device is cut into equal
 * cells of whole pages and each cell takes the kind holding most of its
 * bytes (owners are dropped), then equal neighbours merge. Work is
 * O(runs + max).
 */
export function coarsenRuns(layout: MemoryLayout, max: number): MemoryLayout {
  if (layout.runs.length <= max) return layout;
  const pages = Math.ceil(layout.size / PAGE_SIZE);
  const cell = Math.ceil(pages / max) * PAGE_SIZE;
  const out: MemoryRun[] = [];
  const bytes = new Map<RunKind, number>();
  let ri = 0;
  for (let base = 0; base < layout.size; base += cell) {
    const end = Math.min(base + cell, layout.size);
    bytes.clear();
    while (ri < layout.runs.length) {
      const r = layout.runs[ri] as MemoryRun;
      const s = Math.max(r.base, base);
      const e = Math.min(r.base + r.size, end);
      if (e > s) bytes.set(r.kind, (bytes.get(r.kind) ?? 0) + (e - s));
      if (r.base + r.size > end) break;
      ri++;
    }
    let kind: RunKind = 'reserved';
    let most = -1;
    for (const [k, n] of bytes) {
      if (n > most) {
        most = n;
        kind = k;
      }
    }
    const last = out[out.length - 1];
    if (last && last.kind === kind)
      out[out.length - 1] = { ...last, size: last.size + (end - base) };
    else out.push({ base, size: end - base, kind });
  }
  return { ...layout, runs: out };
}

/** Bytes per kind in a layout. */
export function bytesByKind(layout: MemoryLayout): Map<RunKind, number> {
  const out = new Map<RunKind, number>();
  for (const r of layout.runs) out.set(r.kind, (out.get(r.kind) ?? 0) + r.size);
  return out;
}
