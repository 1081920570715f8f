/**
 * The steps of Kernel.boot that decide something, each on its own: which
 * handover to take (or why to boot cold), the memory this boot runs on,
 * each subsystem's early boot, and the device header and boot record the
 * new generation writes (a successor on trial, a fallback). Kernel.boot
 * runs them in order, then commits.
 */

import { messageOf } from '../base/errors.js';
import { hex } from '../base/hex.js';
import type { PhysRange } from '../base/range.js';
import { SETUP } from '../boot/abi.js';
import type { BootBlock, SetupData } from '../boot/bootblock.js';
import { Cmdline } from '../boot/cmdline.js';
import type { EarlyContext } from '../boot/early-context.js';
import { BootError } from '../boot/errors.js';
import {
  type BootCounting,
  decodeKexecMetadata,
  type KexecMetadata,
} from '../boot/kexec-metadata.js';
import type { Memblock } from '../boot/memblock.js';
import { defaultEarlyParams, type EarlyParamValues, MEMMAP } from '../boot/params.js';
import { fellBack, trialStarted } from '../kexec/boot-counting.js';

import { type KhoEarly, khoEarlyInit, khoScratchInit } from '../kho/early.js';
import { type ReserveMemRegion, reserveMemEarly } from '../kho/reserve-mem.js';
import { DEVICE_MAP_MAX } from '../memory/abi.js';
import {
  type BootRecord,
  EMPTY_BOOT_RECORD,
  type TrialRecord,
  type UpgradeOutcome,
} from '../memory/boot-record.js';
import type { MemoryDevice } from '../memory/device.js';
import type { DeviceHeader } from '../memory/header.js';
import { MemoryMap } from '../memory/memmap.js';
import { E820, type MemoryRange } from '../memory/memmap-types.js';
import { randomBytes } from '../memory/random.js';
import { type PkramEarly, pkramEarly } from '../pkram/kernel-early.js';
import { type PmpoolEarly, pmpoolEarly } from '../pmpool/pool-early.js';
import { readPendingBootBlock, trialBase } from './boot-block-read.js';
import type { BootInfo } from './boot-info.js';
import { buildMemoryMap, memblockFromMap } from './memory-layout.js';
import { type StatusEarly, statusEarly } from './status-area.js';

/** What Kernel.boot is asked, as far as the steps need it. */
export interface BootAsk {
  readonly device: MemoryDevice;
  readonly cmdline?: string;
  readonly bootBlock?: number;
  readonly nodes?: readonly PhysRange[];
  readonly release?: string;
  readonly status?: boolean;
}

/** The handover this boot takes (null: a cold boot, and why when one was refused) and its command line. */
export interface TakenHandover {
  readonly block: BootBlock | null;
  readonly coldReason?: string;
  readonly cmdlineText: string;
  readonly cmdline: Cmdline;
  readonly params: EarlyParamValues;
}

/**
 * The pending boot block when one is asked for and sound, with its command
 * line parsed. A block the device refuses, or whose command line does not
 * parse, is refused like a corrupt one: the boot is cold, on the request's
 * command line, and says why.
 * @throws BootError the request's own command line does not parse
 */
export function takeHandover(ask: BootAsk, header: DeviceHeader): TakenHandover {
  let coldReason: string | undefined;
  if (ask.bootBlock !== undefined) {
    try {
      const block = readPendingBootBlock(ask.device, header, ask.bootBlock);
      try {
        return { block, cmdlineText: block.cmdline, ...parseCommandLine(block.cmdline) };
      } catch (err) {
        if (!(err instanceof BootError)) throw err;
        coldReason = `boot block command line: ${err.message}`;
      }
    } catch (err) {
      if (!(err instanceof BootError)) throw err;
      coldReason ??= err.message;
    }
  }
  const cmdlineText = ask.cmdline ?? '';
  return { block: null, coldReason, cmdlineText, ...parseCommandLine(cmdlineText) };
}

/** The memory this boot runs on, the boot log begun, and what each subsystem's early boot sees. */
export interface BootMemory {
  readonly meta: KexecMetadata | null;
  readonly memoryMap: MemoryMap;
  readonly memblock: Memblock;
  readonly log: string[];
  readonly ctx: EarlyContext;
}

