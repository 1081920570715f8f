/**
 * Opening a store: creating one, or attaching to the one a predecessor
 * handed over, through its one root. In kernel memory the root is the KHO
 * subtree `store_<name>` holding the super block's address; on a pmpool it
 * is the pool's first data page (the pool's own FDT node hands the pool
 * over). Attaching reads the super block and the extent directory and
 * re-preserves each extent: O(extents), never O(entries).
 */
import { hex } from '../base/hex.js';
import { memparseExact } from '../boot/memparse.js';
import type { Fdt } from '../fdt/read.js';
import { FdtWriter } from '../fdt/write.js';
import type { Kernel } from '../kernel/kernel.js';
import { KhoError } from '../kho/errors.js';
import { crc32c } from '../memory/crc32c.js';
import { PAGE_SIZE } from '../memory/device.js';
import { CmaPool } from '../pmpool/cma.js';
import type { Pmpool } from '../pmpool/pools.js';
import {
  EXTENT_KERNEL,
  EXTENT_POOL,
  FLAG_CRASH_SAFE,
  FLAG_EVICT,
  KEY_LIMIT,
  MIN_TABLE_LOG2,
  NAME_MAX,
  PHASE_MIGRATING,
  PHASE_NONE,
  PROP_COMPATIBLE,
  PROP_ROOT,
  SB_BUDGET_PAGES,
  SB_CRC,
  SB_CRC_BYTES,
  SB_EPOCH,
  SB_EXT_DIR,
  SB_FLAGS,
  SB_MAGIC,
  SB_MAX_KEY,
  SB_MAX_VALUE,
  SB_NAME,
  SB_NAME_LEN,
  SB_OWNER_BOOT,
  SB_OWNER_GEN,
  SB_PHASE,
  SB_SEED,
  SB_STATE,
  SB_TABLE_CUR,
  SB_TABLE_OLD,
  SB_VERSION,
  STATE_CLOSED,
  STATE_HANDED_OVER,
  STATE_OPEN,
  STORE_COMPATIBLE,
  STORE_MAGIC,
  STORE_VERSION,
  SUBTREE_PREFIX,
  TD_DIR,
  TD_LOG2,
  VALUE_LIMIT,
} from './abi.js';
import { damaged, StoreError } from './errors.js';
import {
  EXTENT_BLOCK_PAGES,
  type Extent,
  type ExtentSource,
  REF_LIMIT_BYTES,
  StoreMemory,
} from './memory.js';
import { Slabs } from './slab.js';
import { PreservedStore } from './store.js';
import { MAX_SEGMENTS, segments, Table } from './table.js';

export interface OpenStoreOptions {
  /** 1..25 characters of [A-Za-z0-9._-]; names the KHO subtree `store_<name>`. */
  name: string;
  /**
   * Keep the store on this pmpool instead of kernel pages. The pool is the
   * store's alone (its first data page is the super block); it survives a
   * killed process, and with `crashSafe` the store opens consistent after one.
   */
  pool?: Pmpool;
  /** Log every update so a kill at any store leaves a consistent map (pool only; default false). */
  crashSafe?: boolean;
  /** Longest key in bytes (default 1024, at most 4096). Set at create. */
  maxKeyBytes?: number;
  /** Longest value in bytes (default 64 MiB). Set at create. */
  maxValueBytes?: number;
  /** Most memory the store takes from the kernel: bytes or "512M" (default: no limit). */
  budget?: number | string;
  /** 'lru': a full store evicts the least recently used entries instead of failing (default 'none'). Set at create. */
  evict?: 'none' | 'lru';
  /** When no store of that name exists: create one (default) or throw ENOENT. */
  create?: boolean;
  /** Milliseconds since 1970, for TTLs (default Date.now; tests pass their own). */
  clock?: () => number;
  /** Fault injection for tests (as pmpool's): called before every metadata store of an update. */
  beforeStore?: () => void;
}

const NAME = /^[A-Za-z0-9._-]{1,25}$/;
const PAGE = PAGE_SIZE;
/** The first extent of a store in kernel memory: 4 MiB (one block of the largest order) when it can be had. */
const FIRST_EXTENT_PAGES = 1024;
/** ... and at least this: the super block, directories, a table and a slab. */
const MIN_EXTENT_PAGES = 64;
/** Free pages a store leaves the kernel (1 MiB: its KHO map, a kexec segment, status). */
const KERNEL_RESERVE_PAGES = 256;

