/**
 * What a device's pending handover holds, in words, for verbs that would
 * destroy it (`device rm`): everything a successor would have found.
 * Reads only; anything unreadable is said, never thrown.
 */
import { messageOf } from '../base/errors.js';
import { hex } from '../base/hex.js';
import { SETUP } from '../boot/abi.js';
import { readPendingBootBlock } from '../kernel/boot-block-read.js';
import { inspectDeviceHandover } from '../kho/status.js';
import type { MemoryDevice } from '../memory/device.js';
import type { DeviceHeader } from '../memory/header.js';
import { E820 } from '../memory/memmap-types.js';
import { Pkram } from '../pkram/index.js';
import { decodePkramSetup } from '../pkram/kernel-early.js';

/** One line per thing the pending handover of `device` would hand over; [] when none is pending. */
export function describePendingHandover(device: MemoryDevice, header: DeviceHeader): string[] {
  if (header.bootBlock === 0) return [];
  const mib = (n: number) => `${+(n / 1024 ** 2).toFixed(2)} MiB`;
  const sum = (type: number) =>
    header.memmap.filter((r) => r.type === type).reduce((n, r) => n + r.size, 0);
  const lines = [
    `the handover of generation ${header.generation} to generation ${header.generation + 1} (boot block at ${hex(header.bootBlock)}), never booted`,
  ];
  if (sum(E820.PRESERVED) > 0) lines.push(`${mib(sum(E820.PRESERVED))} of preserved memory`);
  if (sum(E820.RESERVED_KERN) > 0) lines.push(`${mib(sum(E820.RESERVED_KERN))} of kept pools`);
  try {
    const kho = inspectDeviceHandover(device).handover;
    if (kho && kho.subtrees.length > 0) {
      lines.push(`KHO subtrees: ${kho.subtrees.map((t) => t.name).join(', ')}`);
    }
    const block = readPendingBootBlock(device, header, header.bootBlock);
    const rec = block.setupData.find((s) => s.type === SETUP.PKRAM);
    if (rec) {
      const { superPfn } = decodePkramSetup(rec.data, device);
      const nodes = Pkram.inspect(device, superPfn).nodes;
      if (nodes.length > 0) lines.push(`PKRAM nodes: ${nodes.map((n) => n.name).join(', ')}`);
    }
    if (block.setupData.some((s) => s.type === SETUP.LUO)) {
      lines.push('the preserved file descriptors (LUO sessions) it records');
    }
  } catch (err) {
    lines.push(`(the rest cannot be read: ${messageOf(err)})`);
  }
  return lines;
}
