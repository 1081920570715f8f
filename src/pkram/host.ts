/**
 * What a Pkram offers the nodes and objects it makes (as SessionOwner in
 * luo/session.ts): a private contract, so nothing of it is public API.
 */

import type { WriterPages } from './writer.js';

export interface PkramHost extends WriterPages {
  /** @throws PkramError ENODEV when PKRAM is off. */
  check(): void;
  /** Whether [pfn, pfn + n) touches an avoided range (then a folio is copied). */
  collides(pfn: number, n: number): boolean;
  /** Whether [pfn, pfn + n) touches memory that is never preserved (KHO scratch). */
  isTransient(pfn: number, n: number): boolean;
  /** Whether the block is in the preserved-page table. */
  isPreserved(pfn: number, order: number): boolean;
  /** Whether the preserved-page table is empty. */
  preservesNothing(): boolean;
  /** Whether a block of the run is in the preserved-page table. */
  anyPreserved(pfn: number, blocks: number, order: number): boolean;
  /** Whether another owner of preserved pages (KHO, a pool) holds a page of [pfn, pfn + n). */
  heldByOther(pfn: number, n: number): boolean;
  /** @throws PkramError EEXIST naming the owner when another one holds a page of the block. */
  checkNotHeld(pfn: number, order: number): void;
}