/** Open stores, per generation, by name. */
const open = new WeakMap<Kernel, Map<string, PreservedStore>>();
/** Super blocks of the stores in kernel memory this generation hands over, by name. */
const roots = new WeakMap<Kernel, Map<string, number>>();

/**
 * Opens the store `name` of this generation: the one the predecessor handed
 * over (attached in O(extents), its entries untouched), or a new empty one.
 * @throws StoreError EINVAL bad name or option; EBUSY already open, or the
 *   device's store is still owned by a running generation; ENOENT none and
 *   `create: false`; EFAULT damaged super block or directory (the page is
 *   named); EPROTO unknown layout version; EIO a store that was neither
 *   closed nor handed over cleanly and is not crash-safe; ENOMEM no memory.
 */
export function openStore(kernel: Kernel, options: OpenStoreOptions): PreservedStore {
  kernel.assertAlive();
  const name = options.name;
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new StoreError(
      'EINVAL',
      `a store name is 1..25 characters of [A-Za-z0-9._-], got '${String(name)}'`,
    );
  }
  let byName = open.get(kernel);
  if (byName === undefined) {
    byName = new Map();
    open.set(kernel, byName);
  }
  if (byName.get(name)?.open)
    throw new StoreError('EBUSY', `store '${name}' is already open in this generation`);
  const store = options.pool
    ? openOnPool(kernel, options.pool, options)
    : openOnKernel(kernel, options);
  byName.set(name, store);
  return store;
}

/** Stores this generation has opened (for status). */
export function openStores(kernel: Kernel): PreservedStore[] {
  return [...(open.get(kernel)?.values() ?? [])].filter((s) => s.open);
}

function openOnKernel(kernel: Kernel, options: OpenStoreOptions): PreservedStore {
  if (options.crashSafe) {
    throw new StoreError(
      'EINVAL',
      'crashSafe needs a store on a pmpool: kernel pages do not outlive a killed process',
    );
  }
  const subtree = SUBTREE_PREFIX + options.name;
  const mem = new StoreMemory(kernel.device);
  mem.source = kernelSource(kernel);
  mem.budgetPages = budgetPages(options.budget);
  if (kernel.kho.subtreeNames().includes(subtree)) {
    // Opened before in this generation and closed: its subtree and pages are in place.
    return attach(kernel, mem, rootOfOutgoing(kernel, options.name), options, 'reopen');
  }
  if (kernel.kho.peekSubtree(subtree) !== null) {
    const fdt = kernel.kho.retrieveSubtree(subtree);
    const root = readRoot(fdt, subtree);
    const store = attach(kernel, mem, root, options, 'handover');
    kernel.kho.addSubtree(subtree, rootFdt(root));
    remember(kernel, options.name, root);
    return store;
  }
  if (options.create === false)
    throw new StoreError('ENOENT', `no store '${options.name}' was handed over`);
  const first = mem.source.take(MIN_EXTENT_PAGES, Math.min(FIRST_EXTENT_PAGES, mem.budgetPages), 0);
  if (first === null) throw new StoreError('ENOMEM', 'no memory for a new store');
  const pool = CmaPool.format(kernel.device, first.pfn * PAGE, first.pages * PAGE);
  const extent: Extent = {
    basePfn: first.pfn,
    pages: first.pages,
    kind: EXTENT_KERNEL,
    pool,
    failedAt: Number.POSITIVE_INFINITY,
  };
  const root = create(kernel, mem, extent, options);
  kernel.kho.addSubtree(subtree, rootFdt(root));
  remember(kernel, options.name, root);
  return handle(kernel, mem, options);
}

function openOnPool(kernel: Kernel, pool: Pmpool, options: OpenStoreOptions): PreservedStore {
  const mem = new StoreMemory(kernel.device);
  mem.budgetPages = budgetPages(options.budget);
  const first = pool.cma.basePfn + pool.cma.metadataPages;
  const root = first * PAGE;
  if (pool.isAllocated(first)) {
    if (superWords(kernel, root)[SB_MAGIC] !== STORE_MAGIC) {
      throw new StoreError(
        'EINVAL',
        `pmpool ${pool.name ?? 'default'} holds other allocations (its first data page, ${first}, is no store super block): a store needs a pool of its own`,
      );
    }
    return attach(kernel, mem, root, options, 'pool', pool);
  }
  if (pool.stats().usedPages !== pool.cma.metadataPages) {
    throw new StoreError(
      'EINVAL',
      `pmpool ${pool.name ?? 'default'} holds other allocations: a store needs a pool of its own`,
    );
  }
  if (options.create === false)
    throw new StoreError('ENOENT', `no store on pmpool ${pool.name ?? 'default'}`);
  const extent: Extent = {
    basePfn: pool.cma.basePfn,
    pages: pool.cma.pages,
    kind: EXTENT_POOL,
    pool: pool.cma,
    failedAt: Number.POSITIVE_INFINITY,
  };
  create(kernel, mem, extent, options);
  return handle(kernel, mem, options);
}

