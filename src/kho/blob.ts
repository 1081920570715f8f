import { hex } from '../base/hex.js';
import { FdtError } from '../fdt/errors.js';
import type { Fdt } from '../fdt/read.js';
import { FdtWriter } from '../fdt/write.js';
import { PAGE_SIZE } from '../memory/device.js';
import {
  KHO_BLOB_COMPATIBLE_MAX,
  KHO_BLOB_COMPATIBLES_MAX,
  KHO_BLOB_PROP_CSUM,
  KHO_BLOB_PROP_DATA,
  KHO_BLOB_PROP_SIZE,
} from './abi.js';
import { KhoError } from './errors.js';

/** What a raw subtree's descriptor says (layout in abi.ts). */
export interface BlobDescriptor {
  /** The blob's versions, newest first. */
  readonly compatibles: readonly string[];
  readonly base: number;
  readonly size: number;
  readonly csum: number;
}

/** A raw subtree as the successor gets it. */
export interface KhoBlob {
  /** Every version the predecessor wrote, newest first. */
  readonly compatibles: readonly string[];
  /** The first of them the caller accepts (compatibles[0] when it named none). */
  readonly compatible: string;
  /** A copy of the blob's bytes, its checksum verified. */
  readonly bytes: Uint8Array;
}

/**
 * A raw subtree's compatibles as given to addSubtree: 1..16 strings of
 * 1..127 printable ASCII bytes (what FDT tools print as a string list).
 * @throws KhoError EINVAL.
 */
export function checkBlobCompatibles(given: string | readonly string[]): string[] {
  const list = typeof given === 'string' ? [given] : [...given];
  if (list.length === 0 || list.length > KHO_BLOB_COMPATIBLES_MAX) {
    throw new KhoError(
      'EINVAL',
      `a raw subtree needs 1..${KHO_BLOB_COMPATIBLES_MAX} compatible strings, got ${list.length}`,
    );
  }
  for (const c of list) {
    if (
      typeof c !== 'string' ||
      c.length === 0 ||
      c.length > KHO_BLOB_COMPATIBLE_MAX ||
      !/^[\x21-\x7e]+$/.test(c)
    ) {
      throw new KhoError(
        'EINVAL',
        `compatible ${JSON.stringify(c)} is not 1..${KHO_BLOB_COMPATIBLE_MAX} printable ASCII characters`,
      );
    }
  }
  return list;
}

/** The descriptor FDT of a raw subtree. */
export function buildBlobDescriptor(d: BlobDescriptor): Uint8Array {
  const w = new FdtWriter();
  w.finishReservations();
  w.beginNode('');
  w.propertyStringList('compatible', d.compatibles);
  w.propertyU64(KHO_BLOB_PROP_DATA, d.base);
  w.propertyU64(KHO_BLOB_PROP_SIZE, d.size);
  w.propertyU32(KHO_BLOB_PROP_CSUM, d.csum);
  w.endNode();
  return w.finish();
}

/** Whether a subtree's FDT is a raw subtree's descriptor. */
export function isBlobDescriptor(fdt: Fdt): boolean {
  return fdt.hasProp(0, KHO_BLOB_PROP_DATA);
}

/**
 * Reads a descriptor from the predecessor (validated FDT, untrusted values):
 * the blob must be whole pages' worth inside the device, starting on a page.
 * Whether a preserved block holds it is the caller's check.
 * @throws KhoError EFAULT naming the subtree.
 */
export function parseBlobDescriptor(fdt: Fdt, name: string, deviceSize: number): BlobDescriptor {
  const bad = (why: string) => new KhoError('EFAULT', `raw subtree '${name}': ${why}`);
  let compatibles: string[];
  let phys: number | bigint;
  let size: number | bigint;
  let csum: number;
  try {
    compatibles = fdt.hasProp(0, 'compatible') ? fdt.getStringList(0, 'compatible') : [];
    phys = fdt.getU64(0, KHO_BLOB_PROP_DATA);
    size = fdt.getU64(0, KHO_BLOB_PROP_SIZE);
    csum = fdt.getU32(0, KHO_BLOB_PROP_CSUM);
  } catch (err) {
    if (err instanceof FdtError) throw bad(err.message);
    throw err;
  }
  try {
    checkBlobCompatibles(compatibles);
  } catch (err) {
    throw bad((err as Error).message);
  }
  if (typeof phys === 'bigint' || phys <= 0 || phys % PAGE_SIZE !== 0 || phys >= deviceSize) {
    throw bad(`preserved-data ${hex(phys)} is not a page inside the device`);
  }
  if (typeof size === 'bigint' || size <= 0 || size > deviceSize - phys) {
    throw bad(`blob-size ${size} does not fit the device from ${hex(phys)}`);
  }
  return { compatibles, base: phys, size, csum };
}
