import type { DowntimeHistogram, HandoverHistory, LastHandover } from './model.js';

/**
 * Downtime buckets (µs): 1 ms to 10 s, the range between a preloaded
 * handover of a small device and an in-place one of a large program.
 */
export const DOWNTIME_BOUNDS_US: readonly number[] = [
  1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
  5_000_000, 10_000_000,
];

export function emptyHistory(): HandoverHistory {
  return {
    handovers: 0,
    failed: 0,
    fallbacks: 0,
    refused: 0,
    downtime: {
      boundsUs: DOWNTIME_BOUNDS_US,
      counts: new Array(DOWNTIME_BOUNDS_US.length + 1).fill(0),
      sumUs: 0,
    },
    last: null,
  };
}

/** The history with `last` counted in. */
export function recordHandover(h: HandoverHistory, last: LastHandover): HandoverHistory {
  const next = { ...h, last };
  switch (last.outcome) {
    case 'ok':
      return {
        ...next,
        handovers: h.handovers + 1,
        downtime: last.downtimeUs === undefined ? h.downtime : observe(h.downtime, last.downtimeUs),
      };
    case 'failed':
      return { ...next, failed: h.failed + 1 };
    case 'refused':
      return { ...next, refused: h.refused + 1 };
    case 'fallback':
      return { ...next, fallbacks: h.fallbacks + 1 };
  }
}

function observe(d: DowntimeHistogram, us: number): DowntimeHistogram {
  const counts = [...d.counts];
  let i = d.boundsUs.findIndex((b) => us <= b);
  if (i < 0) i = d.boundsUs.length;
  counts[i] = (counts[i] ?? 0) + 1;
  return { boundsUs: d.boundsUs, counts, sumUs: d.sumUs + us };
}

/** Completed handovers the histogram holds. */
export function histogramCount(d: DowntimeHistogram): number {
  return d.counts.reduce((a, b) => a + b, 0);
}