/** The map handed over (or the device's own), with hotplugged memory and `memmap=`, and memblock over it. */
export function bootMemory(
  ask: BootAsk,
  header: DeviceHeader,
  handover: TakenHandover,
  hotplugged: PhysRange | null,
): BootMemory {
  const { device } = ask;
  const { block, params } = handover;
  const log: string[] = [];
  const meta = block ? readKexecMetadata(block.setupData, log) : null;
  const baseMap = block ? withHotplugged(block.memoryMap, hotplugged) : header.memmap;
  const memoryMap = buildMemoryMap(baseMap, params.getAll(MEMMAP), device.size);
  const memblock = memblockFromMap(memoryMap);
  if (hotplugged)
    log.push(`memory: hotplugged [${hex(hotplugged.base)}, +${hex(hotplugged.size)})`);
  if (handover.coldReason) log.push(`boot: handover refused, booting cold: ${handover.coldReason}`);
  const ctx: EarlyContext = {
    device,
    memoryMap,
    memblock,
    params,
    setupData: block ? block.setupData : [],
    nodes: ask.nodes ?? [{ base: 0, size: device.size }],
    log: (line) => log.push(line),
  };
  return { meta, memoryMap, memblock, log, ctx };
}

/** What each subsystem's early boot decided, and the generation that wrote the handover. */
export interface EarlyParts {
  readonly khoEarly: KhoEarly;
  readonly pmpool: PmpoolEarly;
  readonly pkram: PkramEarly;
  readonly reserveMem: ReserveMemRegion[];
  readonly status: StatusEarly;
  readonly base: { generation: number; bootId: string };
}

/**
 * Each subsystem's early boot, in the kernel's order: KHO (which reads the
 * handover scratch-only), the pools, PKRAM, reserve_mem, the status area,
 * then KHO's scratch for a boot that revived no handover.
 */
export function earlyBoot(
  ctx: EarlyContext,
  ask: BootAsk,
  header: DeviceHeader,
  block: BootBlock | null,
): EarlyParts {
  const khoEarly = khoEarlyInit(ctx);
  const pmpool = pmpoolEarly(ctx, khoEarly);
  // The generation that wrote the block: the header's, or (a retry, a fallback) the trial's base.
  const base =
    ask.bootBlock !== undefined
      ? trialBase(header, ask.bootBlock)
      : { generation: header.generation, bootId: header.bootId };
  const expect = block
    ? { generation: base.generation, predecessorBootId: block.predecessorBootId }
    : null;
  const pkram = pkramEarly(ctx, khoEarly, expect);
  const reserveMem = reserveMemEarly(ctx, khoEarly);
  const status = statusEarly(ctx, ask.status === true);
  return { khoEarly: khoScratchInit(ctx, khoEarly), pmpool, pkram, reserveMem, status, base };
}

/** A successor on trial: its record and the boot counting it was handed. */
export interface TrialStart {
  readonly record: TrialRecord;
  readonly counting: BootCounting;
}

/**
 * A/B boot counting: a successor on trial boots the handover without
 * consuming it (`trial`); the boot after its tries are spent is the
 * fallback's, and records that it fell back (`fellBackFrom`).
 */
export function decideTrial(
  ask: BootAsk,
  record: BootRecord,
  kexecBoot: boolean,
  meta: KexecMetadata | null,
  base: { generation: number; bootId: string },
  now: number,
): { trial: TrialStart | null; fellBackFrom?: UpgradeOutcome } {
  const counting = meta?.counting ?? null;
  let trial = kexecBoot && record.trial?.bootBlock === ask.bootBlock ? record.trial : null;
  const fallback = trial?.state === 'falling-back';
  if (fallback && trial)
    return { trial: null, fellBackFrom: fellBack(trial, counting?.successor ?? null, now) };
  if (!kexecBoot || counting === null) return { trial: null };
  // An exec that did not record the trial (another writer): this is try 1.
  trial ??= trialStarted(record, ask.bootBlock ?? 0, counting, process.pid, now, base).trial;
  return { trial: trial ? { record: trial, counting } : null };
}

/** The header and boot record the new generation writes, and how it came up. */
export interface NextGeneration {
  readonly header: DeviceHeader;
  readonly boot: BootInfo;
  readonly trial: TrialStart | null;
}

