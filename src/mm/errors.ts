import { LivekexecError } from '../base/errors.js';

/**
 * The one error type of the page allocator. A misuse of the buddy allocator is
 * always one of these, raised before any state changes, never silent
 * corruption of the free lists.
 */
export type PageAllocErrorCode =
  /** A pfn or a page range lies outside the allocator's pages. */
  | 'EFAULT'
  /**
   * A malformed argument: an order outside 0..MAX_PAGE_ORDER or not the one the
   * block was allocated with, a pfn not aligned to its order or inside a block
   * but not its head page, a negative count, a bad size.
   */
  | 'EINVAL'
  /** No allocated (or preserved) block there: never allocated, or already freed (a double free). */
  | 'ENOENT'
  /** The page is reserved: it never belonged to the allocator's free memory. */
  | 'EPERM'
  /** The pages are in use: preserved for the next kernel, or not free when they must be. */
  | 'EBUSY';

export class PageAllocError extends LivekexecError<PageAllocErrorCode> {
  override name = 'PageAllocError';

  /**
   * @param code the cause.
   * @param detail says what was attempted and names the pfn.
   * @param pfn the page at fault, when there is one.
   */
  constructor(
    code: PageAllocErrorCode,
    detail: string,
    readonly pfn?: number,
    options?: { cause?: unknown },
  ) {
    super(code, detail, options);
  }
}
