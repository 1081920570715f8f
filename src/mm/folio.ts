import { show } from '../base/errors.js';
import { PAGE_SIZE } from '../memory/device.js';
import { PageAllocError } from './errors.js';

/**
 * A folio: a naturally aligned block of 2^order pages, as the buddy
 * allocator hands it out. Plain data, so it can be recorded in handovers.
 */
export interface Folio {
  /** Page frame number of the head page. */
  readonly pfn: number;
  readonly order: number;
}

/**
 * Checks that `folio` is one: an object whose pfn is a non-negative safe
 * integer aligned to its order, an integer in 0..52.
 * @throws PageAllocError EINVAL naming what is wrong.
 */
export function checkFolio(folio: unknown): asserts folio is Folio {
  if (typeof folio !== 'object' || folio === null) {
    throw new PageAllocError('EINVAL', `a folio is an object { pfn, order }, got ${show(folio)}`);
  }
  const { pfn, order } = folio as Folio;
  if (!Number.isInteger(order) || order < 0 || order > 52) {
    throw new PageAllocError('EINVAL', `folio order ${show(order)} is not an integer in 0..52`);
  }
  if (!Number.isSafeInteger(pfn) || pfn < 0 || pfn % 2 ** order !== 0) {
    throw new PageAllocError('EINVAL', `folio pfn ${show(pfn)} is not aligned to order ${order}`);
  }
}

/** Physical address of the folio's first byte. @throws PageAllocError EINVAL for a bad folio. */
export function folioPhys(folio: Folio): number {
  checkFolio(folio);
  return folio.pfn * PAGE_SIZE;
}

/** Size in bytes. @throws PageAllocError EINVAL for a bad folio. */
export function folioSize(folio: Folio): number {
  checkFolio(folio);
  return 2 ** folio.order * PAGE_SIZE;
}

/** Number of pages. @throws PageAllocError EINVAL for a bad folio. */
export function folioPages(folio: Folio): number {
  checkFolio(folio);
  return 2 ** folio.order;
}
