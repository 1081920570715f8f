/**
 * What a generation publishes in its status area, as plain data: the one
 * shape `livekexec status` prints, `kernel.metrics()` exports and the
 * status area encodes (see abi.ts for its layout).
 */

/** A physical range of the device. */
export interface StatusRange {
  readonly base: number;
  readonly size: number;
}

/** How the last handover ended. `fallback` is reserved for boot counting (a successor replaced by the last good program). */
export type HandoverOutcome = 'ok' | 'failed' | 'refused' | 'fallback';

export interface LastHandover {
  readonly outcome: HandoverOutcome;
  /** When it began (the predecessor's exec), or when it failed or was refused: ms since the epoch. */
  readonly atMs: number;
  /** `in-place`, `preloaded`, `emulated` or `restart`; `unknown` when the predecessor did not say. */
  readonly way: string;
  readonly fromGeneration: number;
  readonly toGeneration: number;
  /** From the predecessor's exec to the successor's boot, when it completed. */
  readonly downtimeUs?: number;
  /** Why it failed or was refused. */
  readonly reason?: string;
}

/** Every handover of the device so far (it carries on across generations). */
export interface HandoverHistory {
  readonly handovers: number;
  readonly failed: number;
  readonly fallbacks: number;
  /** Boots that refused the handover they were offered and booted cold. */
  readonly refused: number;
  readonly downtime: DowntimeHistogram;
  readonly last: LastHandover | null;
}

/** Completed handovers by downtime: counts[i] for bounds[i-1] < t <= bounds[i], the last above every bound. */
export interface DowntimeHistogram {
  readonly boundsUs: readonly number[];
  readonly counts: readonly number[];
  readonly sumUs: number;
}

export interface PageCounts {
  readonly total: number;
  readonly free: number;
  readonly allocated: number;
  readonly reserved: number;
  readonly preserved: number;
  /** Free blocks per order (buddyinfo). */
  readonly freeByOrder: readonly number[];
}

export interface LuoSessionStatus {
  readonly name: string;
  readonly direction: string;
  readonly files: readonly { token: string; kind: string; description: string }[];
}

/**
 * What a run of pages is used for. `incoming` is memory a predecessor
 * preserved that no one has restored yet; `preserved` is preserved memory
 * whose owner is not known (a device at rest).
 */
export type RunKind =
  | 'header'
  | 'free'
  | 'allocated'
  | 'kho'
  | 'pkram'
  | 'incoming'
  | 'preserved'
  | 'pmpool'
  | 'scratch'
  | 'reserved'
  | 'boot-block'
  | 'status'
  | 'reserve-mem'
  | 'crashkernel';

export const RUN_KINDS: readonly RunKind[] = [
  'header',
  'free',
  'allocated',
  'kho',
  'pkram',
  'incoming',
  'preserved',
  'pmpool',
  'scratch',
  'reserved',
  'boot-block',
  'status',
  'reserve-mem',
  'crashkernel',
];

/** A run of the device's memory, with what it is used for (and by whom, when named). */
export interface MemoryRun extends StatusRange {
  readonly kind: RunKind;
  readonly owner?: string;
}

/**
 * The device's memory as runs: sorted, disjoint, covering [0, size). What
 * owns memory in a few extents (header, pools, scratch, the status area...)
 * is at its exact bounds; elsewhere the pages of each kind are counted
 * exactly per cell of the page allocator's census (or of a coarsened
 * layout's equal cut) and laid out by kind within the cell.
 */
export interface MemoryLayout {
  readonly size: number;
  readonly nodes: readonly StatusRange[];
  readonly runs: readonly MemoryRun[];
}

export interface PublishedStatus {
  readonly generation: number;
  readonly bootId: string;
  readonly bootKind: string;
  readonly ownerPid: number;
  readonly bootedAtMs: number;
  readonly publishedAtMs: number;
  /** How often it is published again (0: only at boot and at handover events). */
  readonly publishIntervalMs: number;
  readonly deviceSize: number;
  readonly coldReason?: string;
  /** Some lists were cut to fit the area. */
  readonly truncated: boolean;
  readonly handover: HandoverHistory;
  readonly pages: PageCounts;
  readonly kho: {
    readonly enabled: boolean;
    readonly preservedBytes: number;
    readonly preservedBlocks: number;
    readonly metadataPages: number;
    readonly subtrees: readonly string[];
    readonly scratch: readonly StatusRange[];
  };
  readonly pkram: {
    readonly enabled: boolean;
    readonly nodes: readonly string[];
    readonly preservedPages: number;
  };
  readonly pmpools: readonly {
    readonly name: string | null;
    readonly base: number;
    readonly size: number;
    readonly totalPages: number;
    readonly usedPages: number;
  }[];
  readonly reserveMem: readonly {
    readonly name: string;
    readonly base: number;
    readonly size: number;
  }[];
  /** Null until the program opened live update (and no predecessor handed sessions over). */
  readonly luo: { readonly sessions: readonly LuoSessionStatus[] } | null;
  readonly kexec: {
    readonly segment: StatusRange;
    readonly preload: boolean;
    readonly cmdline: string;
  } | null;
  readonly layout: MemoryLayout;
}
