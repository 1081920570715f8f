/**
 * The pool workload's log of what it holds, in a plain file beside the
 * device: SLOTS records of { u32 state, u32 pfn, u32 count, u32 pattern
 * seed }, state 1 once the range is held and filled, 2 before a release.
 */
import { readFileSync } from 'node:fs';

export const SLOTS = 48;
export const SLOT_SIZE = 16;

/** The ranges the log says were held (state 1) when the writer died. */
export function heldRanges(path: string): { pfn: number; count: number; seed: number }[] {
  const b = readFileSync(path);
  const out = [];
  for (let i = 0; i < SLOTS; i++) {
    if (b.readUInt32LE(i * SLOT_SIZE) !== 1) continue;
    out.push({
      pfn: b.readUInt32LE(i * SLOT_SIZE + 4),
      count: b.readUInt32LE(i * SLOT_SIZE + 8),
      seed: b.readUInt32LE(i * SLOT_SIZE + 12),
    });
  }
  return out;
}
