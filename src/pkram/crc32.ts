/**
 * zlib's CRC-32, the check PKRAM's pages, region list and table carry
 * (seal.ts says why not crc32c), loaded at its first use: node:zlib brings
 * node:stream with it, ~1.9 ms of every import of livekexec, which a
 * successor with nothing in PKRAM never needs.
 */

import { createRequire } from 'node:module';

type Crc32 = (data: Uint8Array, value?: number) => number;

let zlibCrc32: Crc32 | null = null;

/** CRC-32 of `data`, continuing from `value` (zlib.crc32's contract). */
export function crc32(data: Uint8Array, value = 0): number {
  zlibCrc32 ??= (createRequire(import.meta.url)('node:zlib') as typeof import('node:zlib')).crc32;
  return zlibCrc32(data, value);
}
