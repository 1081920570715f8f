import { PAGE_SIZE } from '../memory/device.js';

/**
 * A folio: a naturally aligned block of 2^order pages, as the buddy
 * allocator hands it out. Plain data, so it can be recorded in handovers.
 */
export interface Folio {
  /** Page frame number of the head page. */
  readonly pfn: number;
  readonly order: number;
}

/** Physical address of the folio's first byte. */
export function folioPhys(folio: Folio): number {
  return folio.pfn * PAGE_SIZE;
}

/** Size in bytes. */
export function folioSize(folio: Folio): number {
  return 2 ** folio.order * PAGE_SIZE;
}

/** Number of pages. */
export function folioPages(folio: Folio): number {
  return 2 ** folio.order;
}
