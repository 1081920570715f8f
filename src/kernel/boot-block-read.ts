import { hex } from '../base/hex.js';
import { type BootBlock, readBootBlockAt } from '../boot/bootblock.js';
import { BootError } from '../boot/errors.js';
import type { MemoryDevice } from '../memory/device.js';
import type { DeviceHeader } from '../memory/header.js';

/**
 * Reads and validates the boot block at `phys` against the device header:
 * it must be the pending one, of the next generation, written by the
 * running boot; or, while a successor is on trial with it (the header then
 * names that successor), written by the generation the trial records.
 * Every failure is a BootError saying why.
 */
export function readPendingBootBlock(
  device: MemoryDevice,
  header: DeviceHeader,
  phys: number,
): BootBlock {
  if (header.bootBlock === 0) {
    throw new BootError('ESTALE', `no boot block is pending on ${device.name} (already consumed?)`);
  }
  if (phys !== header.bootBlock) {
    throw new BootError(
      'ESTALE',
      `boot block at ${hex(phys)} is not the pending one (${hex(header.bootBlock)})`,
    );
  }
  const base = trialBase(header, phys);
  return readBootBlockAt(device, phys, {
    generation: base.generation + 1,
    predecessorBootId: Uint8Array.from(Buffer.from(base.bootId, 'hex')),
  });
}

/** The generation and boot id that wrote the pending block at `phys`: the trial's, or the header's. */
export function trialBase(
  header: DeviceHeader,
  phys: number,
): { generation: number; bootId: string } {
  const t = header.record?.trial;
  return t && t.bootBlock === phys
    ? { generation: t.baseGeneration, bootId: t.baseBootId }
    : { generation: header.generation, bootId: header.bootId };
}
