/**
 * The one error type of the page allocator. A misuse of the buddy allocator is
 * always one of these, raised before any state changes, never silent
 * corruption of the free lists.
 */
export type PageAllocErrorCode =
  /** A pfn or a page range lies outside the allocator's pages. */
  | 'EFAULT'
  /** An order outside 0..MAX_PAGE_ORDER, or not the order the block was allocated with. */
  | 'EBADORDER'
  /** A malformed argument: a pfn not aligned to its order, a negative count, a bad size. */
  | 'EINVAL'
  /** The block is already free. */
  | 'EDOUBLEFREE'
  /** The pfn is inside a block but is not its head page. */
  | 'ETAILPAGE'
  /** The page is reserved: it never belonged to the allocator's free memory. */
  | 'ERESERVED'
  /** The operation needs an allocated (or preserved) block and the page is not one. */
  | 'ENOTALLOCATED'
  /** The pages are in use: preserved for the next kernel, or not free when they must be. */
  | 'EBUSY';

export class PageAllocError extends Error {
  override readonly name = 'PageAllocError';

  /**
   * @param code the cause.
   * @param message says what was attempted and names the pfn.
   * @param pfn the page at fault, when there is one.
   */
  constructor(
    readonly code: PageAllocErrorCode,
    message: string,
    readonly pfn?: number,
  ) {
    super(`${code}: ${message}`);
  }
}
