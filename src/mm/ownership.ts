/**
 * One owner per preserved page. KHO, PKRAM, the pools and reserve_mem (which
 * preserves through KHO) each keep their own record of what they hold; before
 * one of them takes pages for a successor it asks the others through this,
 * so a page is never handed to two owners after a kexec.
 */
export interface PageHolder {
  /** Who holds the page, for messages: "KHO", "PKRAM", "pmpool default pool". */
  readonly holder: string;
  /** The first page of the asked range that it holds. */
  readonly pfn: number;
}

export interface PageOwnership {
  /** Another owner of any page of [pfn, pfn + count), or null when none holds one. */
  otherHolder(pfn: number, count: number): PageHolder | null;
  /**
   * A number that changes whenever another owner may have taken pages, so a
   * claim checked earlier needs no second look while it stays the same.
   */
  changes(): number;
}