/** Formats a new store in `extent`. @returns the super block's address. */
function create(
  kernel: Kernel,
  mem: StoreMemory,
  extent: Extent,
  options: OpenStoreOptions,
): number {
  const maxKey = options.maxKeyBytes ?? 1024;
  const maxValue = options.maxValueBytes ?? 64 * 1024 * 1024;
  if (!Number.isInteger(maxKey) || maxKey < 1 || maxKey > KEY_LIMIT) {
    throw new StoreError('EINVAL', `maxKeyBytes is 1..${KEY_LIMIT}, got ${maxKey}`);
  }
  if (!Number.isInteger(maxValue) || maxValue < 0 || maxValue > VALUE_LIMIT) {
    throw new StoreError('EINVAL', `maxValueBytes is 0..${VALUE_LIMIT}, got ${maxValue}`);
  }
  if (options.evict !== undefined && options.evict !== 'none' && options.evict !== 'lru') {
    throw new StoreError('EINVAL', `evict is 'none' or 'lru', got '${String(options.evict)}'`);
  }
  mem.addExtent(extent);
  const sbRange = extent.pool?.alloc(1) ?? null;
  const dirRange = extent.pool?.alloc(1) ?? null;
  if (sbRange === null || dirRange === null)
    throw new StoreError('ENOMEM', 'no page for the super block');
  const root = sbRange.pfn * PAGE;
  kernel.device.bytes(root, PAGE).fill(0);
  kernel.device.bytes(dirRange.pfn * PAGE, PAGE).fill(0);
  mem.setSuper(root);
  const w = superWords(kernel, root);
  w[SB_VERSION] = STORE_VERSION;
  w[SB_FLAGS] =
    (options.crashSafe ? FLAG_CRASH_SAFE : 0) | (options.evict === 'lru' ? FLAG_EVICT : 0);
  w[SB_SEED] = (Math.random() * 2 ** 32) >>> 0;
  w[SB_EPOCH] = Math.floor((options.clock ?? Date.now)() / 1000);
  w[SB_MAX_KEY] = maxKey;
  w[SB_MAX_VALUE] = maxValue;
  w[SB_BUDGET_PAGES] = 0;
  const nameBytes = Buffer.from(options.name, 'utf8');
  w[SB_NAME_LEN] = nameBytes.length;
  kernel.device.bytes(root + SB_NAME, NAME_MAX).set(nameBytes);
  w[SB_EXT_DIR] = dirRange.pfn;
  mem.recordExtent(extent);
  const table = Table.create(mem, MIN_TABLE_LOG2);
  if (table === null) throw new StoreError('ENOMEM', 'no memory for the table');
  table.zero(mem, 0, table.size * 8);
  w[SB_TABLE_CUR + TD_DIR] = table.dirPfn;
  w[SB_TABLE_CUR + TD_LOG2] = table.log2;
  claim(kernel, w, root);
  w[SB_CRC] = headerCrc(kernel, root);
  // Last: a store cut short while being made has no magic and is not found.
  w[SB_MAGIC] = STORE_MAGIC;
  return root;
}

type AttachHow = 'handover' | 'reopen' | 'pool';

