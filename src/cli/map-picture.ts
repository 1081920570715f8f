/**
 * `livekexec map`: the device's physical memory as a picture, one strip per
 * node. A run at least a column (1/COLUMNS of the node) wide is drawn at its
 * exact bounds; narrower runs are gathered a column at a time and drawn
 * stacked by their shares, so the picture has at most 2 x COLUMNS x kinds
 * elements per node whatever the device's size: as readable at 64 GiB as
 * at 64 MiB.
 */
import { describeSize } from '../memory/heap.js';
import type { MemoryLayout, MemoryRun, RunKind, StatusRange } from '../status/model.js';
import { RUN_KINDS } from '../status/model.js';
import { KIND_LABEL } from './status-format.js';

/** Columns per strip (2 px each). */
export const COLUMNS = 600;
const COLUMN_PX = 2;
const LEFT = 150;
const STRIP_H = 40;
const ROW_H = 86;
const WIDTH = LEFT + COLUMNS * COLUMN_PX + 20;

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
 * narrower runs are gathered until they fill a column. So there are at most
 * 2 x COLUMNS segments whatever the number of runs: O(runs in the node).
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
  } | null = null;
  const flush = () => {
    if (!pending) return;
    const p = pending;
    out.push({
      base: p.base,
      size: p.size,
      shares: RUN_KINDS.filter((k) => p.bytes.has(k)).map(
        (k) => [k, (p.bytes.get(k) as number) / p.size] as [RunKind, number],
      ),
      owners: [...p.owners],
    });
    pending = null;
  };
  for (let i = lowerBound(runs, node.base); i < runs.length; i++) {
    const r = runs[i] as MemoryRun;
    if (r.base >= end) break;
    const a = Math.max(r.base, node.base);
    const b = Math.min(r.base + r.size, end);
    if (b - a >= column) {
      flush();
      out.push({
        base: a,
        size: b - a,
        shares: [[r.kind, 1]],
        owners: r.owner === undefined ? [] : [r.owner],
      });
      continue;
    }
    pending ??= { base: a, size: 0, bytes: new Map(), owners: new Set() };
    pending.size += b - a;
    pending.bytes.set(r.kind, (pending.bytes.get(r.kind) ?? 0) + (b - a));
    if (r.owner !== undefined) pending.owners.add(r.owner);
    if (pending.size >= column) flush();
  }
  flush();
  return out;
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

function hex(x: number): string {
  return `0x${x.toString(16)}`;
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
  const height = 60 + nodes.length * ROW_H + legendRows * 22 + 20;
  const out: string[] = [];
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
    const scale = (COLUMNS * COLUMN_PX) / node.size;
    for (const s of nodeSegments(layout.runs, node)) {
      const x = (LEFT + (s.base - node.base) * scale).toFixed(2);
      const w = (s.size * scale).toFixed(2);
      out.push(
        `<g class="seg" data-start="${s.base}" data-end="${s.base + s.size}" data-kinds="${s.shares.map(([k]) => k).join(' ')}"><title>${esc(segmentText(s))}</title>`,
      );
      let yy = y;
      for (const [k, f] of s.shares) {
        const h = STRIP_H * f;
        out.push(
          `<rect x="${x}" y="${yy.toFixed(2)}" width="${w}" height="${h.toFixed(2)}" fill="${KIND_COLOR[k]}"/>`,
        );
        yy += h;
      }
      out.push('</g>');
    }
    out.push(
      `<rect x="${LEFT}" y="${y}" width="${COLUMNS * COLUMN_PX}" height="${STRIP_H}" fill="none" stroke="#333"/>`,
    );
    for (let t = 0; t <= 4; t++) {
      const x = LEFT + (t * COLUMNS * COLUMN_PX) / 4;
      const addr = node.base + Math.round((t * node.size) / 4);
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
  out.push('</g></svg>');
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
