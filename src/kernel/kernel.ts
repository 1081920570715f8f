import { show } from '../base/errors.js';
import { SETUP } from '../boot/abi.js';
import type { SetupData } from '../boot/bootblock.js';
import { Cmdline } from '../boot/cmdline.js';
import type { EarlyContext } from '../boot/early-context.js';
import { BootError } from '../boot/errors.js';
import type { HandoverSubsystem } from '../boot/handover.js';
import type { Memblock } from '../boot/memblock.js';
import { CRASHKERNEL, defaultEarlyParams, type EarlyParamValues, MEMMAP } from '../boot/params.js';
import { KexecError } from '../kexec/errors.js';
import { Kexec, type KexecHost, type KexecPlatform, type LoadedImage } from '../kexec/kexec.js';
import type { PhysRange } from '../kexec/placement.js';
import { type KhoEarly, khoEarlyInit, khoScratchInit } from '../kho/early.js';
import { Kho } from '../kho/kho.js';
import { ReserveMem, reserveMemEarly } from '../kho/reserve-mem.js';
import { KernelLiveUpdate } from '../luo/kernel-luo.js';
import type { LiveUpdate } from '../luo/liveupdate.js';
import { DEVICE_MAP_MAX } from '../memory/abi.js';
import { checkDeviceViews, type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import { type DeviceHeader, readDeviceHeader, writeDeviceHeader } from '../memory/header.js';
import { MemoryMap } from '../memory/memmap.js';
import { E820, type MemoryRange } from '../memory/memmap-types.js';
import { randomBytes } from '../memory/random.js';
import { BuddyAllocator, type BuddyStats } from '../mm/buddy.js';
import { PageAllocError } from '../mm/errors.js';
import { checkFolio, type Folio } from '../mm/folio.js';
import type { ScratchPagesStats } from '../mm/scratch-pages.js';
import { type PkramEarly, pkramEarly } from '../pkram/kernel-early.js';
import { KernelPkram, type KernelPkramStatus } from '../pkram/kernel-pkram.js';
import { type PmpoolEarly, pmpoolEarly } from '../pmpool/pool-early.js';
import { type Pmpool, Pmpools } from '../pmpool/pools.js';
import type { PmpoolsStatus } from '../pmpool/status.js';
import { MAX_LAYOUT_RUNS } from '../status/abi.js';
import {
  formatPrometheus,
  metricFamilies,
  type PromClientMetric,
  promClientMetrics,
} from '../status/metrics.js';
import type {
  HandoverHistory,
  MemoryLayout,
  PublishedStatus,
  StatusRange,
} from '../status/model.js';
import { readPendingBootBlock } from './boot-block-read.js';
import type { BootInfo } from './boot-info.js';
import { CrashDevice } from './crash-device.js';
import { buildMemoryMap, freePageRanges, memblockFromMap } from './memory-layout.js';
import { KernelStatusArea, type StatusEarly, statusEarly } from './status-area.js';
import { buildStatus, kernelLayout, type StatusSources } from './status-snapshot.js';

/** What starts a successor, and learns of a crash kernel taking over. */
export interface KernelPlatform extends KexecPlatform<Kernel> {
  adopt?(kernel: Kernel): void;
}

/** How to boot one generation. */
export interface BootRequest {
  readonly device: MemoryDevice;
  /** The command line of a cold boot (a kexec boot takes the boot block's). */
  readonly cmdline?: string;
  /** Physical address of the boot block to consume: a kexec boot. */
  readonly bootBlock?: number;
  /** How this generation starts its successor. */
  readonly platform: KernelPlatform;
  /** NUMA nodes, as physical ranges; one node spanning the device when absent. */
  readonly nodes?: readonly PhysRange[];
  /**
   * Make a status area (src/status/abi.ts) when the device has none, so
   * readers outside the process see this generation. A device that has one
   * is always published into.
   */
  readonly status?: boolean;
  /** How often the caller republishes the status (recorded for readers; 0: only at events). */
  readonly statusIntervalMs?: number;
}

/** Alignment of the crashkernel= area (the kernel's CRASH_ALIGN is 16 MiB; devices here can be small). */
const CRASH_ALIGN = 2 * 1024 * 1024;

/**
 * One booted generation: its memory map, memblock, page allocator and
 * kexec, on a memory device. The same code runs on the emulated machine and
 * in a real process; only the platform that starts a successor differs.
 */
export class Kernel {
  readonly device: MemoryDevice;
  readonly boot: BootInfo;
  readonly cmdline: Cmdline;
  readonly params: EarlyParamValues;
  /** The memory map this generation runs on. */
  readonly memoryMap: MemoryMap;
  readonly memblock: Memblock;
  readonly pages: BuddyAllocator;
  readonly kexec: Kexec<Kernel>;
  readonly nodes: readonly PhysRange[];
  /** The crashkernel= area, when one was reserved. */
  readonly crashArea: PhysRange | null;
  readonly subsystems: HandoverSubsystem[] = [];
  /** Kexec HandOver. */
  readonly kho: Kho;
  #luo: KernelLiveUpdate;
  /** The persistent memory pools (`pmpool=`). */
  readonly pmpools: Pmpools;
  /** PKRAM: named nodes of folios and bytes preserved over kexec. */
  readonly pkram: KernelPkram;
  /** What this boot logged (the kernel's dmesg). */
  readonly log: readonly string[];
  #reserveMem: ReserveMem;
  readonly #status: KernelStatusArea;
  #statusIntervalMs = 0;
  #layoutCache: { key: string; layout: MemoryLayout; at: number } | null = null;
  #header: DeviceHeader;
  #replacedBy: string | null = null;
  readonly #platform: KernelPlatform;

  private constructor(init: {
    device: MemoryDevice;
    boot: BootInfo;
    cmdline: Cmdline;
    params: EarlyParamValues;
    memoryMap: MemoryMap;
    memblock: Memblock;
    pages: BuddyAllocator;
    header: DeviceHeader;
    platform: KernelPlatform;
    nodes: readonly PhysRange[];
    crashArea: PhysRange | null;
    log: string[];
    khoEarly: KhoEarly;
    pmpoolEarly?: PmpoolEarly;
    pkramEarly?: PkramEarly;
    statusEarly?: StatusEarly;
  }) {
    this.device = init.device;
    this.boot = init.boot;
    this.cmdline = init.cmdline;
    this.params = init.params;
    this.memoryMap = init.memoryMap;
    this.memblock = init.memblock;
    this.pages = init.pages;
    this.#header = init.header;
    this.#platform = init.platform;
    this.nodes = init.nodes;
    this.crashArea = init.crashArea;
    this.log = init.log;
    this.kexec = new Kexec<Kernel>(this.#kexecHost(), init.platform);
    // Each owner of preserved pages asks the others before it takes a page (one owner per page).
    this.kho = new Kho({
      device: init.device,
      pages: init.pages,
      early: init.khoEarly,
      ownership: {
        otherHolder: (pfn, count) =>
          this.pkram?.holder(pfn, count) ?? this.pmpools?.holder(pfn, count) ?? null,
        changes: () => this.pkram?.changes ?? 0,
      },
    });
    this.addSubsystem(this.kho);
    this.#reserveMem = new ReserveMem(init.device, this.kho, []);
    this.pmpools = new Pmpools({
      device: init.device,
      kho: this.kho,
      early: init.pmpoolEarly ?? { pools: [] },
      log: (line) => init.log.push(line),
      assertAlive: () => this.assertAlive(),
    });
    this.addSubsystem(this.pmpools);
    this.pkram = new KernelPkram({
      device: init.device,
      pages: init.pages,
      kho: this.kho,
      scratch: init.khoEarly.scratch,
      early: init.boot.kind === 'crash' ? null : (init.pkramEarly ?? null),
      generation: init.boot.generation,
      bootId: Uint8Array.from(Buffer.from(init.boot.bootId, 'hex')),
      log: (line) => init.log.push(line),
      assertAlive: () => this.assertAlive(),
      ownership: {
        otherHolder: (pfn, count) => this.kho.holder(pfn, count) ?? this.pmpools.holder(pfn, count),
        // Pools are fixed at boot; received KHO blocks only ever leave KHO.
        changes: () => this.kho.changes,
      },
    });
    this.addSubsystem(this.pkram);
    this.#luo = new KernelLiveUpdate(
      init.boot.setupData.find((d) => d.type === SETUP.LUO)?.data,
      init.boot.kind === 'crash' ? { disabled: 'crash kernel' } : {},
    );
    this.addSubsystem(this.#luo);
    this.#status = new KernelStatusArea(
      init.device,
      init.statusEarly ?? { area: null, previous: null, slot: null, sequence: 0 },
    );
    this.addSubsystem(this.#status);
  }

  /**
   * Boots a generation on `request.device`. With a boot block it validates
   * it against the device header and, when it is refused, boots cold (the
   * reason is in `boot.coldReason`) on the map the predecessor committed, so
   * nothing it marked reserved or preserved is touched.
   * @throws BootError EINVAL naming the parameter when the command line is
   *   bad (nothing on the device is changed); ENOMEM when memory is too small.
   * @throws DeviceError ENODEV when the device has no valid header.
   */
  static boot(request: BootRequest): Kernel {
    checkBootRequest(request);
    const { device } = request;
    checkDeviceViews(device);
    const header = readDeviceHeader(device);
    let block = null;
    let coldReason: string | undefined;
    if (request.bootBlock !== undefined) {
      try {
        block = readPendingBootBlock(device, header, request.bootBlock);
      } catch (err) {
        if (!(err instanceof BootError)) throw err;
        coldReason = err.message;
      }
    }
    let cmdlineText = block ? block.cmdline : (request.cmdline ?? '');
    let cmdline: Cmdline;
    let params: EarlyParamValues;
    try {
      ({ cmdline, params } = parseCommandLine(cmdlineText));
    } catch (err) {
      if (!block || !(err instanceof BootError)) throw err;
      // A boot block whose command line does not parse is refused like a corrupt one.
      coldReason = `boot block command line: ${err.message}`;
      block = null;
      cmdlineText = request.cmdline ?? '';
      ({ cmdline, params } = parseCommandLine(cmdlineText));
    }
    const baseMap = block ? block.memoryMap : header.memmap;
    const memoryMap = buildMemoryMap(baseMap, params.getAll(MEMMAP), device.size);
    const memblock = memblockFromMap(memoryMap);
    const log: string[] = [];
    if (coldReason) log.push(`boot: handover refused, booting cold: ${coldReason}`);
    const nodes = request.nodes ?? [{ base: 0, size: device.size }];
    const ctx: EarlyContext = {
      device,
      memoryMap,
      memblock,
      params,
      setupData: block ? block.setupData : [],
      nodes,
      log: (line) => log.push(line),
    };
    let khoEarly = khoEarlyInit(ctx);
    const pmpool = pmpoolEarly(ctx, khoEarly);
    const pkram = pkramEarly(
      ctx,
      khoEarly,
      block ? { generation: header.generation, predecessorBootId: block.predecessorBootId } : null,
    );
    const reserveMem = reserveMemEarly(ctx, khoEarly);
    const status = statusEarly(ctx, request.status === true);
    khoEarly = khoScratchInit(ctx, khoEarly);
    const crashArea = reserveCrashArea(memblock, params);
    const pages = BuddyAllocator.fromFreeRanges(device.pages, freePageRanges(memblock), {
      shared: device.ownedForLife === true,
    });

    // Consume the boot block (or the pending one a cold boot ignores): a repeat is then stale.
    const bootId = block ? Buffer.from(block.bootId).toString('hex') : randomBootId();
    const next: DeviceHeader = {
      ...header,
      generation: header.generation + 1,
      bootBlock: 0,
      bootId,
      ownerPid: process.pid,
      memmap: keptRanges(header.memmap, memoryMap),
    };
    const boot: BootInfo = {
      kind: block ? 'kexec' : 'cold',
      generation: next.generation,
      bootId,
      predecessorBootId: block ? Buffer.from(block.predecessorBootId).toString('hex') : undefined,
      coldReason,
      bootBlock: block ? request.bootBlock : undefined,
      setupData: block ? block.setupData : ([] as SetupData[]),
      cmdline: cmdlineText,
    };
    const kernel = new Kernel({
      device,
      boot,
      cmdline,
      params,
      memoryMap,
      memblock,
      pages,
      header: next,
      platform: request.platform,
      nodes,
      crashArea,
      log,
      khoEarly,
      pmpoolEarly: pmpool,
      pkramEarly: pkram,
      statusEarly: status,
    });
    kernel.#reserveMem = new ReserveMem(device, kernel.kho, reserveMem);
    // Last: only a boot that nothing refused consumes the boot block.
    writeDeviceHeader(device, next);
    kernel.#statusIntervalMs = request.statusIntervalMs ?? 0;
    kernel.#status.booted(boot, header.generation);
    kernel.publishStatus();
    return kernel;
  }

  /**
   * A `reserve_mem=size:align:name` region: same address and contents after
   * any number of kexecs.
   * @throws KhoError ENOENT when there is no such region.
   */
  reserveMem(name: string): { phys: number; size: number; bytes: Uint8Array; kept: boolean } {
    this.assertAlive();
    return this.#reserveMem.get(name);
  }

  /**
   * The Live Update Orchestrator: sessions of preserved file descriptors
   * (listening sockets, memfds, files), opened on first use.
   * @throws LuoError ENODEV in a crash kernel, EBUSY when another is open in this process.
   */
  get liveupdate(): LiveUpdate {
    this.assertAlive();
    return this.#luo.get();
  }

  /** Descriptor numbers preserved for the next exec (the process platform keeps them open). */
  preservedFds(): number[] {
    return this.#luo.preservedFds();
  }

  /** The default persistent memory pool (`pmpool=<base>,<size>`), or null. */
  get pmpool(): Pmpool | null {
    return this.pmpools.default;
  }

  /** The running generation's number. */
  get generation(): number {
    return this.boot.generation;
  }

  /** True until a successor (or a crash kernel) has replaced this generation. */
  get alive(): boolean {
    return this.#replacedBy === null;
  }

  /**
   * Allocates a folio of 2^order pages from the page allocator. A
   * `transient` folio, one that will never be preserved (a buffer, a cache),
   * comes from KHO scratch while scratch has room, as the kernel lets
   * movable allocations use scratch after boot; KHO refuses to preserve
   * such pages and PKRAM copies them out.
   * @returns null when no block of that order is free.
   * @throws PageAllocError EINVAL (bad order); KexecError ESRCH once replaced.
   */
  allocPages(order: number, options: { transient?: boolean } = {}): Folio | null {
    this.assertAlive();
    if (typeof options !== 'object' || options === null)
      throw new PageAllocError(
        'EINVAL',
        `allocPages options must be an object, got ${show(options)}`,
      );
    const pfn =
      (options.transient ? this.kho.scratchPages.allocPages(order) : null) ??
      this.pages.allocPages(order);
    return pfn === null ? null : { pfn, order };
  }

  /** Frees a folio allocPages returned. @throws PageAllocError on misuse (double free, ...). */
  freePages(folio: Folio): void {
    this.assertAlive();
    checkFolio(folio);
    if (this.kho.scratchPages.owns(folio.pfn))
      this.kho.scratchPages.freePages(folio.pfn, folio.order);
    else this.pages.freePages(folio.pfn, folio.order);
  }

  /** A zero-copy view of a folio's bytes. */
  folioBytes(folio: Folio): Uint8Array {
    checkFolio(folio);
    return this.device.bytes(folio.pfn * PAGE_SIZE, 2 ** folio.order * PAGE_SIZE);
  }

  /** Registers a subsystem that takes part in kexec. */
  addSubsystem(s: HandoverSubsystem): void {
    const hooks = ['segmentArena', 'segmentsPlaced', 'freeze', 'unfreeze'] as const;
    if (
      typeof s !== 'object' ||
      s === null ||
      typeof s.name !== 'string' ||
      hooks.some((h) => s[h] !== undefined && typeof s[h] !== 'function')
    )
      throw new KexecError('EINVAL', `a subsystem is { name, freeze?(), ... }, got ${show(s)}`);
    this.subsystems.push(s);
  }

  /**
   * Boots the crash (kdump) kernel in the crashkernel= area, as a panic does.
   * It sees the rest of memory read-only and preserves nothing; this
   * generation is gone.
   * @throws KexecError ENOENT when no crashkernel= area was reserved.
   */
  panic(reason = 'panic'): Kernel {
    this.assertAlive();
    const area = this.crashArea;
    if (!area)
      throw new KexecError('ENOENT', 'panic: no crash kernel (boot with crashkernel=SIZE)');
    this.retire(`the crash kernel (${reason})`);
    const device = new CrashDevice(this.device, area);
    const map = buildMemoryMap(
      [
        { addr: 0, size: area.base, type: E820.RESERVED },
        { addr: area.base, size: area.size, type: E820.USABLE },
        {
          addr: area.base + area.size,
          size: this.device.size - area.base - area.size,
          type: E820.RESERVED,
        },
      ].filter((r) => r.size > 0),
      [],
      this.device.size,
    );
    const memblock = memblockFromMap(map);
    const { cmdline, params } = parseCommandLine('');
    const crash = new Kernel({
      device,
      boot: {
        kind: 'crash',
        generation: this.generation,
        bootId: randomBootId(),
        predecessorBootId: this.boot.bootId,
        setupData: [],
        cmdline: '',
      },
      cmdline,
      params,
      memoryMap: map,
      memblock,
      pages: BuddyAllocator.fromFreeRanges(device.pages, freePageRanges(memblock)),
      header: this.#header,
      platform: this.#platform,
      nodes: this.nodes,
      crashArea: null,
      log: [`crash kernel: ${reason}`],
      khoEarly: { enabled: false, disabledReason: 'crash kernel', scratch: [], incoming: null },
    });
    this.#platform.adopt?.(crash);
    return crash;
  }

  /** True for a crash (kdump) kernel, which preserves nothing and cannot kexec. */
  get isCrashKernel(): boolean {
    return this.boot.kind === 'crash';
  }

  /** Marks this generation replaced; every later call fails with ESRCH. */
  retire(by: string): void {
    this.#replacedBy = by;
    this.#luo.handOver();
  }

  /** @throws KexecError ESRCH when this generation has been replaced. */
  assertAlive(): void {
    if (this.#replacedBy !== null) {
      throw new KexecError(
        'ESRCH',
        `generation ${this.generation} was replaced by ${this.#replacedBy}`,
      );
    }
  }

  /**
   * The device's memory by use (free, allocated, preserved per subsystem,
   * pools, scratch, reserved, the boot block, ...): sorted runs covering the
   * device. Work is O(page blocks + reserved pages / 4 + preserved blocks),
   * never an object per page; cached until a page changes state.
   */
  memoryLayout(): MemoryLayout {
    const loaded = this.kexec.loaded;
    const unclaimed = this.kho.incoming?.unclaimed().blocks ?? 0;
    const key = `${this.pages.changes}/${loaded?.segment.base ?? -1}/${this.pkram.preservedPages}/${unclaimed}`;
    if (this.#layoutCache?.key === key) return this.#layoutCache.layout;
    const layout = kernelLayout({
      size: this.device.size,
      nodes: this.nodes,
      pages: this.pages,
      memoryMap: this.memoryMap,
      scratch: this.kho.scratch,
      pools: this.pmpools.status().pools.map((p) => ({ name: p.name, base: p.base, size: p.size })),
      reserveMem: this.#reserveMem.list(),
      pkramExtents: this.pkram.preservedExtents(),
      incoming: this.kho.incoming?.unclaimedRanges() ?? [],
      crashArea: this.crashArea,
      statusArea: this.#status.area,
      kexecSegment: loaded ? loaded.segment : null,
    });
    this.#layoutCache = { key, layout, at: Date.now() };
    return layout;
  }

  /**
   * Writes this generation's status into the device's status area, where
   * `livekexec status`, `iomem` and `map` read it without the lock. boot()
   * does it at boot, at each handover event and every second.
   * @param options.layoutMaxAgeMs publish a memory layout up to this old
   *   rather than compute it again (it costs O(page blocks); boot()'s
   *   timer passes 10 s); default 0: the current one.
   * @returns false when the device has no status area or the write failed.
   */
  publishStatus(options: { layoutMaxAgeMs?: number } = {}): boolean {
    if (typeof options !== 'object' || options === null)
      throw new KexecError(
        'EINVAL',
        `publishStatus options must be an object, got ${show(options)}`,
      );
    if (options.layoutMaxAgeMs !== undefined && typeof options.layoutMaxAgeMs !== 'number')
      throw new KexecError(
        'EINVAL',
        `layoutMaxAgeMs must be a number, got ${show(options.layoutMaxAgeMs)}`,
      );
    if (!this.alive) return false;
    const cached = this.#layoutCache;
    const maxAge = options.layoutMaxAgeMs ?? 0;
    const layout =
      cached !== null && Date.now() - cached.at <= maxAge ? cached.layout : this.memoryLayout();
    return this.#status.publish((maxRuns) => buildStatus(this.#statusSources(layout), maxRuns));
  }

  /**
   * Prometheus metrics in the text exposition format (version 0.0.4):
   * handover downtime histogram, preserved bytes by subsystem, pages by
   * state, free blocks by order, handovers, failures and fallbacks (counted
   * over the life of the device), pools, LUO descriptors.
   */
  metrics(): string {
    return formatPrometheus(metricFamilies(this.#fullStatus()));
  }

  /**
   * The same metrics as objects a prom-client Registry takes with
   * `registry.registerMetric(m)`; each reads this generation's figures
   * when scraped.
   */
  metricCollectors(): PromClientMetric[] {
    return promClientMetrics(() => this.#fullStatus());
  }

  #fullStatus(): PublishedStatus {
    return buildStatus(this.#statusSources(), Number.POSITIVE_INFINITY);
  }

  /** What this generation would publish now. */
  publishedStatus(): PublishedStatus {
    return buildStatus(this.#statusSources(), MAX_LAYOUT_RUNS);
  }

  #statusSources(layout = this.memoryLayout()): StatusSources {
    const kho = this.kho;
    const loaded = this.kexec.loaded;
    const pk = this.pkram.status();
    return {
      generation: this.generation,
      bootId: this.boot.bootId,
      bootKind: this.boot.kind,
      coldReason: this.boot.coldReason,
      bootedAtMs: this.#status.bootedAtMs,
      publishIntervalMs: this.#statusIntervalMs,
      deviceSize: this.device.size,
      history: this.#status.history,
      pages: this.pages,
      kho: {
        enabled: kho.enabled,
        preserved: kho.preserved(),
        subtrees: kho.enabled ? kho.subtreeNames() : [],
        scratch: kho.scratch,
      },
      pkram: { enabled: pk.enabled, nodes: pk.nodes, preservedPages: pk.preservedPages },
      pools: this.pmpools.status().pools.map((p) => ({
        name: p.name,
        base: p.base,
        size: p.size,
        totalPages: p.totalPages,
        usedPages: p.usedPages,
      })),
      reserveMem: this.#reserveMem.list(),
      luo: this.#luo.summary(),
      kexec: loaded
        ? { segment: loaded.segment, preload: loaded.preload, cmdline: loaded.cmdline }
        : null,
      layout,
    };
  }

  /** A plain snapshot for tools and tests. */
  status(): KernelStatus {
    const loaded = this.kexec.loaded;
    return {
      boot: {
        ...this.boot,
        setupData: this.boot.setupData.map((s) => ({ type: s.type, length: s.data.length })),
      },
      alive: this.alive,
      device: { name: this.device.name, size: this.device.size, pages: this.device.pages },
      memoryMap: { entries: this.memoryMap.entries(), lines: this.memoryMap.print() },
      memblock: this.memblock.dump(),
      pages: this.pages.stats(),
      scratchPages: this.kho.scratchPages.stats(),
      crashArea: this.crashArea,
      pmpools: this.pmpools.status(),
      pkram: this.pkram.status(),
      kexec: loaded ? { cmdline: loaded.cmdline, segment: loaded.segment } : null,
      bootedAt: this.#status.bootedAtMs,
      handover: this.#status.history,
      statusArea: this.#status.area,
    };
  }

  #kexecHost(): KexecHost {
    const kernel = this;
    return {
      get device() {
        return kernel.device;
      },
      get pages() {
        return kernel.pages;
      },
      get generation() {
        return kernel.#header.generation;
      },
      get bootId() {
        return Uint8Array.from(Buffer.from(kernel.boot.bootId, 'hex'));
      },
      get cmdline() {
        return kernel.boot.cmdline;
      },
      get subsystems() {
        return kernel.subsystems;
      },
      handoverMemoryMap: () => this.memoryMap.clone(),
      handoverBegan: (image: LoadedImage) => this.#status.handoverBegan(image.preload),
      handoverFailed: (_image: LoadedImage, err: unknown) => {
        this.#status.handoverFailed(
          this.generation,
          err instanceof Error ? err.message : String(err),
        );
        this.publishStatus();
      },
      checkCanKexec: () => {
        this.assertAlive();
        if (this.isCrashKernel) throw new KexecError('ESRCH', 'a crash kernel cannot kexec');
      },
      checkCmdline: (text: string) => {
        parseCommandLine(text);
      },
      commitPendingBoot: (phys: number, memoryMap: readonly MemoryRange[]) => {
        // The boot block carries the exact map; the header's copy (for a later
        // cold boot) may be coarser, kept ranges growing over small usable gaps.
        const memmap = MemoryMap.from(memoryMap).coarsened(DEVICE_MAP_MAX).entries();
        const header = { ...this.#header, bootBlock: phys, memmap };
        writeDeviceHeader(this.device, header);
        this.#header = header;
      },
      cancelPendingBoot: () => {
        const header = { ...this.#header, bootBlock: 0 };
        writeDeviceHeader(this.device, header);
        this.#header = header;
      },
    };
  }
}

export interface KernelStatus {
  boot: Omit<BootInfo, 'setupData'> & { setupData: { type: number; length: number }[] };
  alive: boolean;
  device: { name: string; size: number; pages: number };
  memoryMap: { entries: MemoryRange[]; lines: string[] };
  memblock: string;
  pages: BuddyStats;
  /** KHO scratch given back to transient allocations, and its kexec window. */
  scratchPages: ScratchPagesStats;
  crashArea: PhysRange | null;
  pmpools: PmpoolsStatus;
  kexec: { cmdline: string; segment: PhysRange } | null;
  pkram: KernelPkramStatus;
  /** When this generation booted (ms since the epoch). */
  bootedAt: number;
  /** Every handover of the device so far, and how the last one ended. */
  handover: HandoverHistory;
  /** Where this generation publishes its status, or null. */
  statusArea: StatusRange | null;
}

function parseCommandLine(text: string): { cmdline: Cmdline; params: EarlyParamValues } {
  const cmdline = Cmdline.parse(text);
  return { cmdline, params: defaultEarlyParams().parseAll(cmdline) };
}

/** @throws BootError EINVAL for a request that is not one (before anything is read). */
function checkBootRequest(r: BootRequest): void {
  const bad = (what: string, v: unknown): never => {
    throw new BootError('EINVAL', `Kernel.boot: ${what}, got ${show(v)}`);
  };
  if (typeof r !== 'object' || r === null) bad('the request must be an object', r);
  const d = r.device as unknown as Record<string, unknown> | null;
  if (
    typeof d !== 'object' ||
    d === null ||
    typeof d.bytes !== 'function' ||
    typeof d.view !== 'function'
  )
    bad('device must be a MemoryDevice', d);
  if (r.cmdline !== undefined && typeof r.cmdline !== 'string')
    bad('cmdline must be a string', r.cmdline);
  if (r.bootBlock !== undefined && !Number.isSafeInteger(r.bootBlock))
    bad('bootBlock must be an address', r.bootBlock);
  if (typeof r.platform !== 'object' || r.platform === null)
    bad('platform must be an object', r.platform);
}

function reserveCrashArea(memblock: Memblock, params: EarlyParamValues): PhysRange | null {
  const ck = params.get(CRASHKERNEL);
  if (!ck) return null;
  const size = Math.ceil(ck.size / PAGE_SIZE) * PAGE_SIZE;
  if (ck.offset !== undefined) {
    if (ck.offset % PAGE_SIZE !== 0 || !isFree(memblock, ck.offset, size)) {
      throw new BootError(
        'ERANGE',
        `[0x${ck.offset.toString(16)}, +0x${size.toString(16)}) is not free memory`,
        'crashkernel',
      );
    }
    memblock.reserve(ck.offset, size);
    return { base: ck.offset, size };
  }
  const base =
    ck.placement === 'low'
      ? memblock.tryAllocRange(size, CRASH_ALIGN, 0, 4 * 1024 ** 3)
      : memblock.tryAlloc(size, CRASH_ALIGN);
  if (base === null) throw new BootError('ENOMEM', `cannot reserve ${size} bytes`, 'crashkernel');
  return { base, size };
}

/** Whether every byte of [base, base + size) is free memory. */
function isFree(memblock: Memblock, base: number, size: number): boolean {
  for (const r of memblock.freeRanges()) {
    if (r.base <= base && base + size <= r.base + r.size) return true;
  }
  return false;
}

/**
 * The device's own map with this boot's kept ranges (pools, reserved by
 * kernel) added, so a later cold boot, or a tool reading the device, keeps
 * out of them even if no kexec ever commits a handover. memmap= edits are
 * per boot and are not written back.
 */
function keptRanges(deviceMap: readonly MemoryRange[], map: MemoryMap): MemoryRange[] {
  const out = MemoryMap.from(deviceMap);
  for (const r of map.entries()) {
    if (r.type === E820.RESERVED_KERN || r.type === E820.STATUS) out.add(r.addr, r.size, r.type);
  }
  const entries = out.coarsened(DEVICE_MAP_MAX).entries();
  return entries.length <= DEVICE_MAP_MAX ? entries : [...deviceMap];
}

function randomBootId(): string {
  return Buffer.from(randomBytes(16)).toString('hex');
}
