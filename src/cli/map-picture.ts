/**
 * `livekexec map`: the device's physical memory as a picture, one strip per
 * node. A run at least a column (1/COLUMNS of the node) wide is a segment
 * of its own; narrower runs are gathered a column at a time, a few of them
 * each a segment still, more drawn stacked by their shares, so the picture
 * has at most 4 x COLUMNS segments per node whatever the device's size.
 * Every kind present stays visible and can be hovered: a segment holding
 * anything but free memory is drawn at least
 * MIN_SEGMENT_PX wide (the rest of the strip shrinks to make room, and the
 * address marks follow), and each share of a stacked segment at least
 * MIN_SHARE_PX high; the picture then says it is not to scale.
 */
import { hex } from '../base/hex.js';
import { describeSize } from '../memory/heap.js';
import type { MemoryLayout, MemoryRun, RunKind, StatusRange } from '../status/model.js';
import { RUN_KINDS } from '../status/model.js';
import { KIND_LABEL } from './status-format.js';

/** Columns per strip (2 px each). */
export const COLUMNS = 600;
const COLUMN_PX = 2;
const STRIP_PX = COLUMNS * COLUMN_PX;
/** Narrowest a segment holding anything but free memory is drawn. */
export const MIN_SEGMENT_PX = 10;
/** Lowest a kind's share of a stacked segment is drawn. */
const MIN_SHARE_PX = 4;
/** A gathered column of at most this many runs keeps them as segments of their own. */
const SPLIT_MAX = 4;
/** What fills the strip: segments of nothing else are widened. */
const FILLER: RunKind = 'free';
const LEFT = 150;
const STRIP_H = 40;
const ROW_H = 86;
const WIDTH = LEFT + STRIP_PX + 20;

export const KIND_COLOR: Record<RunKind, string> = {
  header: '#37474f',
  free: '#e8f5e9',
  allocated: '#64b5f6',
  kho: '#ef6c00',
  pkram: '#8e24aa',
  incoming: '#ffb74d',
  preserved: '#d84315',
  pmpool: '#2e7d32',
  scratch: '#fdd835',
  reserved: '#9e9e9e',
  'boot-block': '#e53935',
  status: '#00acc1',
  'reserve-mem': '#6d4c41',
  crashkernel: '#212121',
};

/** A piece of a strip: one run at least a column wide, or the runs of a column's width merged. */
export interface Segment {
  readonly base: number;
  readonly size: number;
  /** Kinds in it, with their share of its bytes. */
  readonly shares: readonly [RunKind, number][];
  readonly owners: readonly string[];
}

/**
 * A node's segments. A run at least a column wide keeps its exact bounds;
 * narrower runs are gathered until they fill a column, and a column of at
 * most SPLIT_MAX runs keeps them apart. So there are at most
 * (SPLIT_MAX + 1) x COLUMNS segments whatever the number of runs: O(runs in the node).
 */
export function nodeSegments(runs: readonly MemoryRun[], node: StatusRange): Segment[] {
  const out: Segment[] = [];
  const column = node.size / COLUMNS;
  const end = node.base + node.size;
  let pending: {
    base: number;
    size: number;
    bytes: Map<RunKind, number>;
    owners: Set<string>;
    runs: MemoryRun[];
  } | null = null;
  const whole = (r: MemoryRun, a: number, b: number): Segment => ({
    base: a,
    size: b - a,
    shares: [[r.kind, 1]],
    owners: r.owner === undefined ? [] : [r.owner],
  });
  const flush = () => {
    if (!pending) return;
    const p = pending;
    pending = null;
    if (p.runs.length <= SPLIT_MAX) {
      for (const r of p.runs) out.push(whole(r, r.base, r.base + r.size));
      return;
    }
    out.push({
      base: p.base,
      size: p.size,
      shares: RUN_KINDS.filter((k) => p.bytes.has(k)).map(
        (k) => [k, (p.bytes.get(k) as number) / p.size] as [RunKind, number],
      ),
      owners: [...p.owners],
    });
  };
  for (let i = lowerBound(runs, node.base); i < runs.length; i++) {
    const r = runs[i] as MemoryRun;
    if (r.base >= end) break;
    const a = Math.max(r.base, node.base);
    const b = Math.min(r.base + r.size, end);
    if (b - a >= column) {
      flush();
      out.push(whole(r, a, b));
      continue;
    }
    pending ??= { base: a, size: 0, bytes: new Map(), owners: new Set(), runs: [] };
    pending.size += b - a;
    if (pending.runs.length <= SPLIT_MAX)
      pending.runs.push(a === r.base && b === r.base + r.size ? r : { ...r, base: a, size: b - a });
    pending.bytes.set(r.kind, (pending.bytes.get(r.kind) ?? 0) + (b - a));
    if (r.owner !== undefined) pending.owners.add(r.owner);
    if (pending.size >= column) flush();
  }
  flush();
  return out;
}

