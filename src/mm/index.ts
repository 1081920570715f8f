/**
 * The page allocator: a buddy allocator over page frame numbers, and folios
 * (naturally aligned blocks of 2^order pages).
 * @module livekexec/mm
 */
export type { PfnRange } from '../base/range.js';
export {
  BuddyAllocator,
  type BuddyOptions,
  type BuddyStats,
  type FreeBlock,
  MAX_PAGE_ORDER,
  type PageState,
} from './buddy.js';
export { PageAllocError, type PageAllocErrorCode } from './errors.js';
export { type Folio, folioPages, folioPhys, folioSize } from './folio.js';
export type { PageHolder, PageOwnership } from './ownership.js';
export { ScratchPages, type ScratchPagesStats } from './scratch-pages.js';