/** Attaches to the store whose super block is at `root`. */
function attach(
  kernel: Kernel,
  mem: StoreMemory,
  root: number,
  options: OpenStoreOptions,
  how: AttachHow,
  pool?: Pmpool,
): PreservedStore {
  if (
    root % PAGE !== 0 ||
    root < PAGE ||
    root + PAGE > Math.min(kernel.device.size, REF_LIMIT_BYTES)
  ) {
    throw damaged(root, 'the store root is not a page of the device');
  }
  const w = superWords(kernel, root);
  if (w[SB_MAGIC] !== STORE_MAGIC)
    throw damaged(root, `no store super block (magic ${hex(w[SB_MAGIC])})`);
  if (w[SB_VERSION] !== STORE_VERSION) {
    throw new StoreError(
      'EPROTO',
      `store layout version ${w[SB_VERSION]}, this build knows ${STORE_VERSION}`,
    );
  }
  if (w[SB_CRC] !== headerCrc(kernel, root))
    throw damaged(root, 'store super block crc does not match its contents');
  const nameLen = w[SB_NAME_LEN];
  const stored =
    nameLen <= NAME_MAX
      ? Buffer.from(kernel.device.bytes(root + SB_NAME, nameLen)).toString('utf8')
      : '';
  if (how !== 'pool' && stored !== options.name) {
    throw damaged(root, `the super block names store '${stored}', not '${options.name}'`);
  }
  mem.setSuper(root);
  checkOwner(kernel, w, root, how, (w[SB_FLAGS] & FLAG_CRASH_SAFE) !== 0);
  mem.loadExtents();
  if (pool !== undefined) {
    for (const e of mem.extents)
      if (e.kind === EXTENT_POOL && e.basePfn === pool.cma.basePfn) e.pool = pool.cma;
  } else {
    mem.source = kernelSource(kernel);
  }
  if (how === 'handover') {
    // Per run of extents that lie end to end (one, as the store grows): O(runs), not O(extents).
    for (const run of mem.kernelRuns()) {
      try {
        kernel.kho.restorePages(run.pfn * PAGE, run.pages);
      } catch (err) {
        if (err instanceof KhoError)
          throw damaged(run.pfn * PAGE, `store extent was not preserved: ${err.message}`, err);
        throw err;
      }
      try {
        kernel.kho.preservePages(run.pfn, run.pages);
      } catch (err) {
        if (!(err instanceof KhoError)) throw err;
        throw new StoreError(
          'ENOMEM',
          `store extents at pfn ${run.pfn} cannot be kept for the next generation: ${err.message}`,
          { cause: err },
        );
      }
    }
  }
  if ((w[SB_FLAGS] & FLAG_CRASH_SAFE) !== 0) mem.recover();
  claim(kernel, w, root);
  return handle(kernel, mem, options);
}

/**
 * Who may open it: a store handed over by this generation's predecessor, a
 * closed one, or (after a crash, on a pool) one whose owner is gone, if it
 * is crash-safe. A store its owner still holds open is refused.
 */
function checkOwner(
  kernel: Kernel,
  w: Uint32Array,
  root: number,
  how: AttachHow,
  crashSafe: boolean,
): void {
  const state = w[SB_STATE];
  const owner = Buffer.from(w.buffer, w.byteOffset + SB_OWNER_BOOT, 16).toString('hex');
  const ownerGen = w[SB_OWNER_GEN];
  if (state === STATE_CLOSED) return;
  if (state === STATE_HANDED_OVER) {
    if (how === 'pool' || owner === kernel.boot.predecessorBootId) return;
    throw new StoreError(
      'EBUSY',
      `store was handed over by generation ${ownerGen}, not by this one's predecessor`,
    );
  }
  if (state !== STATE_OPEN) throw damaged(root, `store state ${state}`);
  if (owner === kernel.boot.bootId || kernel.boot.kind !== 'cold') {
    throw new StoreError(
      'EBUSY',
      `store is open in generation ${ownerGen} (boot ${owner.slice(0, 8)}), which did not hand it over`,
    );
  }
  // A cold boot: the process that had it open is gone (the device is ours alone).
  if (!crashSafe) {
    throw new StoreError(
      'EIO',
      `store was open in generation ${ownerGen} when it stopped, and is not crash-safe: it may be torn`,
    );
  }
}

/** Marks the store open by this generation. */
function claim(kernel: Kernel, w: Uint32Array, root: number): void {
  w[SB_OWNER_GEN] = kernel.generation;
  kernel.device
    .bytes(root + SB_OWNER_BOOT, 16)
    .set(Buffer.from(kernel.boot.bootId, 'hex').subarray(0, 16));
  w[SB_STATE] = STATE_OPEN;
}

