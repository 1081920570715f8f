/** The page allocator: a buddy allocator over page frame numbers. */
export {
  BuddyAllocator,
  type BuddyOptions,
  type BuddyStats,
  type FreeBlock,
  MAX_PAGE_ORDER,
  MAX_PAGES,
  NR_PAGE_ORDERS,
  type PageRange,
  type PageState,
} from './buddy.js';
export { PageAllocError, type PageAllocErrorCode } from './errors.js';
export type { PageHolder, PageOwnership } from './ownership.js';
export { ScratchPages, type ScratchPagesStats } from './scratch-pages.js';