/** Segments placed on a strip of STRIP_PX: offset and width of each, in px. */
export interface Placement {
  readonly x: readonly number[];
  readonly w: readonly number[];
  /** Some segment was drawn wider than its share of the node. */
  readonly widened: boolean;
}

/**
 * Widths by size, except that a segment holding anything but free memory
 * is at least MIN_SEGMENT_PX wide (less when there
 * are so many that they would take more than half the strip); the other
 * segments shrink in proportion to make room.
 */
export function placeSegments(segs: readonly Segment[], node: StatusRange): Placement {
  const natural = segs.map((s) => (s.size / node.size) * STRIP_PX);
  const small = segs.map(
    (s, i) => (natural[i] as number) < MIN_SEGMENT_PX && s.shares.some(([k]) => k !== FILLER),
  );
  const count = small.filter(Boolean).length;
  const min = count === 0 ? 0 : Math.min(MIN_SEGMENT_PX, STRIP_PX / 2 / count);
  let fixed = 0;
  let scalable = 0;
  natural.forEach((n, i) => {
    if (small[i]) fixed += Math.max(min, n);
    else scalable += n;
  });
  const k = scalable > 0 ? (STRIP_PX - fixed) / scalable : 0;
  const fit = scalable > 0 ? 1 : STRIP_PX / fixed;
  const w = natural.map((n, i) => (small[i] ? Math.max(min, n) * fit : n * k));
  const x: number[] = [];
  let at = 0;
  for (const wi of w) {
    x.push(at);
    at += wi;
  }
  return { x, w, widened: small.some((v, i) => v && (w[i] as number) > (natural[i] as number)) };
}

/** The x (px from the strip's left) where address `addr` of the node is drawn. */
function xOf(addr: number, segs: readonly Segment[], at: Placement, node: StatusRange): number {
  let lo = 0;
  let hi = segs.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if ((segs[mid] as Segment).base <= addr) lo = mid;
    else hi = mid - 1;
  }
  const s = segs[lo];
  if (!s) return ((addr - node.base) / node.size) * STRIP_PX;
  const f = Math.min(1, Math.max(0, (addr - s.base) / s.size));
  return (at.x[lo] as number) + f * (at.w[lo] as number);
}

/** Heights of a stacked segment's shares: each at least MIN_SHARE_PX when they all fit. */
function shareHeights(shares: readonly [RunKind, number][]): number[] {
  const min = Math.min(MIN_SHARE_PX, STRIP_H / shares.length);
  const raised = shares.map(([, f]) => Math.max(min, f * STRIP_H));
  const extra = raised.reduce((a, b) => a + b, 0) - STRIP_H;
  // Take the room the raised ones got from those above the minimum, in proportion.
  const spare = raised.reduce((a, h) => a + (h > min ? h - min : 0), 0);
  return raised.map((h) => (h > min && spare > 0 ? h - ((h - min) / spare) * extra : h));
}