/** The handle over an attached or new store; the KHO notifier freezes it for a handover. */
function handle(kernel: Kernel, mem: StoreMemory, options: OpenStoreOptions): PreservedStore {
  const flags = mem.sbGet(SB_FLAGS);
  const crashSafe = (flags & FLAG_CRASH_SAFE) !== 0;
  mem.logging = crashSafe;
  mem.beforeStore = options.beforeStore ?? null;
  const cur = attachTable(mem, SB_TABLE_CUR, mem.sb * 16);
  const phase = mem.sbGet(SB_PHASE);
  const other = phase === PHASE_NONE ? null : attachTable(mem, SB_TABLE_OLD, mem.sb * 16);
  if (phase > PHASE_MIGRATING) throw damaged(mem.sb * 16, `resize phase ${phase}`);
  const root = mem.sb * 16;
  const words = superWords(kernel, root);
  const nameLen = words[SB_NAME_LEN];
  const name = Buffer.from(kernel.device.bytes(root + SB_NAME, nameLen)).toString('utf8');
  const store: PreservedStore = new PreservedStore({
    mem,
    slabs: new Slabs(mem),
    config: {
      name,
      seed: mem.sbGet(SB_SEED),
      epoch: mem.sbGet(SB_EPOCH),
      maxKeyBytes: mem.sbGet(SB_MAX_KEY),
      maxValueBytes: mem.sbGet(SB_MAX_VALUE),
      evict: (flags & FLAG_EVICT) !== 0,
      crashSafe,
      clock: options.clock ?? Date.now,
    },
    cur,
    other,
    alive: () => kernel.alive,
    onClose: () => {
      if (kernel.alive) words[SB_STATE] = STATE_CLOSED;
    },
  });
  kernel.kho.registerNotifier({
    finalize: () => {
      if (!store.open) return;
      words[SB_STATE] = STATE_HANDED_OVER;
      store.freeze(
        new StoreError(
          'EBUSY',
          `store '${name}' is frozen: generation ${kernel.generation} is handing over`,
        ),
      );
    },
    abort: () => {
      if (!store.open) return;
      words[SB_STATE] = STATE_OPEN;
      store.freeze(null);
    },
  });
  return store;
}

function attachTable(mem: StoreMemory, desc: number, root: number): Table {
  const dir = mem.sbGet(desc + TD_DIR);
  const log2 = mem.sbGet(desc + TD_LOG2);
  if (
    log2 < MIN_TABLE_LOG2 ||
    segments(log2) > MAX_SEGMENTS ||
    dir === 0 ||
    mem.extentAt(dir) === undefined
  ) {
    throw damaged(root, `table descriptor: directory pfn ${dir}, 2^${log2} slots`);
  }
  return Table.attach(mem, dir, log2);
}

/** New extents for a store in kernel memory: pages claimed from the page allocator and preserved with KHO. */
function kernelSource(kernel: Kernel): ExtentSource {
  return {
    take(minPages: number, wantPages: number, after: number) {
      // Never the kernel's last pages (its KHO map, a kexec segment), and at most half of what is free.
      const spare = kernel.pages.stats().freePages - KERNEL_RESERVE_PAGES;
      if (spare < minPages) return null;
      const half = Math.floor(spare / 2);
      // Whole 4 MiB blocks when it can, so that the next extent starts where this one ends.
      const blocks = Math.floor(half / EXTENT_BLOCK_PAGES) * EXTENT_BLOCK_PAGES;
      wantPages = Math.max(minPages, Math.min(wantPages, blocks >= minPages ? blocks : half));
      const best = nextExtent(kernel, minPages, wantPages, after);
      if (best === null) return null;
      kernel.pages.claimRange(best.pfn, best.pages);
      try {
        kernel.kho.preservePages(best.pfn, best.pages);
      } catch (err) {
        kernel.pages.releaseRange(best.pfn, best.pages);
        // KHO found no page for its own map: the memory is full, as far as the store is concerned.
        if (err instanceof KhoError && err.code === 'ENOMEM') return null;
        if (err instanceof KhoError && err.code === 'EBUSY') {
          throw new StoreError(
            'EBUSY',
            'the store cannot grow while its generation is handing over',
          );
        }
        throw err;
      }
      return best;
    },
  };
}

/**
 * Where the store's next extent goes: right after its last one when the
 * pages there are free (its memory stays one run), else the largest free
 * piece (from a 4 MiB boundary when it can), outside scratch and below the
 * refs' reach.
 */
