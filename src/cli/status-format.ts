/**
 * `livekexec status` and `iomem` as people read them.
 */
import { hex, hexDigits } from '../base/hex.js';
import { describeSize } from '../memory/heap.js';
import { e820TypeName } from '../memory/memmap-types.js';
import { histogramCount } from '../status/history.js';
import type { MemoryRun, PublishedStatus, RunKind } from '../status/model.js';
import type { DeviceStatusView } from './status-read.js';

/** How each kind of run is named in iomem, the picture and the legend. */
export const KIND_LABEL: Record<RunKind, string> = {
  header: 'device header',
  free: 'free',
  allocated: 'allocated',
  kho: 'KHO preserved',
  pkram: 'PKRAM',
  incoming: 'preserved, not yet restored',
  preserved: 'preserved',
  pmpool: 'pmpool',
  scratch: 'KHO scratch',
  reserved: 'reserved',
  'boot-block': 'boot block',
  status: 'livekexec status',
  'reserve-mem': 'reserve_mem',
  crashkernel: 'Crash kernel',
};

export function runLabel(r: MemoryRun): string {
  return r.owner === undefined ? KIND_LABEL[r.kind] : `${KIND_LABEL[r.kind]} ${r.owner}`;
}

function duration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${(ms / 1000).toFixed(1)} s`;
  const parts: string[] = [];
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d) parts.push(`${d}d`);
  if (h) parts.push(`${h}h`);
  parts.push(`${m}m`, `${s % 60}s`);
  return parts.join(' ');
}

function pages(n: number): string {
  return `${n} (${describeSize(n * 4096)})`;
}

/** Lines of `livekexec status` for a device, at `now` (ms since the epoch). */
export function formatStatus(v: DeviceStatusView, now: number): string[] {
  const h = v.header;
  const out: string[] = [];
  const row = (k: string, text: string) => out.push(`${k.padEnd(11)} ${text}`);
  row('device', `${v.path}: ${describeSize(h.size)} (${h.size / 4096} pages), uuid ${h.uuid}`);
  const s = v.status;
  if (v.live && s) {
    row(
      'generation',
      `${s.generation} (${s.bootKind} boot), PID ${s.ownerPid}, up ${duration(now - s.bootedAtMs)}, ` +
        `published ${duration(now - s.publishedAtMs)} ago`,
    );
  } else {
    row(
      'generation',
      `${h.generation}, not running` +
        (v.owner !== null ? ` (held by PID ${v.owner}, which publishes no status)` : ''),
    );
  }
  if (s?.coldReason && v.live) row('', `booted cold: ${s.coldReason}`);
  if (!s) row('status', v.statusError ?? 'none');
  else if (!v.live)
    row(
      'last run',
      `generation ${s.generation}, PID ${s.ownerPid}, last published ${duration(now - s.publishedAtMs)} ago`,
    );
  if (s && v.live) {
    const p = s.pages;
    row(
      'pages',
      `free ${pages(p.free)}, allocated ${p.allocated}, reserved ${p.reserved}, preserved ${p.preserved}`,
    );
    row('free/order', p.freeByOrder.map((n, i) => `${i}:${n}`).join(' '));
  }
  if (s) out.push(...formatHandover(s, now));
  row(
    'pending',
    v.pending
      ? `boot block at ${hex(h.bootBlock)} for generation ${h.generation + 1}` +
          (v.pending.error ? ` (unreadable: ${v.pending.error})` : '') +
          (v.pending.handover
            ? `; KHO ${describeSize(v.pending.handover.preserved.reduce((n, o) => n + o.bytes, 0))} preserved, ` +
              `${v.pending.handover.subtrees.length} subtrees`
            : '')
      : 'none',
  );
  if (s && v.live) out.push(...formatPreserved(s));
  else {
    for (const p of v.pools) {
      row(
        'pmpool',
        p.ok
          ? `[${hex(p.base)}, +${describeSize(p.size)}] ${p.stats.usedPages} of ${p.stats.totalPages} pages used`
          : `[${hex(p.base)}, +${describeSize(p.size)}] unreadable: ${p.error}`,
      );
    }
  }
  return out;
}

function formatHandover(s: PublishedStatus, now: number): string[] {
  const h = s.handover;
  const out: string[] = [];
  const l = h.last;
  if (l) {
    const what =
      `${l.outcome}, ${l.way}, generation ${l.fromGeneration} -> ${l.toGeneration}` +
      (l.downtimeUs !== undefined ? `, downtime ${(l.downtimeUs / 1000).toFixed(1)} ms` : '') +
      `, ${duration(now - l.atMs)} ago` +
      (l.reason ? `: ${l.reason}` : '');
    out.push(`${'handover'.padEnd(11)} last: ${what}`);
  } else {
    out.push(`${'handover'.padEnd(11)} none yet`);
  }
  const n = histogramCount(h.downtime);
  out.push(
    `${''.padEnd(11)} ${h.handovers} ok, ${h.failed} failed, ${h.fallbacks} fallbacks, ${h.refused} refused` +
      (n > 0 ? `; mean downtime ${(h.downtime.sumUs / n / 1000).toFixed(1)} ms` : ''),
  );
  return out;
}

function formatPreserved(s: PublishedStatus): string[] {
  const out: string[] = [];
  const row = (k: string, text: string) => out.push(`${k.padEnd(11)} ${text}`);
  row(
    'kho',
    s.kho.enabled
      ? `${describeSize(s.kho.preservedBytes)} in ${s.kho.preservedBlocks} blocks, ` +
          `${s.kho.metadataPages} metadata pages, subtrees: ${s.kho.subtrees.join(', ') || 'none'}`
      : 'off',
  );
  row(
    'pkram',
    s.pkram.enabled
      ? `${s.pkram.nodes.length} nodes (${s.pkram.nodes.join(', ') || 'none'}), ${s.pkram.preservedPages} pages`
      : 'off',
  );
  for (const p of s.pmpools) {
    row(
      'pmpool',
      `${p.name ?? 'default'} [${hex(p.base)}, +${describeSize(p.size)}] ${p.usedPages} of ${p.totalPages} pages used`,
    );
  }
  for (const r of s.reserveMem)
    row('reserve_mem', `${r.name} [${hex(r.base)}, +${describeSize(r.size)}]`);
  if (!s.luo) row('luo', 'not opened');
  else if (s.luo.sessions.length === 0) row('luo', 'no sessions');
  for (const ss of s.luo?.sessions ?? []) {
    row('luo', `session ${ss.name} (${ss.direction}), ${ss.files.length} descriptors`);
    for (const f of ss.files) row('', `  token ${f.token}: ${f.description} [${f.kind}]`);
  }
  if (s.kexec) {
    row(
      'kexec',
      `loaded${s.kexec.preload ? ' (preloaded successor)' : ''}, boot block [${hex(s.kexec.segment.base)}, +${describeSize(s.kexec.segment.size)}]`,
    );
  }
  return out;
}

/**
 * The memory map as /proc/iomem prints it: the device map's ranges, and
 * nested under each what uses it (free memory is not listed, as the kernel
 * lists no free memory).
 */
export function formatIomem(v: DeviceStatusView): string[] {
  const width = Math.max(8, hexDigits(v.header.size - 1).length);
  const range = (base: number, size: number) =>
    `${hexDigits(base, width)}-${hexDigits(base + size - 1, width)}`;
  const out: string[] = [];
  const runs = v.layout.runs;
  let ri = 0;
  for (const e of v.header.memmap) {
    const name = e.type === 1 ? 'System RAM' : e820TypeName(e.type);
    out.push(`${range(e.base, e.size)} : ${name}`);
    const end = e.base + e.size;
    while (
      ri < runs.length &&
      (runs[ri] as MemoryRun).base + (runs[ri] as MemoryRun).size <= e.base
    )
      ri++;
    for (let j = ri; j < runs.length && (runs[j] as MemoryRun).base < end; j++) {
      const r = runs[j] as MemoryRun;
      if (r.kind === 'free' || (r.kind === 'reserved' && e.type !== 1)) continue;
      const b = Math.max(r.base, e.base);
      const size = Math.min(r.base + r.size, end) - b;
      out.push(`  ${range(b, size)} : ${runLabel(r)}`);
    }
  }
  return out;
}
