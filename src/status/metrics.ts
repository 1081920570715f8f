/**
 * A generation's status as Prometheus metrics, in the text exposition
 * format (version 0.0.4), and as metric objects a prom-client Registry
 * takes with `registerMetric()` (prom-client reads any object with a name,
 * a type, a help text and `get()`), so a service that already serves
 * prom-client's registry adds livekexec's metrics without livekexec
 * depending on prom-client or on its version.
 */
import { bytesByKind } from './layout.js';
import type { PublishedStatus, RunKind } from './model.js';

export interface MetricSample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
  /** The sample's own name when it differs from the family's (histogram _bucket, _sum, _count). */
  readonly metricName?: string;
}

export interface MetricFamily {
  readonly name: string;
  readonly help: string;
  readonly type: 'gauge' | 'counter' | 'histogram';
  readonly samples: readonly MetricSample[];
}

/** Preserved memory by subsystem, from the layout (disjoint: each page counted once). */
const PRESERVED_KINDS: readonly [RunKind, string][] = [
  ['kho', 'kho'],
  ['pkram', 'pkram'],
  ['pmpool', 'pmpool'],
  ['reserve-mem', 'reserve_mem'],
  ['incoming', 'incoming'],
];

export function metricFamilies(s: PublishedStatus): MetricFamily[] {
  const one = (value: number): MetricSample[] => [{ labels: {}, value }];
  const h = s.handover;
  const bytes = bytesByKind(s.layout);
  let cumulative = 0;
  const buckets: MetricSample[] = h.downtime.boundsUs.map((b, i) => {
    cumulative += h.downtime.counts[i] ?? 0;
    return {
      metricName: 'livekexec_handover_downtime_seconds_bucket',
      labels: { le: String(b / 1e6) },
      value: cumulative,
    };
  });
  const count = h.downtime.counts.reduce((a, b) => a + b, 0);
  buckets.push(
    {
      metricName: 'livekexec_handover_downtime_seconds_bucket',
      labels: { le: '+Inf' },
      value: count,
    },
    {
      metricName: 'livekexec_handover_downtime_seconds_sum',
      labels: {},
      value: h.downtime.sumUs / 1e6,
    },
    { metricName: 'livekexec_handover_downtime_seconds_count', labels: {}, value: count },
  );
  const families: MetricFamily[] = [
    {
      name: 'livekexec_generation',
      help: 'Boots of the device so far, this one included.',
      type: 'gauge',
      samples: one(s.generation),
    },
    {
      name: 'livekexec_boot_time_seconds',
      help: 'When the running generation booted (seconds since the epoch).',
      type: 'gauge',
      samples: one(s.bootedAtMs / 1000),
    },
    {
      name: 'livekexec_device_bytes',
      help: 'Size of the memory device.',
      type: 'gauge',
      samples: one(s.deviceSize),
    },
    {
      name: 'livekexec_pages',
      help: 'Pages of the device by state in the page allocator.',
      type: 'gauge',
      samples: (['free', 'allocated', 'reserved', 'preserved'] as const).map((state) => ({
        labels: { state },
        value: s.pages[state],
      })),
    },
    {
      name: 'livekexec_free_blocks',
      help: 'Free blocks of 2^order pages in the page allocator (buddyinfo).',
      type: 'gauge',
      samples: s.pages.freeByOrder.map((value, order) => ({
        labels: { order: String(order) },
        value,
      })),
    },
    {
      name: 'livekexec_preserved_bytes',
      help: 'Memory kept for the next generation, by subsystem (incoming: preserved by the previous generation, not yet restored).',
      type: 'gauge',
      samples: PRESERVED_KINDS.map(([kind, subsystem]) => ({
        labels: { subsystem },
        value: bytes.get(kind) ?? 0,
      })),
    },
    {
      name: 'livekexec_pmpool_pages',
      help: 'Pages of each persistent memory pool, used and in all.',
      type: 'gauge',
      samples: s.pmpools.flatMap((p) => [
        { labels: { pool: p.name ?? 'default', state: 'used' }, value: p.usedPages },
        { labels: { pool: p.name ?? 'default', state: 'total' }, value: p.totalPages },
      ]),
    },
    {
      name: 'livekexec_luo_descriptors',
      help: 'Descriptors in live update sessions.',
      type: 'gauge',
      samples: (s.luo?.sessions ?? []).map((ss) => ({
        labels: { session: ss.name, direction: ss.direction },
        value: ss.files.length,
      })),
    },
    {
      name: 'livekexec_handovers_total',
      help: 'Handovers that completed, over the life of the device.',
      type: 'counter',
      samples: one(h.handovers),
    },
    {
      name: 'livekexec_handovers_failed_total',
      help: 'Handovers that failed before the successor took over (the old generation went on).',
      type: 'counter',
      samples: one(h.failed),
    },
    {
      name: 'livekexec_handover_fallbacks_total',
      help: 'Successors replaced by the last good program.',
      type: 'counter',
      samples: one(h.fallbacks),
    },
    {
      name: 'livekexec_handovers_refused_total',
      help: 'Handovers a booting generation refused (it booted cold, keeping the preserved memory reserved).',
      type: 'counter',
      samples: one(h.refused),
    },
    {
      name: 'livekexec_handover_downtime_seconds',
      help: "From the predecessor's exec to the successor's boot.",
      type: 'histogram',
      samples: buckets,
    },
  ];
  return families;
}

function labelText(labels: Readonly<Record<string, string>>): string {
  const parts = Object.entries(labels).map(
    ([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`,
  );
  return parts.length ? `{${parts.join(',')}}` : '';
}

function valueText(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

/** The text exposition format (Content-Type: text/plain; version=0.0.4). */
export function formatPrometheus(families: readonly MetricFamily[]): string {
  const lines: string[] = [];
  for (const f of families) {
    lines.push(
      `# HELP ${f.name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`,
      `# TYPE ${f.name} ${f.type}`,
    );
    for (const s of f.samples)
      lines.push(`${s.metricName ?? f.name}${labelText(s.labels)} ${valueText(s.value)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** What prom-client's Registry needs of a metric (its `registerMetric` and `metrics()`). */
export interface PromClientMetric {
  readonly name: string;
  readonly help: string;
  readonly type: MetricFamily['type'];
  get(): Promise<{
    name: string;
    help: string;
    type: string;
    aggregator: 'sum';
    values: { value: number; labels: Record<string, string>; metricName?: string }[];
  }>;
}

/** One prom-client metric per family, each reading `status()` when scraped. */
export function promClientMetrics(status: () => PublishedStatus): PromClientMetric[] {
  // A scrape calls every get() in one tick: the status is read once for all of them.
  let cached: MetricFamily[] | null = null;
  const families = (): MetricFamily[] => {
    if (cached === null) {
      cached = metricFamilies(status());
      queueMicrotask(() => {
        cached = null;
      });
    }
    return cached;
  };
  return families().map(({ name, help, type }) => ({
    name,
    help,
    type,
    get: async () => {
      const f = families().find((x) => x.name === name) as MetricFamily;
      return {
        name,
        help,
        type,
        aggregator: 'sum' as const,
        values: f.samples.map((s) => ({
          value: s.value,
          labels: { ...s.labels },
          ...(s.metricName === undefined ? {} : { metricName: s.metricName }),
        })),
      };
    },
  }));
}
