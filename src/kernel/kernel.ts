import type { Server } from 'node:net';
import { messageOf, show } from '../base/errors.js';
import { hex } from '../base/hex.js';
import type { PfnRange, PhysRange } from '../base/range.js';
import { SETUP } from '../boot/abi.js';
import type { Cmdline } from '../boot/cmdline.js';
import { BootError } from '../boot/errors.js';
import type { HandoverSubsystem } from '../boot/handover.js';
import type { BootCounting, KexecCommand } from '../boot/kexec-metadata.js';
import type { Memblock } from '../boot/memblock.js';
import { CRASHKERNEL, type EarlyParamValues } from '../boot/params.js';
import { commandText, markedGood, trialStarted } from '../kexec/boot-counting.js';
import { KexecError } from '../kexec/errors.js';
import { Kexec, type KexecHost, type KexecPlatform, type LoadedImage } from '../kexec/kexec.js';

import { type KhoEarly, khoEarly } from '../kho/early.js';
import { Kho } from '../kho/kho.js';
import { ReserveMem } from '../kho/reserve-mem.js';
import type { FileHandler } from '../luo/handlers.js';
import { KernelLiveUpdate } from '../luo/kernel-luo.js';
import type { LiveUpdate } from '../luo/liveupdate.js';
import { DEVICE_MAP_MAX } from '../memory/abi.js';
import { type BootRecord, EMPTY_BOOT_RECORD, type UpgradeOutcome } from '../memory/boot-record.js';
import { checkDeviceViews, type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import { type DeviceHeader, readDeviceHeader, writeDeviceHeader } from '../memory/header.js';
import { hotplugMemory } from '../memory/hotplug.js';
import { MemoryMap } from '../memory/memmap.js';
import { E820, type MemoryRange } from '../memory/memmap-types.js';
import { BuddyAllocator, type BuddyStats } from '../mm/buddy.js';
import { PageAllocError } from '../mm/errors.js';
import { checkFolio, type Folio } from '../mm/folio.js';
import type { ScratchPagesStats } from '../mm/scratch-pages.js';
import type { PkramEarly } from '../pkram/kernel-early.js';
import { KernelPkram, type KernelPkramStatus } from '../pkram/kernel-pkram.js';
import type { PmpoolEarly } from '../pmpool/pool-early.js';
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
import type { BootInfo } from './boot-info.js';
import {
  bootMemory,
  earlyBoot,
  type NextGeneration,
  nextGeneration,
  parseCommandLine,
  randomBootId,
  takeHandover,
  triedHeader,
} from './boot-steps.js';
import { CrashDevice } from './crash-device.js';
import { buildMemoryMap, freePageRanges, memblockFromMap } from './memory-layout.js';
import { KernelStatusArea, NO_STATUS, type StatusEarly } from './status-area.js';
import { buildStatus, kernelLayout, type StatusSources } from './status-snapshot.js';
import { takeServer, type UpgradeOptions, upgrade } from './upgrade.js';

/** What starts a successor, and learns of a crash kernel taking over. */
export interface KernelPlatform extends KexecPlatform<Kernel> {
  adopt?(kernel: Kernel): void;
  /** A successor on trial was marked good (the process platform tells systemd, or its predecessor). */
  markedGood?(kernel: Kernel): void;
  /** Where a preserved descriptor is now, when it moved (see KernelLiveUpdateOptions). */
  inheritedFd?(session: string, token: bigint, fd: number): number | undefined;
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
  /** This generation's release (a program's name@version), handed to its successor in the kexec metadata. */
  readonly release?: string;
  /**
   * Make a status area (src/status/abi.ts) when the device has none, so
   * readers outside the process see this generation. A device that has one
   * is always published into.
   */
  readonly status?: boolean;
  /** How often the caller republishes the status (recorded for readers; 0: only at events). */
  readonly statusIntervalMs?: number;
  /**
   * Leave the first publishStatus to the caller (a real process does it
   * once its program has run on): the first memory layout counts the
   * predecessor's preserved blocks per census cell, O(blocks) once (11-22 ms
   * at 300,000 order-0 blocks, loaded machine), which would sit in a
   * successor's downtime if boot() published it. Default false: published at boot.
   */
  readonly deferStatus?: boolean;
}

/** A successor on trial: it boots its predecessor's handover without consuming it until marked good. */
export interface KernelTrial {
  /** This try's number, and how many the successor has before the fallback boots. */
  readonly tries: number;
  readonly maxTries: number;
  /** How long the try has to be marked good (ms). */
  readonly deadlineMs: number;
  /** True when a try not marked good by then fails; false when living that long marks it good. */
  readonly requireGood: boolean;
  /** The last known-good program, which boots the same handover if every try fails. */
  readonly fallback: KexecCommand;
  readonly successor: KexecCommand;
}

/**
 * kernel.status().upgrade: this generation's release and kexec count, the
 * boot counting of a successor on trial, and how the last counted upgrade
 * of the device ended (the device's boot record holds the same at rest).
 */
export interface UpgradeStatus {
  /** This generation's release. */
  release: string;
  /** Kexec boots since the last cold boot (0 for a cold boot). */
  kexecCount: number;
  /** The release that kexec'd into this generation, when known. */
  previousRelease: string | null;
  /** Set while this generation is a successor on trial. */
  trial: (Omit<KernelTrial, 'fallback' | 'successor'> & { fallback: string }) | null;
  /** How the last counted handover onto this device ended (good, or fell back with why). */
  last: UpgradeOutcome | null;
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
  readonly #log: string[];
  #reserveMem: ReserveMem;
  readonly #status: KernelStatusArea;
  #statusIntervalMs = 0;
  #header: DeviceHeader;
  /** This generation's release. */
  readonly release: string;
  #trial: KernelTrial | null = null;
  /** What marking this trial good writes (the boot's consumption of the handover). */
  #goodHeader: DeviceHeader | null = null;
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
    release?: string;
    khoEarly: KhoEarly;
    pmpoolEarly?: PmpoolEarly;
    pkramEarly?: PkramEarly;
    /** A successor on trial: what it attaches of the predecessor's handover stays as it was. */
    onTrial?: boolean;
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
    this.release = init.release ?? '';
    this.crashArea = init.crashArea;
    this.log = init.log;
    this.#log = init.log;
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
      trial: init.onTrial === true,
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
      init.boot.kind === 'crash'
        ? { disabled: 'crash kernel' }
        : { inheritedFd: init.platform.inheritedFd?.bind(init.platform) },
    );
    this.addSubsystem(this.#luo);
    this.#status = new KernelStatusArea(init.device, init.statusEarly ?? NO_STATUS);
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
    // A device that grew since its last boot brings the new memory online first.
    const hotplugged = hotplugMemory(device);
    const header = readDeviceHeader(device);
    const handover = takeHandover(request, header);
    const mem = bootMemory(request, header, handover, hotplugged);
    const early = earlyBoot(mem.ctx, request, header, handover.block);
    const crashArea = reserveCrashArea(mem.memblock, handover.params);
    const pages = BuddyAllocator.fromFreeRanges(device.pages, freePageRanges(mem.memblock), {
      shared: device.ownedForLife === true,
    });
    const next = nextGeneration(request, header, handover, mem, early.base);
    // On trial, pages of the handover freed from here on (KHO's tree as the subsystems come
    // up, restored folios freed later) stay unused until markGood: a retry or the fallback
    // reads them again.
    if (next.trial) pages.holdFreesIn(preservedPfnRanges(handover.block?.memoryMap ?? []));
    const kernel = new Kernel({
      device,
      boot: next.boot,
      cmdline: handover.cmdline,
      params: handover.params,
      memoryMap: mem.memoryMap,
      memblock: mem.memblock,
      pages,
      header: next.header,
      platform: request.platform,
      nodes: mem.ctx.nodes,
      crashArea,
      log: mem.log,
      release: request.release ?? '',
      khoEarly: early.khoEarly,
      pmpoolEarly: early.pmpool,
      pkramEarly: early.pkram,
      statusEarly: early.status,
      onTrial: next.trial !== null && next.trial !== undefined,
    });
    kernel.#reserveMem = new ReserveMem(device, kernel.kho, early.reserveMem);
    kernel.#commitBoot(request, header, next, early.base);
    return kernel;
  }

  /**
   * Last: only a boot that nothing refused consumes the boot block (a
   * successor on trial keeps it pending), then the first status.
   */
  #commitBoot(
    request: BootRequest,
    header: DeviceHeader,
    next: NextGeneration,
    base: { generation: number },
  ): void {
    if (next.trial) {
      const tried = triedHeader(header, next, next.trial);
      this.#startTrial(tried, next.header, next.trial.record.tries, next.trial.counting);
      writeDeviceHeader(this.device, tried);
    } else {
      writeDeviceHeader(this.device, next.header);
    }
    this.#statusIntervalMs = request.statusIntervalMs ?? 0;
    this.#status.booted(next.boot, base.generation);
    if (request.deferStatus !== true) this.publishStatus();
  }

  #startTrial(
    tried: DeviceHeader,
    good: DeviceHeader,
    tries: number,
    counting: BootCounting,
  ): void {
    this.#header = tried;
    this.#goodHeader = good;
    this.#trial = {
      tries,
      maxTries: counting.tries,
      deadlineMs: counting.deadlineMs,
      requireGood: counting.requireGood,
      fallback: counting.fallback,
      successor: counting.successor,
    };
  }

  /**
   * Set while this generation is a successor on trial (A/B boot counting):
   * it runs on its predecessor's handover, which stays pending and
   * untouched in the device (pages freed from it are held back) until
   * markGood(); if this try fails, the next try or the fallback boots the
   * same handover.
   */
  get trial(): KernelTrial | null {
    return this.#trial;
  }

  /**
   * Ends the trial: this generation takes the handover for good (the boot
   * block is consumed, held pages are freed, the outcome is recorded in the
   * device). Done by itself at the first kexec load; the process platform
   * also does it when the program exits cleanly or, unless the predecessor
   * required it, when the deadline passes. Also the program's way to say it
   * serves: a process booted with `notifyReady: 'good'` tells systemd
   * READY=1 now (on trial or not).
   * @throws KexecError ESRCH once replaced.
   */
  markGood(): void {
    this.assertAlive();
    const trial = this.#trial;
    const good = this.#goodHeader;
    if (trial === null || good === null) {
      this.#platform.markedGood?.(this);
      return;
    }
    const from = this.#header.record?.trial;
    const header: DeviceHeader = {
      ...good,
      record: {
        ...(good.record ?? EMPTY_BOOT_RECORD),
        last: from
          ? markedGood(from, this.release || commandText(trial.successor), Date.now())
          : null,
      },
    };
    writeDeviceHeader(this.device, header);
    this.#header = header;
    this.#trial = null;
    this.#goodHeader = null;
    this.pages.releaseHeld();
    this.pkram.endTrial();
    this.#log.push(`boot: marked good after ${trial.tries} of ${trial.maxTries} tries`);
    this.#platform.markedGood?.(this);
  }

  /**
   * A `reserve_mem=size:align:name` region: same address and contents after
   * any number of kexecs.
   * @throws KhoError ENOENT when there is no such region.
   */
  reserveMem(name: string): { base: number; size: number; bytes: Uint8Array; kept: boolean } {
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

  /**
   * liveupdate_register_file_handler(): a file handler of the program's own
   * (a kind of descriptor the default ones do not know, or a canFinish step
   * that holds a session's finish), asked before the default handlers for
   * the files this generation preserves, and given the predecessor's files
   * of its compatible. Register it before the first use of
   * `kernel.liveupdate`, in every generation that hands such files on.
   * @throws LuoError EBUSY after that first use; EEXIST a handler has that
   *   compatible; EINVAL not a handler; ENODEV in a crash kernel.
   */
  registerLiveUpdateHandler(handler: FileHandler): void {
    this.assertAlive();
    this.#luo.registerHandler(handler);
  }

  /**
   * An upgrade in one call: loads the successor (`options` as kexec load),
   * hands over `servers` (each preserved, then drained), awaits the
   * `beforeExec` hooks, and execs. In a real process it does not return on
   * success; on a failure before the point of no return the servers listen
   * again on their own sockets and the error is thrown (this generation
   * serves on). The successor takes each server back with takeServer(name).
   * @throws KexecError EINVAL for bad options; as kexec load and exec, LuoError as
   *   preserveServer, and what a hook throws.
   */
  upgrade(options: UpgradeOptions = {}): Promise<Kernel> {
    const kernel = this;
    return upgrade<Kernel>(
      {
        get liveupdate() {
          return kernel.liveupdate;
        },
        load: (o) => this.kexec.load(o),
        ready: (ms) => this.kexec.ready(ms),
        zapMappings: async () => this.device.zap?.(0, this.device.size),
        unload: () => this.kexec.unload(),
        exec: () => this.kexec.exec(),
      },
      options,
    );
  }

  /**
   * The server the predecessor's upgrade() handed over as `name`, listening
   * again with `server` (a new net.Server by default); null when there is none.
   * @throws LuoError when the socket that came is not the one preserved.
   */
  takeServer<S extends Server>(name: string, server?: S): S | null {
    return takeServer(this.liveupdate, name, server) as S | null;
  }

  /** Descriptor numbers preserved for the next exec (the process platform keeps them open). */
  preservedFds(): number[] {
    return this.#luo.preservedFds();
  }

  /** The same descriptors with the session and token each is preserved under. */
  preservedFiles(): { session: string; token: bigint; fd: number }[] {
    return this.#luo.preservedFiles();
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
   * movable allocations use scratch after boot; KHO and PKRAM refuse to
   * preserve such pages (EINVAL).
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
        { base: 0, size: area.base, type: E820.RESERVED },
        { base: area.base, size: area.size, type: E820.USABLE },
        {
          base: area.base + area.size,
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
        kexecCount: this.boot.kexecCount,
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
      khoEarly: khoEarly({
        enabled: false,
        disabledReason: 'crash kernel',
        scratch: [],
        incoming: null,
      }),
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
   * device. Page states and PKRAM's pages come from the page allocator's
   * census, exact in number per cell of 2^`pages.census.shift` pages (one
   * page on devices of up to CENSUS_CELLS pages); what owns memory in a few
   * extents is painted over them at its exact bounds. O(census cells + subsystem extents), whatever
   * the device's size and fragmentation: a process republishes it every second.
   */
  memoryLayout(): MemoryLayout {
    const loaded = this.kexec.loaded;
    const census = this.pages.census;
    return kernelLayout({
      size: this.device.size,
      nodes: this.nodes,
      census,
      pkramCells: this.pkram.pagesPerCell(census.shift),
      incomingCells: this.kho.incoming?.unclaimedPerCell(census.shift) ?? new Map(),
      memoryMap: this.memoryMap,
      scratch: this.kho.scratch,
      pools: this.pmpools.list().map((p) => ({ name: p.name, base: p.base, size: p.size })),
      reserveMem: this.#reserveMem.list(),
      crashArea: this.crashArea,
      statusArea: this.#status.area,
      kexecSegment: loaded ? loaded.segment : null,
    });
  }

  /**
   * Writes this generation's status into the device's status area, where
   * `livekexec status`, `iomem` and `map` read it without the lock. boot()
   * does it at boot, at each handover event and every second.
   * @returns false when the device has no status area or the write failed.
   */
  publishStatus(): boolean {
    if (!this.alive || this.#status.area === null) return false;
    const layout = this.memoryLayout();
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
      upgrade: this.#upgradeStatus(),
    };
  }

  #upgradeStatus(): UpgradeStatus {
    const t = this.#trial;
    return {
      release: this.release,
      kexecCount: this.boot.kexecCount,
      previousRelease: this.boot.previousRelease ?? null,
      trial: t
        ? {
            tries: t.tries,
            maxTries: t.maxTries,
            deadlineMs: t.deadlineMs,
            requireGood: t.requireGood,
            fallback: commandText(t.fallback),
          }
        : null,
      last: this.#header.record?.last ?? null,
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
      get release() {
        return kernel.release;
      },
      get kexecCount() {
        return kernel.boot.kexecCount;
      },
      // Loading a successor is a generation's own judgement that it works. A generation that
      // has not published yet (boot() defers its first publish to the next turn of the event
      // loop) does now, outside the downtime: the successor carries the history on from there.
      beforeLoad: () => {
        this.markGood();
        if (!this.#status.published) this.publishStatus();
      },
      get subsystems() {
        return kernel.subsystems;
      },
      handoverMemoryMap: () => this.memoryMap.clone(),
      handoverBegan: (image: LoadedImage) => this.#status.handoverBegan(image.preload),
      handoverFailed: (_image: LoadedImage, err: unknown) => {
        this.#status.handoverFailed(this.generation, messageOf(err));
        this.publishStatus();
      },
      checkCanKexec: () => {
        this.assertAlive();
        if (this.isCrashKernel) throw new KexecError('ESRCH', 'a crash kernel cannot kexec');
      },
      checkCmdline: (text: string) => {
        parseCommandLine(text);
      },
      commitPendingBoot: (
        phys: number,
        memoryMap: readonly MemoryRange[],
        counting: BootCounting | null,
        restart: boolean,
      ) => {
        // The boot block carries the exact map; the header's copy (for a later
        // cold boot) may be coarser, kept ranges growing over small usable gaps.
        const memmap = MemoryMap.from(memoryMap).coarsened(DEVICE_MAP_MAX).entries();
        const base = this.#header.record ?? EMPTY_BOOT_RECORD;
        const record: BootRecord = counting
          ? trialStarted(base, phys, counting, restart ? 0 : process.pid, Date.now(), {
              generation: this.#header.generation,
              bootId: this.#header.bootId,
            })
          : { ...base, trial: null };
        const header = { ...this.#header, bootBlock: phys, memmap, record };
        writeDeviceHeader(this.device, header);
        this.#header = header;
      },
      cancelPendingBoot: () => {
        const base = this.#header.record ?? EMPTY_BOOT_RECORD;
        const header = { ...this.#header, bootBlock: 0, record: { ...base, trial: null } };
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
  /** Release, kexec count, boot counting of a successor on trial, the last counted upgrade's outcome. */
  upgrade: UpgradeStatus;
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
        `[${hex(ck.offset)}, +${hex(size)}) is not free memory`,
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

/** The PRESERVED ranges of a handed-over memory map, as page ranges. */
function preservedPfnRanges(map: readonly MemoryRange[]): PfnRange[] {
  return map
    .filter((r) => r.type === E820.PRESERVED)
    .map((r) => ({ pfn: r.base / PAGE_SIZE, count: r.size / PAGE_SIZE }));
}
