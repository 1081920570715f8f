import type { Kernel } from '../../src/kernel/kernel.js';
import type { Folio } from '../../src/mm/folio.js';

/** Allocates order-0 pages until the allocator is empty; returns their pfns. */
export function allocateAll(kernel: Kernel): number[] {
  const pfns: number[] = [];
  for (let order = 10; order >= 0; order--) {
    for (let f: Folio | null = kernel.allocPages(order); f; f = kernel.allocPages(order)) {
      for (let i = 0; i < 2 ** order; i++) pfns.push(f.pfn + i);
    }
  }
  return pfns;
}

export const MiB = 1024 * 1024;