function nextExtent(
  kernel: Kernel,
  minPages: number,
  wantPages: number,
  after: number,
): { pfn: number; pages: number } | null {
  const limit = REF_LIMIT_BYTES / PAGE;
  const scratch = kernel.kho.scratch.map((a) => ({
    base: a.base / PAGE,
    end: (a.base + a.size) / PAGE,
  }));
  const pieces: { base: number; end: number }[] = [];
  for (const r of kernel.pages.freeExtents()) {
    pieces.push(...outside(r.pfn, Math.min(r.pfn + r.count, limit), scratch));
  }
  const next = pieces.find((p) => after > 0 && p.base <= after && after < p.end);
  if (next !== undefined && next.end - after >= minPages) {
    return { pfn: after, pages: Math.min(wantPages, next.end - after) };
  }
  let best: { pfn: number; pages: number } | null = null;
  for (const piece of pieces) {
    let pfn = Math.ceil(piece.base / EXTENT_BLOCK_PAGES) * EXTENT_BLOCK_PAGES;
    if (piece.end - pfn < minPages) pfn = Math.ceil(piece.base / 16) * 16;
    const pages = Math.min(wantPages, piece.end - pfn);
    if (pages >= minPages && (best === null || pages > best.pages)) best = { pfn, pages };
    if (best?.pages === wantPages) break;
  }
  return best;
}

/** [base, end) without the scratch ranges. */
function outside(
  base: number,
  end: number,
  holes: readonly { base: number; end: number }[],
): { base: number; end: number }[] {
  let pieces = [{ base, end }];
  for (const h of holes) {
    const next: { base: number; end: number }[] = [];
    for (const p of pieces) {
      if (h.end <= p.base || h.base >= p.end) next.push(p);
      else {
        if (h.base > p.base) next.push({ base: p.base, end: h.base });
        if (h.end < p.end) next.push({ base: h.end, end: p.end });
      }
    }
    pieces = next;
  }
  return pieces;
}

function budgetPages(budget: number | string | undefined): number {
  if (budget === undefined) return Number.POSITIVE_INFINITY;
  let bytes: number;
  try {
    bytes = typeof budget === 'number' ? budget : memparseExact(budget);
  } catch {
    throw new StoreError(
      'EINVAL',
      `budget is a number of bytes or a size like "512M", got '${budget}'`,
    );
  }
  if (!Number.isSafeInteger(bytes) || bytes < MIN_EXTENT_PAGES * PAGE) {
    throw new StoreError(
      'EINVAL',
      `budget is at least ${MIN_EXTENT_PAGES * PAGE} bytes, got ${budget}`,
    );
  }
  return Math.floor(bytes / PAGE);
}

function rootFdt(root: number): Uint8Array {
  const w = new FdtWriter();
  w.finishReservations();
  w.beginNode('');
  w.propertyString(PROP_COMPATIBLE, STORE_COMPATIBLE);
  w.propertyU64(PROP_ROOT, root);
  w.endNode();
  return w.finish();
}

/** The super block address in a store subtree. @throws StoreError EPROTO (unknown compatible), EFAULT. */
function readRoot(fdt: Fdt, subtree: string): number {
  let compatible: string;
  let root: number | bigint;
  try {
    compatible = fdt.getString(0, PROP_COMPATIBLE);
    root = fdt.getU64(0, PROP_ROOT);
  } catch (err) {
    throw new StoreError('EFAULT', `KHO subtree ${subtree}: ${(err as Error).message}`);
  }
  if (compatible !== STORE_COMPATIBLE) {
    throw new StoreError(
      'EPROTO',
      `KHO subtree ${subtree} is '${compatible}', this build knows '${STORE_COMPATIBLE}'`,
    );
  }
  if (typeof root !== 'number')
    throw new StoreError('EFAULT', `KHO subtree ${subtree}: root beyond 2^53`);
  return root;
}

function rootOfOutgoing(kernel: Kernel, name: string): number {
  const root = roots.get(kernel)?.get(name);
  if (root === undefined) throw new StoreError('ENOENT', `no store '${name}' in this generation`);
  return root;
}

function remember(kernel: Kernel, name: string, root: number): void {
  let m = roots.get(kernel);
  if (m === undefined) {
    m = new Map();
    roots.set(kernel, m);
  }
  m.set(name, root);
}

function superWords(kernel: Kernel, root: number): Uint32Array {
  const b = kernel.device.bytes(root, PAGE);
  return new Uint32Array(b.buffer, b.byteOffset, PAGE / 4);
}

/** crc32c of the header after the magic (the magic is written last, so it is not covered). */
function headerCrc(kernel: Kernel, root: number): number {
  return crc32c(kernel.device.bytes(root + 4, SB_CRC_BYTES - 4));
}