/**
 * The new generation: the boot block consumed (a repeat is then stale), the
 * kexec count and release, the kept ranges of the device's map, the trial;
 * a fallback and the kexec count go to the boot log.
 */
export function nextGeneration(
  ask: BootAsk,
  header: DeviceHeader,
  handover: TakenHandover,
  mem: BootMemory,
  base: { generation: number; bootId: string },
  now = Date.now(),
): NextGeneration {
  const { block } = handover;
  const { meta } = mem;
  const bootId = block ? Buffer.from(block.bootId).toString('hex') : randomBootId();
  const record = header.record ?? EMPTY_BOOT_RECORD;
  const kexecCount = block ? (meta?.kexecCount ?? record.kexecCount + 1) : 0;
  const release = ask.release ?? '';
  const { trial, fellBackFrom } = decideTrial(ask, record, block !== null, meta, base, now);
  const next: DeviceHeader = {
    ...header,
    generation: (block ? base.generation : header.generation) + 1,
    bootBlock: 0,
    bootId,
    ownerPid: process.pid,
    memmap: keptRanges(header.memmap, mem.memoryMap),
    record: { kexecCount, release, trial: null, last: fellBackFrom ?? record.last },
  };
  const boot: BootInfo = {
    kind: block ? 'kexec' : 'cold',
    generation: next.generation,
    bootId,
    predecessorBootId: block ? Buffer.from(block.predecessorBootId).toString('hex') : undefined,
    coldReason: handover.coldReason,
    bootBlock: block ? ask.bootBlock : undefined,
    setupData: block ? block.setupData : ([] as SetupData[]),
    cmdline: handover.cmdlineText,
    kexecCount,
    previousRelease: meta ? meta.previousRelease : undefined,
    fellBackFrom,
  };
  if (fellBackFrom)
    mem.log.push(
      `boot: fallback: ${fellBackFrom.successor} failed ${fellBackFrom.tries} tries (${fellBackFrom.reason})`,
    );
  if (meta) mem.log.push(`kexec from: ${meta.previousRelease || 'unknown'} (count ${kexecCount})`);
  return { header: next, boot, trial };
}

/**
 * The header a successor on trial writes: it names this generation but
 * keeps the boot block pending and the device's own map as it was; the
 * trial records who tries it.
 */
export function triedHeader(
  header: DeviceHeader,
  next: NextGeneration,
  trial: TrialStart,
): DeviceHeader {
  const { kexecCount, release, last } = next.header.record ?? EMPTY_BOOT_RECORD;
  return {
    ...next.header,
    bootBlock: header.bootBlock,
    memmap: header.memmap,
    record: { kexecCount, release, last, trial: { ...trial.record, pid: process.pid, release } },
  };
}

/** The predecessor's map, with memory hotplugged since it was written as usable. */
function withHotplugged(
  map: readonly MemoryRange[],
  added: PhysRange | null,
): readonly MemoryRange[] {
  return added === null ? map : [...map, { base: added.base, size: added.size, type: E820.USABLE }];
}

export function parseCommandLine(text: string): { cmdline: Cmdline; params: EarlyParamValues } {
  const cmdline = Cmdline.parse(text);
  return { cmdline, params: defaultEarlyParams().parseAll(cmdline) };
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
    if (r.type === E820.RESERVED_KERN || r.type === E820.STATUS) out.add(r.base, r.size, r.type);
  }
  const entries = out.coarsened(DEVICE_MAP_MAX).entries();
  return entries.length <= DEVICE_MAP_MAX ? entries : [...deviceMap];
}

export function randomBootId(): string {
  return Buffer.from(randomBytes(16)).toString('hex');
}

/** The boot block's kexec metadata, or null (none, or unreadable: logged; the boot goes on without it). */
function readKexecMetadata(setupData: readonly SetupData[], log: string[]): KexecMetadata | null {
  const entry = setupData.find((d) => d.type === SETUP.KEXEC_METADATA);
  if (!entry) return null;
  try {
    return decodeKexecMetadata(entry.data);
  } catch (err) {
    log.push(`boot: ${messageOf(err)}; booting without it`);
    return null;
  }
}