function lowerBound(runs: readonly MemoryRun[], addr: number): number {
  let lo = 0;
  let hi = runs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const r = runs[mid] as MemoryRun;
    if (r.base + r.size <= addr) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function segmentText(s: Segment): string {
  const parts = s.shares.map(
    ([k, f]) =>
      `${KIND_LABEL[k]}${s.shares.length > 1 ? ` ${(f * 100).toFixed(f < 0.01 ? 2 : 0)}%` : ''}`,
  );
  const owners = s.owners.length ? ` (${s.owners.join(', ')})` : '';
  return `[${hex(s.base)}-${hex(s.base + s.size - 1)}] ${describeSize(s.size)}: ${parts.join(', ')}${owners}`;
}

export interface PictureInfo {
  readonly title: string;
  readonly subtitle: string;
}

/** The picture as an SVG document (hover: each segment's <title>). */
export function renderSvg(layout: MemoryLayout, info: PictureInfo): string {
  const nodes = layout.nodes.length > 0 ? layout.nodes : [{ base: 0, size: layout.size }];
  const totals = new Map<RunKind, number>();
  for (const r of layout.runs) totals.set(r.kind, (totals.get(r.kind) ?? 0) + r.size);
  const present = RUN_KINDS.filter((k) => totals.has(k));
  const legendRows = Math.ceil(present.length / 4);
  const height = 60 + nodes.length * ROW_H + legendRows * 22 + 40;
  const out: string[] = [];
  let widened = false;
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12" data-size="${layout.size}">`,
    '<rect width="100%" height="100%" fill="#ffffff"/>',
    `<text x="10" y="22" font-size="16" font-weight="bold">${esc(info.title)}</text>`,
    `<text x="10" y="42" fill="#555">${esc(info.subtitle)}</text>`,
  );
  nodes.forEach((node, n) => {
    const y = 60 + n * ROW_H;
    out.push(
      `<g class="node" data-node="${n}" data-base="${node.base}" data-size="${node.size}">`,
      `<text x="10" y="${y + 16}" font-weight="bold">node ${n}</text>`,
      `<text x="10" y="${y + 32}" fill="#555">${esc(describeSize(node.size))}</text>`,
    );
    const segs = nodeSegments(layout.runs, node);
    const placed = placeSegments(segs, node);
    widened ||= placed.widened;
    segs.forEach((s, i) => {
      const x = (LEFT + (placed.x[i] as number)).toFixed(2);
      const w = (placed.w[i] as number).toFixed(2);
      out.push(
        `<g class="seg" data-start="${s.base}" data-end="${s.base + s.size}" data-kinds="${s.shares.map(([k]) => k).join(' ')}"><title>${esc(segmentText(s))}</title>`,
      );
      let yy = y;
      const heights = shareHeights(s.shares);
      s.shares.forEach(([k], j) => {
        const h = heights[j] as number;
        out.push(
          `<rect x="${x}" y="${yy.toFixed(2)}" width="${w}" height="${h.toFixed(2)}" fill="${KIND_COLOR[k]}"/>`,
        );
        yy += h;
      });
      out.push('</g>');
    });
    out.push(
      `<rect x="${LEFT}" y="${y}" width="${STRIP_PX}" height="${STRIP_H}" fill="none" stroke="#333"/>`,
    );
    for (let t = 0; t <= 4; t++) {
      const addr = node.base + Math.round((t * node.size) / 4);
      const x = (LEFT + (t === 4 ? STRIP_PX : xOf(addr, segs, placed, node))).toFixed(2);
      const anchor = t === 0 ? 'start' : t === 4 ? 'end' : 'middle';
      out.push(
        `<line x1="${x}" y1="${y + STRIP_H}" x2="${x}" y2="${y + STRIP_H + 5}" stroke="#333"/>`,
        `<text x="${x}" y="${y + STRIP_H + 18}" text-anchor="${anchor}" fill="#333">${hex(addr)}</text>`,
      );
    }
    out.push('</g>');
  });
  const ly = 60 + nodes.length * ROW_H;
  out.push(`<g class="legend">`);
  present.forEach((k, i) => {
    const x = 10 + (i % 4) * 300;
    const y = ly + Math.floor(i / 4) * 22;
    out.push(
      `<g class="legend-item" data-kind="${k}" data-bytes="${totals.get(k)}">`,
      `<rect x="${x}" y="${y}" width="14" height="14" fill="${KIND_COLOR[k]}" stroke="#333"/>`,
      `<text x="${x + 20}" y="${y + 12}">${esc(KIND_LABEL[k])}: ${esc(describeSize(totals.get(k) as number))}</text>`,
      '</g>',
    );
  });
  out.push('</g>');
  if (widened) {
    out.push(
      `<text class="scale-note" x="10" y="${ly + legendRows * 22 + 16}" fill="#555">Not to scale: a range of anything but free memory narrower than ${MIN_SEGMENT_PX} px is drawn ${MIN_SEGMENT_PX} px wide (the rest shrinks; the address marks follow).</text>`,
    );
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** The picture in a page of its own, with a detail line that follows the pointer. */
export function renderHtml(layout: MemoryLayout, info: PictureInfo): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(info.title)}</title>
<style>body{font-family:sans-serif;margin:16px}#detail{font-family:monospace;min-height:1.4em;margin:8px 0}
.seg:hover rect{stroke:#000;stroke-width:1}</style></head>
<body>
${renderSvg(layout, info)}<div id="detail">hover over the strip for details</div>
<script>
for (const g of document.querySelectorAll('.seg')) {
  g.addEventListener('mouseenter', () => {
    document.getElementById('detail').textContent = g.querySelector('title').textContent;
  });
}
</script>
</body></html>
`;
}
