import { SETUP } from '../boot/abi.js';
import { readBootBlockAt } from '../boot/bootblock.js';
import { BootError } from '../boot/errors.js';
import { toDts } from '../fdt/dts.js';
import { FdtError } from '../fdt/errors.js';
import { Fdt } from '../fdt/read.js';
import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import { readDeviceHeader } from '../memory/header.js';
import { E820 } from '../memory/memmap-types.js';
import { readFdtAt } from './device-fdt.js';
import { KhoError } from './errors.js';
import type { Kho } from './kho.js';
import { KhoRadixTree } from './radix.js';
import { parseRootFdt } from './root-fdt.js';
import { decodeScratch, type ScratchArea } from './scratch.js';
import { treeChecksum } from './tree-csum.js';

/** One subtree as status shows it: its DTS, or why it cannot be read. */
export interface SubtreeStatus {
  name: string;
  phys: number;
  size?: number;
  dts?: string;
  error?: string;
}

/** What the kernel's debugfs `kho/out` shows. */
export interface KhoOutStatus {
  finalized: boolean;
  fdt: string | null;
  subtrees: SubtreeStatus[];
  preserved: {
    byOrder: { order: number; blocks: number; bytes: number }[];
    bytes: number;
    metadataPages: number;
  };
}

/** What the kernel's debugfs `kho/in` shows. */
export interface KhoInStatus {
  fdt: string;
  subtrees: SubtreeStatus[];
  unclaimed: { subtrees: string[]; blocks: number; bytes: number };
}

export interface KhoStatus {
  enabled: boolean;
  disabledReason?: string;
  revivalRefused?: string;
  scratch: ScratchArea[];
  out: KhoOutStatus;
  in: KhoInStatus | null;
}

function dtsOf(bytes: Uint8Array): string {
  return toDts(Fdt.from(bytes));
}

/** `kernel.kho.status()`: scratch, the outgoing handover and what came in. */
export function khoStatus(kho: Kho, device: MemoryDevice): KhoStatus {
  const root = kho.rootFdt;
  const out: KhoOutStatus = {
    finalized: root !== null,
    fdt: root ? dtsOf(root) : null,
    subtrees: [...kho.subtreeEntries].map(([name, s]) => {
      const r: SubtreeStatus = { name, phys: s.phys, size: s.size };
      try {
        r.dts = dtsOf(device.bytes(s.phys, s.size).slice());
      } catch (err) {
        r.error = (err as Error).message;
      }
      return r;
    }),
    preserved: kho.preserved(),
  };
  const inc = kho.incoming;
  const inStatus: KhoInStatus | null = inc
    ? {
        fdt: dtsOf(inc.rootFdt),
        subtrees: inc.subtreeNames().map((name) => {
          const r: SubtreeStatus = { name, phys: 0 };
          try {
            const f = kho.peekSubtree(name);
            if (f) r.dts = toDts(f);
          } catch (err) {
            r.error = (err as Error).message;
          }
          return r;
        }),
        unclaimed: inc.unclaimed(),
      }
    : null;
  return {
    enabled: kho.enabled,
    disabledReason: kho.disabledReason,
    revivalRefused: kho.revivalRefused,
    scratch: [...kho.scratch],
    out,
    in: inStatus,
  };
}

/** The handover a device holds for its next boot, read from outside the owning process. */
export interface DeviceHandoverStatus {
  generation: number;
  pendingBootBlock: number;
  /** Preserved and scratch ranges of the device's memory map. */
  preservedRanges: { addr: number; size: number }[];
  scratchRanges: { addr: number; size: number }[];
  /** Present when a boot block with a KHO handover is pending. */
  handover?: {
    fdt: string;
    scratch: ScratchArea[];
    subtrees: SubtreeStatus[];
    preserved: { order: number; blocks: number; bytes: number }[];
    metadataBytes: number;
    checksumOk: boolean;
  };
  /** Why the pending handover cannot be read, if it cannot. */
  error?: string;
}

/**
 * The KHO setup_data of the boot block pending on a device, or null when none
 * is pending or it carries no KHO handover.
 * @throws BootError when the pending boot block is corrupt.
 */
export function pendingKhoSetupData(
  device: MemoryDevice,
): { rootFdt: Uint8Array; scratch?: Uint8Array } | null {
  const header = readDeviceHeader(device);
  if (header.bootBlock === 0) return null;
  const bb = readBootBlockAt(device, header.bootBlock);
  const rootFdt = bb.setupData.find((s) => s.type === SETUP.KHO_FDT)?.data;
  if (!rootFdt) return null;
  return { rootFdt, scratch: bb.setupData.find((s) => s.type === SETUP.KHO_SCRATCH)?.data };
}

/**
 * Reads the pending handover of a device (after `kexec exec` committed it,
 * or left by a successor that never booted): the root FDT, subtrees, scratch
 * and preserved memory by order. Everything is validated; a bad part is
 * reported, never trusted.
 */
export function inspectDeviceHandover(device: MemoryDevice): DeviceHandoverStatus {
  const header = readDeviceHeader(device);
  const status: DeviceHandoverStatus = {
    generation: header.generation,
    pendingBootBlock: header.bootBlock,
    preservedRanges: header.memmap
      .filter((r) => r.type === E820.PRESERVED)
      .map(({ addr, size }) => ({ addr, size })),
    scratchRanges: header.memmap
      .filter((r) => r.type === E820.SCRATCH)
      .map(({ addr, size }) => ({ addr, size })),
  };
  if (header.bootBlock === 0) return status;
  try {
    const bb = readBootBlockAt(device, header.bootBlock);
    const rootData = bb.setupData.find((s) => s.type === SETUP.KHO_FDT);
    if (!rootData) return status;
    const root = parseRootFdt(rootData.data, device.size);
    const scratchData = bb.setupData.find((s) => s.type === SETUP.KHO_SCRATCH);
    const checksumOk = treeChecksum(device, root.memoryMapPages) === root.memoryMapCsum;
    const byOrder = new Map<number, number>();
    const heads = new Map<number, number>();
    const wanted = new Set([...root.subtrees.values()].map((p) => p / PAGE_SIZE));
    if (checksumOk && root.memoryMapPhys !== 0) {
      KhoRadixTree.walk(device, root.memoryMapPhys, (pfn, order) => {
        byOrder.set(order, (byOrder.get(order) ?? 0) + 1);
        if (wanted.has(pfn)) heads.set(pfn, order);
      });
    }
    status.handover = {
      fdt: dtsOf(rootData.data),
      scratch: scratchData ? decodeScratch(scratchData.data, device.size) : [],
      subtrees: [...root.subtrees].map(([name, phys]) => {
        const r: SubtreeStatus = { name, phys };
        const order = heads.get(phys / PAGE_SIZE);
        if (order === undefined) {
          r.error = checksumOk ? 'not a preserved block' : 'tree checksum mismatch: not read';
          return r;
        }
        try {
          const fdt = readFdtAt(device, phys, 2 ** order * PAGE_SIZE);
          r.size = fdt.totalSize;
          r.dts = toDts(fdt);
        } catch (err) {
          r.error = (err as Error).message;
        }
        return r;
      }),
      preserved: [...byOrder]
        .sort(([a], [b]) => a - b)
        .map(([order, blocks]) => ({ order, blocks, bytes: blocks * 2 ** order * PAGE_SIZE })),
      metadataBytes: root.memoryMapPages.length * PAGE_SIZE + rootData.data.length,
      checksumOk,
    };
  } catch (err) {
    if (err instanceof BootError || err instanceof KhoError || err instanceof FdtError)
      status.error = err.message;
    else throw err;
  }
  return status;
}
