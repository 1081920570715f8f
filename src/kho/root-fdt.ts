import { messageOf } from '../base/errors.js';
import { hex } from '../base/hex.js';
import { getSafeU64, setU64 } from '../base/u64.js';
import { FdtError } from '../fdt/errors.js';
import { Fdt } from '../fdt/read.js';
import { FdtWriter } from '../fdt/write.js';
import { PAGE_SIZE } from '../memory/device.js';
import {
  KHO_FDT_COMPATIBLE,
  KHO_FDT_PROP_PRESERVED_MEMORY_CSUM,
  KHO_FDT_PROP_PRESERVED_MEMORY_MAP,
  KHO_FDT_PROP_PRESERVED_MEMORY_PAGES,
  KHO_FDT_PROP_SUBTREE_FDT,
} from './abi.js';
import { KhoError } from './errors.js';

/** What the root handover FDT says. */
export interface KhoRoot {
  /** Physical address of the preserved-memory radix tree (0 when nothing is preserved). */
  readonly memoryMapPhys: number;
  /** The tree's pages, ascending, and their crc32c (tree-csum.ts). */
  readonly memoryMapPages: readonly number[];
  readonly memoryMapCsum: number;
  /** Subtree name -> physical address of its FDT. */
  readonly subtrees: ReadonlyMap<string, number>;
}

/**
 * The root handover FDT, a real DTB (`dtc -I dtb -O dts` prints it): the
 * compatible, the radix tree's address and one child per subtree.
 * @throws KhoError EINVAL for a subtree name that is not a valid node name.
 */
export function buildRootFdt(root: KhoRoot): Uint8Array {
  const w = new FdtWriter();
  w.finishReservations();
  w.beginNode('');
  w.propertyString('compatible', KHO_FDT_COMPATIBLE);
  w.propertyU64(KHO_FDT_PROP_PRESERVED_MEMORY_MAP, root.memoryMapPhys);
  const pages = new Uint8Array(root.memoryMapPages.length * 8);
  const pv = new DataView(pages.buffer);
  root.memoryMapPages.forEach((p, i) => {
    setU64(pv, i * 8, p, false);
  });
  w.property(KHO_FDT_PROP_PRESERVED_MEMORY_PAGES, pages);
  w.propertyU32(KHO_FDT_PROP_PRESERVED_MEMORY_CSUM, root.memoryMapCsum);
  for (const [name, phys] of [...root.subtrees].sort(([a], [b]) => (a < b ? -1 : 1))) {
    try {
      w.beginNode(name);
    } catch (err) {
      throw new KhoError('EINVAL', `subtree name '${name}': ${messageOf(err)}`);
    }
    w.propertyU64(KHO_FDT_PROP_SUBTREE_FDT, phys);
    w.endNode();
  }
  w.endNode();
  return w.finish();
}

/**
 * Reads an incoming root FDT. The blob is untrusted: a bad FDT is EFAULT, a
 * root of another ABI is EPROTO ("disabling KHO revival"), an address that is
 * not a page inside the device is EFAULT.
 */
export function parseRootFdt(
  bytes: Uint8Array,
  deviceSize: number,
  options: { crcChecked?: boolean } = {},
): KhoRoot {
  let fdt: Fdt;
  try {
    fdt = Fdt.from(bytes);
    // A boot block's crc32c covering the FDT already matched: the reads below
    // are bounds-checked as libfdt's and throw FdtError, so only a blob from
    // elsewhere (a status read, a check) needs the full walk first.
    if (options.crcChecked !== true) fdt.checkFull();
  } catch (err) {
    throw new KhoError('EFAULT', `handover FDT is not valid: ${messageOf(err)}`);
  }
  try {
    const compatible = fdt.hasProp(0, 'compatible') ? fdt.getStringList(0, 'compatible') : [];
    if (!compatible.includes(KHO_FDT_COMPATIBLE)) {
      throw new KhoError(
        'EPROTO',
        `handover ABI ${JSON.stringify(compatible)} is not ${KHO_FDT_COMPATIBLE}: disabling KHO revival`,
      );
    }
    const memoryMapPhys = pageAddress(
      fdt.getU64(0, KHO_FDT_PROP_PRESERVED_MEMORY_MAP),
      deviceSize,
      true,
    );
    const memoryMapCsum = fdt.getU32(0, KHO_FDT_PROP_PRESERVED_MEMORY_CSUM);
    const raw = fdt.getProp(0, KHO_FDT_PROP_PRESERVED_MEMORY_PAGES);
    if (raw.length % 8 !== 0)
      throw new KhoError('EFAULT', `${KHO_FDT_PROP_PRESERVED_MEMORY_PAGES} is not a list of u64`);
    const pv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const memoryMapPages: number[] = [];
    for (let i = 0; i < raw.length / 8; i++) {
      const p = pageAddress(getSafeU64(pv, i * 8, false) ?? -1n, deviceSize, false);
      if (i > 0 && p <= memoryMapPages[i - 1])
        throw new KhoError('EFAULT', 'tree page list is not ascending');
      memoryMapPages.push(p);
    }
    if ((memoryMapPhys === 0) !== (memoryMapPages.length === 0)) {
      throw new KhoError('EFAULT', 'tree page list does not match the tree root');
    }
    const subtrees = new Map<string, number>();
    for (const off of fdt.subnodes(0)) {
      const name = fdt.getName(off);
      if (subtrees.has(name)) throw new KhoError('EFAULT', `subtree '${name}' appears twice`);
      subtrees.set(name, pageAddress(fdt.getU64(off, KHO_FDT_PROP_SUBTREE_FDT), deviceSize, false));
    }
    return { memoryMapPhys, memoryMapPages, memoryMapCsum, subtrees };
  } catch (err) {
    if (err instanceof KhoError) throw err;
    if (err instanceof FdtError) throw new KhoError('EFAULT', `handover FDT: ${err.message}`);
    throw err;
  }
}

function pageAddress(v: number | bigint, deviceSize: number, zeroOk: boolean): number {
  if (
    typeof v === 'bigint' ||
    v < 0 ||
    (v === 0 && !zeroOk) ||
    v % PAGE_SIZE !== 0 ||
    v >= deviceSize
  ) {
    throw new KhoError('EFAULT', `handover address ${hex(v)} is not a page inside the device`);
  }
  return v;
}
