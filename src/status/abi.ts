/**
 * The status area: what a running generation publishes about itself for
 * readers outside the process (`livekexec status`, `iomem`, `map`), which
 * read the device in place without its lock. It is the only place this
 * layout is written.
 *
 * Where: one range of the device's memory map of type E820.STATUS (in the
 * device header's map, so a reader finds it from page 0). A reader that
 * does not know the type treats it as reserved, as it does any unknown type.
 * Once made, the range keeps its address for the life of the device: each
 * generation (kexec or cold) takes it over and reads its predecessor's last
 * status from it first (the handover history carries on).
 *
 * The range holds two slots of equal size, written in turn, so that a
 * writer killed in the middle leaves the other slot whole:
 *
 *   slot +0x00 +--------------------+--------------------+
 *              | magic u32 "LKST"   | version u32        |
 *        +0x08 +--------------------+--------------------+
 *              | last_comp u32      | payload_len u32    |
 *        +0x10 +--------------------+--------------------+
 *              | sequence u64 (bumped by every write)    |
 *        +0x18 +--------------------+--------------------+
 *              | crc32c u32         | pad u32 (0)        |   crc over [0, 0x20 + payload_len), this field as 0
 *        +0x20 +-----------------------------------------+
 *              | payload: a flattened device tree        |
 *              | (compatible "livekexec,status-v1")      |
 *              +-----------------------------------------+ slot size
 *
 * The header is little-endian; the payload follows the devicetree
 * convention (big-endian cells), so `dtc -I dtb -O dts` prints it. A reader
 * takes the valid slot with the highest sequence; everything in it is
 * untrusted (bounds, counts and types checked, as for any device input).
 * A layout change bumps STATUS_VERSION; a change an older reader can
 * ignore (a new property or node) keeps STATUS_LAST_COMPAT_VERSION.
 *
 * The payload tree (u64 values are two cells, big-endian; "str" a string):
 *   / compatible "livekexec,status-v1"
 *     generation u64, boot-id (16 bytes), boot-kind str, owner-pid u32,
 *     booted-at-ms u64, published-at-ms u64, publish-interval-ms u32,
 *     device-size u64, [cold-reason str], [truncated (empty)]
 *   /handover  handovers, failed, fallbacks, refused u64;
 *              downtime-bounds-us u64[], downtime-counts u64[bounds+1],
 *              downtime-sum-us u64;
 *              [last-outcome str, last-at-ms u64, last-way str,
 *               last-from u64, last-to u64, [last-downtime-us u64], [last-reason str]]
 *   /boot-counting  reserved for boot counting and fallback (nothing written yet)
 *   /pages     total, free, allocated, reserved, preserved u64; free-by-order u64[]
 *   /kho       [enabled], preserved-bytes u64, preserved-blocks u64,
 *              metadata-pages u64, subtrees str[], scratch u64[2n] (base, size)
 *   /pkram     [enabled], nodes str[], preserved-pages u64
 *   /pmpool/pool@N   name str ("" = default), base, size, total-pages, used-pages u64
 *   /reserve-mem/region@N   name str, base, size u64
 *   /luo       [opened]; /luo/session@N  name str, direction str,
 *              tokens u64[], kinds str[], descriptions str[]
 *   /kexec     segment u64[2], preload (empty when true), cmdline str
 *   /layout    nodes u64[2n]; kinds str[]; owners str[];
 *              runs u64[4n] (base, size, kind index, owner index + 1 or 0);
 *              at most MAX_LAYOUT_RUNS: kinds with few runs keep them exact,
 *              the others are counted per cell of an equal cut of the device
 *              and laid out by kind in each cell (every byte of every kind kept)
 */

/** "LKST" in byte order. */
export const STATUS_MAGIC = 0x54534b4c;
export const STATUS_VERSION = 1;
export const STATUS_LAST_COMPAT_VERSION = 1;
export const STATUS_COMPATIBLE = 'livekexec,status-v1';

