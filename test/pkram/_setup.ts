/**
 * Test machines for PKRAM: a heap device with a buddy allocator (page 0 kept
 * out, as the device header's page is), a page source that also takes back
 * blocks a predecessor preserved, and the successor's boot: reserve the
 * preserved ranges, build a fresh allocator around them, attach.
 */

import { PAGE_SIZE } from '../../src/memory/device.js';
import { HeapDevice } from '../../src/memory/heap.js';
import { BuddyAllocator, type PageRange } from '../../src/mm/buddy.js';
import {
  type Folio,
  Pkram,
  type PkramExpect,
  type PkramPageSource,
} from '../../src/pkram/index.js';

export function bootId(n: number): Uint8Array {
  return new Uint8Array(16).fill(n);
}

/** Frees reserved (preserved-at-boot) blocks by releasing them, others by freeing. */
export function pageSource(buddy: BuddyAllocator): PkramPageSource {
  return {
    allocPages: (order) => buddy.allocPages(order),
    freePages: (pfn, order) => {
      if (buddy.pageState(pfn) === 'reserved') buddy.releaseRange(pfn, 2 ** order);
      else buddy.freePages(pfn, order);
    },
  };
}

export interface Machine {
  device: HeapDevice;
  buddy: BuddyAllocator;
  pages: PkramPageSource;
  pkram: Pkram;
}

export function machine(npages = 2048, generation = 1, id = 1): Machine {
  const device = new HeapDevice(npages * PAGE_SIZE);
  const buddy = BuddyAllocator.fromFreeRanges(npages, [{ base: 1, count: npages - 1 }]);
  const pages = pageSource(buddy);
  return {
    device,
    buddy,
    pages,
    pkram: new Pkram({ device, pages, generation, bootId: bootId(id) }),
  };
}

/** A successor's early boot: the preserved ranges reserved, a fresh allocator around them. */
export function reserve(
  device: HeapDevice,
  superPfn: number,
  expect: PkramExpect,
): { buddy: BuddyAllocator; pages: PkramPageSource } {
  const npages = device.pages;
  const ranges = Pkram.preservedRanges(device, superPfn, 4096, expect);
  const free: PageRange[] = [];
  let at = 1;
  for (const r of ranges) {
    const start = r.phys / PAGE_SIZE;
    if (start > at) free.push({ base: at, count: start - at });
    at = Math.max(at, start + r.size / PAGE_SIZE);
  }
  if (at < npages) free.push({ base: at, count: npages - at });
  const buddy = BuddyAllocator.fromFreeRanges(npages, free);
  return { buddy, pages: pageSource(buddy) };
}

/** Boots a successor on the same device: reserves the preserved ranges, then attaches. */
export function successor(
  device: HeapDevice,
  superPfn: number,
  expect: PkramExpect,
  id = 99,
): Machine {
  const { buddy, pages } = reserve(device, superPfn, expect);
  const pkram = Pkram.attach({ device, pages, superPfn, expect, bootId: bootId(id) });
  return { device, buddy, pages, pkram };
}

/** Allocates a folio and fills it with bytes derived from seed. */
export function makeFolio(m: Machine, order: number, seed: number): Folio {
  const pfn = m.buddy.allocPages(order);
  if (pfn === null) throw new Error('test machine is out of memory');
  fillPattern(m.device.bytes(pfn * PAGE_SIZE, PAGE_SIZE * 2 ** order), seed);
  return { pfn, order };
}

export function fillPattern(bytes: Uint8Array, seed: number): void {
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < bytes.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
}

export function pattern(length: number, seed: number): Uint8Array {
  const b = new Uint8Array(length);
  fillPattern(b, seed);
  return b;
}

export function folioBytes(m: { device: HeapDevice }, f: Folio): Uint8Array {
  return m.device.bytes(f.pfn * PAGE_SIZE, PAGE_SIZE * 2 ** f.order);
}

/** Reads the rest of an object's byte stream in chunks of `chunk` bytes. */
export function readAll(obj: { read(buf: Uint8Array): number }, chunk: number): Uint8Array {
  const parts: Uint8Array[] = [];
  for (;;) {
    const buf = new Uint8Array(chunk);
    const n = obj.read(buf);
    if (n === 0) break;
    parts.push(buf.subarray(0, n));
  }
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