export const SLOT_MAGIC = 0x00;
export const SLOT_VERSION = 0x04;
export const SLOT_LAST_COMP = 0x08;
export const SLOT_PAYLOAD_LEN = 0x0c;
export const SLOT_SEQUENCE = 0x10;
export const SLOT_CRC = 0x18;
export const SLOT_HEADER_SIZE = 0x20;

/** Two slots of 32 KiB: room for the tree with a few hundred layout runs and sessions. */
export const STATUS_AREA_SIZE = 64 * 1024;
/** The largest area a reader accepts (a bound on what it reads from an untrusted map). */
export const STATUS_AREA_MAX = 1024 * 1024;

/** Property and node names of the payload tree. */
export const PROP = {
  compatible: 'compatible',
  generation: 'generation',
  bootId: 'boot-id',
  bootKind: 'boot-kind',
  ownerPid: 'owner-pid',
  bootedAtMs: 'booted-at-ms',
  publishedAtMs: 'published-at-ms',
  publishIntervalMs: 'publish-interval-ms',
  deviceSize: 'device-size',
  coldReason: 'cold-reason',
  truncated: 'truncated',
  handovers: 'handovers',
  failed: 'failed',
  fallbacks: 'fallbacks',
  refused: 'refused',
  downtimeBoundsUs: 'downtime-bounds-us',
  downtimeCounts: 'downtime-counts',
  downtimeSumUs: 'downtime-sum-us',
  lastOutcome: 'last-outcome',
  lastAtMs: 'last-at-ms',
  lastWay: 'last-way',
  lastFrom: 'last-from',
  lastTo: 'last-to',
  lastDowntimeUs: 'last-downtime-us',
  lastReason: 'last-reason',
  total: 'total',
  free: 'free',
  allocated: 'allocated',
  reserved: 'reserved',
  preserved: 'preserved',
  freeByOrder: 'free-by-order',
  enabled: 'enabled',
  preservedBytes: 'preserved-bytes',
  preservedBlocks: 'preserved-blocks',
  metadataPages: 'metadata-pages',
  subtrees: 'subtrees',
  scratch: 'scratch',
  nodes: 'nodes',
  preservedPages: 'preserved-pages',
  name: 'name',
  base: 'base',
  size: 'size',
  totalPages: 'total-pages',
  usedPages: 'used-pages',
  opened: 'opened',
  direction: 'direction',
  tokens: 'tokens',
  kinds: 'kinds',
  descriptions: 'descriptions',
  segment: 'segment',
  preload: 'preload',
  cmdline: 'cmdline',
  runs: 'runs',
  owners: 'owners',
} as const;

export const NODE = {
  handover: 'handover',
  bootCounting: 'boot-counting',
  pages: 'pages',
  kho: 'kho',
  pkram: 'pkram',
  pmpool: 'pmpool',
  pool: 'pool',
  reserveMem: 'reserve-mem',
  region: 'region',
  luo: 'luo',
  session: 'session',
  kexec: 'kexec',
  layout: 'layout',
} as const;

/** Bounds a reader enforces on lists, whatever the payload says. */
export const MAX_LIST = 4096;
/** Runs of the published layout; more are coarsened (see coarsenRuns). */
export const MAX_LAYOUT_RUNS = 512;

/**
 * setup_data SETUP.HANDOVER_CLOCK: when the predecessor's exec began, so
 * the successor can tell its downtime. Little-endian:
 *   +0x00 realtime_us u64 (µs since the epoch)
 *   +0x08 monotonic_us u64 (CLOCK_MONOTONIC, shared by every process of the machine)
 *   +0x10 way u32 (HANDOVER_WAYS index), pad u32
 */
export const CLOCK_REALTIME_US = 0x00;
export const CLOCK_MONOTONIC_US = 0x08;
export const CLOCK_WAY = 0x10;
export const CLOCK_SIZE = 0x18;
export const HANDOVER_WAYS = ['unknown', 'in-place', 'preloaded', 'restart'] as const;
