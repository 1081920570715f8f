import { show } from '../base/errors.js';
/**
 * Read-write editing of a blob in its buffer, as libfdt's fdt_rw.c does it.
 *
 * The buffer is libfdt's: its first totalsize bytes are the blob, and the
 * slack between the end of the strings block and totalsize is the room edits
 * grow into. `FdtEditor.openInto()` copies a blob into a larger buffer
 * (fdt_open_into: totalsize becomes the buffer size); `pack()` gives the
 * slack back (fdt_pack). An edit that does not fit throws NOSPACE and
 * changes nothing; open into a larger buffer and try again.
 *
 * Edits need version 17 and the blocks in libfdt's order (reservation map,
 * structure, strings, with the map at 40 or later): BADVERSION or BADLAYOUT
 * otherwise, as fdt_rw_probe_. openInto() re-lays out any readable blob.
 *
 * Where things go, as libfdt: a new property is inserted first in its node, a
 * new subnode after its parent's properties and before the existing
 * subnodes, a new name at the end of the strings block unless the block
 * already holds it (or a string ending with it). Deleting never shrinks the
 * strings block. Padding bytes are left as libfdt's memmove leaves them (not
 * zeroed), so the same calls give the same bytes.
 *
 * Offsets: nodes and properties are named by structure-block offsets, as in
 * the reader (`editor.fdt`). Every edit moves what follows its splice point,
 * so offsets taken before an edit are stale after it (as in libfdt): look
 * nodes up again, or pass paths, which are resolved at each call.
 *
 * Beyond libfdt: names the editor writes are checked as dtc would accept them
 * (option `checkNames`, default true; BADVALUE), a reservation of size 0 and
 * the deletion of the root are refused, and values are checked for range.
 */

import {
  checkBytes,
  checkNodeName,
  checkPropName,
  checkRawName,
  checkU32,
  checkU64,
  encodeCells,
  encodeStringList,
  encodeU64,
  setBeU64,
} from './_edit-internal.js';
import {
  checkNodeOffset,
  checkPropOffset,
  errorFor,
  nameBytes,
  nextNode,
  nextProp,
  nextTag,
  StructView,
  stringAt,
} from './_walk.js';
import { FDT_ERR, FdtError } from './errors.js';
import {
  alignUp,
  FDT_BEGIN_NODE,
  FDT_END,
  FDT_END_NODE,
  FDT_MAGIC,
  FDT_NOP,
  FDT_PROP,
  FDT_RESERVE_ENTRY_SIZE,
  FDT_WRITE_LAST_COMP_VERSION,
  FDT_WRITE_VERSION,
  HDR_BOOT_CPUID_PHYS,
  HDR_LAST_COMP_VERSION,
  HDR_MAGIC,
  HDR_OFF_DT_STRINGS,
  HDR_OFF_DT_STRUCT,
  HDR_OFF_MEM_RSVMAP,
  HDR_SIZE_DT_STRINGS,
  HDR_SIZE_DT_STRUCT,
  HDR_TOTALSIZE,
  HDR_VERSION,
} from './format.js';
import { checkHeader } from './header.js';
import { Fdt } from './read.js';

/** libfdt's FDT_ALIGN(sizeof(struct fdt_header), 8): where pack puts the map. */
const PACKED_RSVMAP_OFFSET = 40;
const INT_MAX = 0x7fffffff;

export interface FdtEditorOptions {
  /**
   * Check names the editor writes as dtc would accept them (default true):
   * node `name[@unit]`, property names of 1..31 allowed characters. With
   * false, as libfdt, only a NUL in a name is refused.
   */
  checkNames?: boolean;
}

/** A node: its structure-block offset, or a path resolved at the call. */
export type FdtNodeRef = number | string;

/** Never equal to a stored name (which has no NUL): what a name above 0xff looks up. */
const NO_MATCH = Uint8Array.of(0);

/** A name's bytes for a lookup (names are byte strings, one char per byte). */
function lookupBytes(name: string): Uint8Array {
  return nameBytes(name) ?? NO_MATCH;
}

function fail(r: number, detail?: string): never {
  throw errorFor(r, detail);
}

/** libfdt's fdt_num_mem_rsv: entries before the terminator (an entry of size 0). */
function countReservations(view: DataView, total: number): number {
  const base = view.getUint32(HDR_OFF_MEM_RSVMAP);
  for (let i = 0, off = base; off + FDT_RESERVE_ENTRY_SIZE <= total; i++) {
    if (view.getUint32(off + 8) === 0 && view.getUint32(off + 12) === 0) return i;
    off += FDT_RESERVE_ENTRY_SIZE;
  }
  throw new FdtError('TRUNCATED', 'memory reservation map has no terminator inside totalsize');
}

/** libfdt's fdt_blocks_misordered_. */
function misordered(view: DataView, rsvSize: number, structSize: number): boolean {
  const rsv = view.getUint32(HDR_OFF_MEM_RSVMAP);
  const struct = view.getUint32(HDR_OFF_DT_STRUCT);
  const strings = view.getUint32(HDR_OFF_DT_STRINGS);
  return (
    rsv < PACKED_RSVMAP_OFFSET ||
    struct < rsv + rsvSize ||
    strings < struct + structSize ||
    view.getUint32(HDR_TOTALSIZE) < strings + view.getUint32(HDR_SIZE_DT_STRINGS)
  );
}

function viewOf(u8: Uint8Array): DataView {
  return new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
}

/**
 * libfdt's fdt_open_into into a new buffer of `size` bytes.
 * @throws FdtError as FdtEditor.openInto
 */
function openIntoBuffer(blob: Uint8Array, size: number): Uint8Array {
  if (!Number.isSafeInteger(size) || size < 0 || size > INT_MAX) {
    throw new FdtError('BADVALUE', `buffer size ${show(size)} is not in 0..2^31-1`);
  }
  checkHeader(blob);
  const view = viewOf(blob);
  const total = view.getUint32(HDR_TOTALSIZE);
  const version = view.getUint32(HDR_VERSION);
  const rsvSize = (countReservations(view, total) + 1) * FDT_RESERVE_ENTRY_SIZE;
  let structSize: number;
  if (version >= 17) {
    structSize = view.getUint32(HDR_SIZE_DT_STRUCT);
  } else if (version === 16) {
    // A v16 header has no size_dt_struct: walk to the END tag.
    const s = new StructView(blob);
    let off = 0;
    while (nextTag(s, off) !== FDT_END) off = s.next;
    if (s.next < 0) fail(s.next, 'walking a v16 structure block to its END');
    structSize = s.next;
  } else {
    throw new FdtError(
      'BADVERSION',
      `version ${version}: libfdt opens only v16 and v17 for writing`,
    );
  }
  const out = new Uint8Array(size);
  const outView = viewOf(out);
  if (!misordered(view, rsvSize, structSize)) {
    if (total > size)
      throw new FdtError('NOSPACE', `a ${total}-byte blob in a ${size}-byte buffer`);
    out.set(blob.subarray(0, total));
    outView.setUint32(HDR_VERSION, FDT_WRITE_VERSION);
    outView.setUint32(HDR_SIZE_DT_STRUCT, structSize);
    outView.setUint32(HDR_TOTALSIZE, size);
    return out;
  }
  const stringsSize = view.getUint32(HDR_SIZE_DT_STRINGS);
  const need = PACKED_RSVMAP_OFFSET + rsvSize + structSize + stringsSize;
  if (size < need) throw new FdtError('NOSPACE', `re-laying out needs ${need} bytes, not ${size}`);
  packBlocks(blob, out, rsvSize, structSize, stringsSize);
  outView.setUint32(HDR_MAGIC, FDT_MAGIC);
  outView.setUint32(HDR_TOTALSIZE, size);
  outView.setUint32(HDR_VERSION, FDT_WRITE_VERSION);
  outView.setUint32(HDR_LAST_COMP_VERSION, FDT_WRITE_LAST_COMP_VERSION);
  outView.setUint32(HDR_BOOT_CPUID_PHYS, view.getUint32(HDR_BOOT_CPUID_PHYS));
  return out;
}

/**
 * libfdt's fdt_packblocks_: the map at 40, then the structure and strings
 * blocks with no gaps. `from` and `to` may be the same buffer (blocks then
 * only move down, in order).
 */
function packBlocks(
  from: Uint8Array,
  to: Uint8Array,
  rsvSize: number,
  structSize: number,
  stringsSize: number,
): void {
  const src = viewOf(from);
  const dst = viewOf(to);
  const rsvOff = PACKED_RSVMAP_OFFSET;
  const structOff = rsvOff + rsvSize;
  const stringsOff = structOff + structSize;
  const oldRsv = src.getUint32(HDR_OFF_MEM_RSVMAP);
  const oldStruct = src.getUint32(HDR_OFF_DT_STRUCT);
  const oldStrings = src.getUint32(HDR_OFF_DT_STRINGS);
  to.set(from.subarray(oldRsv, oldRsv + rsvSize), rsvOff);
  dst.setUint32(HDR_OFF_MEM_RSVMAP, rsvOff);
  to.set(from.subarray(oldStruct, oldStruct + structSize), structOff);
  dst.setUint32(HDR_OFF_DT_STRUCT, structOff);
  dst.setUint32(HDR_SIZE_DT_STRUCT, structSize);
  to.set(from.subarray(oldStrings, oldStrings + stringsSize), stringsOff);
  dst.setUint32(HDR_OFF_DT_STRINGS, stringsOff);
  dst.setUint32(HDR_SIZE_DT_STRINGS, stringsSize);
}

/**
 * Edits one blob in its buffer. Create with `FdtEditor.open(bytes)` (edit the
 * caller's bytes in place) or `FdtEditor.openInto(blob, size)` (a copy with
 * room to grow).
 *
 * @example
 *   const ed = FdtEditor.openInto(blob, blob.length + 4096);
 *   const kho = ed.addSubnode('/', 'kho');
 *   ed.setPropString(kho, 'compatible', 'kho-v1');
 *   ed.pack();
 *   const out = ed.blob;
 */
export class FdtEditor {
  #buf: Uint8Array;
  #view: DataView;
  #fdt: Fdt | undefined;
  readonly #checkNames: boolean;

  private constructor(buf: Uint8Array, options: FdtEditorOptions) {
    this.#buf = buf;
    this.#view = viewOf(buf);
    this.#checkNames = options.checkNames ?? true;
    this.#probe();
  }

  /**
   * Edits `bytes` in place: the room to grow is what lies between the end of
   * the strings block and totalsize (none in a blob fresh from dtc).
   * @throws FdtError TRUNCATED, ALIGNMENT, BADMAGIC, BADVERSION from the header
   *   check; BADVERSION below v17; BADLAYOUT blocks not in libfdt's rw order
   */
  static open(bytes: Uint8Array, options: FdtEditorOptions = {}): FdtEditor {
    return new FdtEditor(bytes, options);
  }

  /**
   * Copies `blob` into a new buffer of `size` bytes (fdt_open_into): v16 or
   * v17 in, v17 out, blocks re-laid out in rw order when they are not, and
   * totalsize set to `size`.
   * @throws FdtError BADVALUE size not in 0..2^31-1; TRUNCATED, ALIGNMENT,
   *   BADMAGIC, BADVERSION from the header check; BADVERSION below v16;
   *   TRUNCATED no reservation terminator; BADSTRUCTURE walking a v16 block;
   *   NOSPACE `size` too small
   */
  static openInto(blob: Uint8Array, size: number, options: FdtEditorOptions = {}): FdtEditor {
    return new FdtEditor(openIntoBuffer(blob, size), options);
  }

  /**
   * Moves this blob into a new buffer of `size` bytes (fdt_open_into on
   * itself); the bytes edited so far are no longer touched.
   * @throws FdtError as `FdtEditor.openInto`
   */
  openInto(size: number): void {
    this.#buf = openIntoBuffer(this.blob, size);
    this.#view = viewOf(this.#buf);
    this.#fdt = undefined;
  }

  /** The blob: a view of the first totalsize bytes of the buffer. */
  get blob(): Uint8Array {
    return this.#buf.subarray(0, this.#view.getUint32(HDR_TOTALSIZE));
  }

  /** The whole buffer, slack included. */
  get buffer(): Uint8Array {
    return this.#buf;
  }

  /** Bytes of slack left for edits: totalsize minus the end of the strings block. */
  get freeSpace(): number {
    return this.#total() - this.#dataEnd();
  }

  /** A reader over the current blob; replaced after every edit. */
  get fdt(): Fdt {
    if (this.#fdt === undefined) this.#fdt = Fdt.from(this.#buf);
    return this.#fdt;
  }

  // ---- properties ----

  /**
   * Sets a property, replacing its value in place or, if absent, inserting
   * it first in the node (fdt_setprop).
   * @throws FdtError BADOFFSET not a node; NOTFOUND no such path; BADVALUE a
   *   bad new name; NOSPACE no room; BADVERSION, BADLAYOUT as `open`
   */
  setProp(node: FdtNodeRef, name: string, value: Uint8Array): void {
    this.#probe();
    checkBytes(value, name);
    const off = this.#node(node);
    const data = this.#resizeOrAdd(off, name, value.length);
    this.#buf.set(value, data);
  }

  /** An empty property. @throws FdtError as setProp */
  setPropEmpty(node: FdtNodeRef, name: string): void {
    this.setProp(node, name, new Uint8Array(0));
  }

  /** One u32 cell. @throws FdtError BADVALUE not a u32; otherwise as setProp */
  setPropU32(node: FdtNodeRef, name: string, value: number): void {
    checkU32(value, name);
    this.setProp(node, name, encodeCells([value]));
  }

  /** One u64. @throws FdtError BADVALUE not a u64; otherwise as setProp */
  setPropU64(node: FdtNodeRef, name: string, value: number | bigint): void {
    this.setProp(node, name, encodeU64(value));
  }

  /** u32 cells. @throws FdtError BADVALUE a cell not a u32; otherwise as setProp */
  setPropCells(node: FdtNodeRef, name: string, cells: ArrayLike<number>): void {
    this.setProp(node, name, encodeCells(cells));
  }

  /** A NUL-terminated string. @throws FdtError BADVALUE it holds a NUL; otherwise as setProp */
  setPropString(node: FdtNodeRef, name: string, value: string): void {
    this.setProp(node, name, encodeStringList([value]));
  }

  /** NUL-terminated strings. @throws FdtError BADVALUE one holds a NUL; otherwise as setProp */
  setPropStringList(node: FdtNodeRef, name: string, values: readonly string[]): void {
    this.setProp(node, name, encodeStringList(values));
  }

  /**
   * Appends bytes to a property's value, creating it (first in the node) if
   * absent (fdt_appendprop).
   * @throws FdtError as setProp
   */
  appendProp(node: FdtNodeRef, name: string, value: Uint8Array): void {
    this.#probe();
    checkBytes(value, name);
    const off = this.#node(node);
    const s = this.#struct();
    const prop = this.#findProp(s, off, lookupBytes(name));
    let data: number;
    if (prop >= 0) {
      const oldLen = s.u32(prop + 4);
      const newLen = oldLen + value.length;
      const at = s.base + prop + 12;
      this.#spliceStruct(at, alignUp(oldLen, 4), alignUp(newLen, 4));
      this.#view.setUint32(s.base + prop + 4, newLen);
      data = at + oldLen;
    } else if (prop === -FDT_ERR.NOTFOUND) {
      data = this.#addProp(off, name, value.length);
    } else {
      fail(prop);
    }
    this.#buf.set(value, data);
  }

  /** Appends one u32 cell. @throws FdtError BADVALUE not a u32; otherwise as appendProp */
  appendPropU32(node: FdtNodeRef, name: string, value: number): void {
    checkU32(value, name);
    this.appendProp(node, name, encodeCells([value]));
  }

  /** Appends one u64. @throws FdtError BADVALUE not a u64; otherwise as appendProp */
  appendPropU64(node: FdtNodeRef, name: string, value: number | bigint): void {
    this.appendProp(node, name, encodeU64(value));
  }

  /** Appends u32 cells. @throws FdtError BADVALUE a cell not a u32; otherwise as appendProp */
  appendPropCells(node: FdtNodeRef, name: string, cells: ArrayLike<number>): void {
    this.appendProp(node, name, encodeCells(cells));
  }

  /** Appends a string to a string list. @throws FdtError BADVALUE a NUL; otherwise as appendProp */
  appendPropString(node: FdtNodeRef, name: string, value: string): void {
    this.appendProp(node, name, encodeStringList([value]));
  }

  /**
   * Deletes a property (fdt_delprop); its name stays in the strings block.
   * @throws FdtError NOTFOUND no such property or path; BADOFFSET not a node;
   *   BADVERSION, BADLAYOUT as `open`
   */
  delProp(node: FdtNodeRef, name: string): void {
    this.#probe();
    const off = this.#node(node);
    const s = this.#struct();
    const prop = this.#findProp(s, off, lookupBytes(name));
    if (prop < 0) fail(prop, `no property ${JSON.stringify(name)}`);
    this.#spliceStruct(s.base + prop, 12 + alignUp(s.u32(prop + 4), 4), 0);
  }

  // ---- nodes ----

  /**
   * Adds an empty subnode after the parent's properties, before its existing
   * subnodes (fdt_add_subnode), and returns its offset.
   * @throws FdtError EXISTS a child of that name (`foo` also matches
   *   `foo@1`, as libfdt); BADOFFSET not a node; NOTFOUND no such path;
   *   BADVALUE a bad name; NOSPACE no room; BADVERSION, BADLAYOUT as `open`
   */
  addSubnode(parent: FdtNodeRef, name: string): number {
    this.#probe();
    const off = this.#node(parent);
    if (this.#checkNames) checkNodeName(name, false);
    else checkRawName(name);
    const bytes = nameBytes(name)!;
    let found = -1;
    try {
      found = this.fdt.subnodeOffset(off, name);
    } catch (e) {
      if (!(e instanceof FdtError) || e.code !== 'NOTFOUND') throw e;
    }
    if (found >= 0) throw new FdtError('EXISTS', `node ${JSON.stringify(name)} already exists`);
    const s = this.#struct();
    if (nextTag(s, off) !== FDT_BEGIN_NODE) throw new FdtError('INTERNAL', `no node at ${off}`);
    let at = s.next;
    let next = at;
    let tag: number;
    do {
      at = next;
      tag = nextTag(s, at);
      next = s.next;
    } while (tag === FDT_PROP || tag === FDT_NOP);
    const nameSpace = alignUp(bytes.length + 1, 4);
    const nodeLen = 4 + nameSpace + 4;
    const abs = s.base + at;
    this.#spliceStruct(abs, 0, nodeLen);
    this.#view.setUint32(abs, FDT_BEGIN_NODE);
    this.#buf.fill(0, abs + 4, abs + 4 + nameSpace);
    this.#buf.set(bytes, abs + 4);
    this.#view.setUint32(abs + nodeLen - 4, FDT_END_NODE);
    return at;
  }

  /**
   * Deletes a node with all its properties and subnodes (fdt_del_node).
   * @throws FdtError BADOFFSET not a node, or the root (libfdt would leave
   *   no tree); NOTFOUND no such path; BADSTRUCTURE, TRUNCATED from the walk;
   *   BADVERSION, BADLAYOUT as `open`
   */
  delNode(node: FdtNodeRef): void {
    this.#probe();
    const off = this.#node(node);
    if (off === 0) throw new FdtError('BADOFFSET', 'the root node cannot be deleted');
    const s = this.#struct();
    const depth = new Int32Array(1);
    let end = off;
    while (end >= 0 && depth[0]! >= 0) end = nextNode(s, end, depth);
    if (end < 0) fail(end, `finding the end of the node at ${off}`);
    this.#spliceStruct(s.base + off, end - off, 0);
  }

  /**
   * Renames a node in place (fdt_set_name). Like libfdt, it does not look
   * for a sibling of the same name.
   * @throws FdtError BADOFFSET not a node; NOTFOUND no such path; BADVALUE a
   *   bad name; NOSPACE no room; BADVERSION, BADLAYOUT as `open`
   */
  setName(node: FdtNodeRef, name: string): void {
    this.#probe();
    const off = this.#node(node);
    if (this.#checkNames) checkNodeName(name, off === 0);
    else checkRawName(name);
    const s = this.#struct();
    if (checkNodeOffset(s, off) < 0) fail(-FDT_ERR.BADOFFSET, `no node at ${off}`);
    const at = s.base + off + 4;
    const oldLen = this.#buf.indexOf(0, at) - at;
    const bytes = nameBytes(name)!;
    this.#spliceStruct(at, alignUp(oldLen + 1, 4), alignUp(bytes.length + 1, 4));
    this.#buf.set(bytes, at);
    this.#buf[at + bytes.length] = 0;
  }

  // ---- reservation map ----

  /**
   * Appends a reservation map entry (fdt_add_mem_rsv).
   * @throws FdtError BADVALUE a value out of range or a size of 0 (which
   *   would end the map early); TRUNCATED no terminator; NOSPACE no room;
   *   BADVERSION, BADLAYOUT as `open`
   */
  addReservation(address: number | bigint, size: number | bigint): void {
    this.#probe();
    checkU64(address, 'reservation address');
    checkU64(size, 'reservation size');
    // biome-ignore lint/suspicious/noDoubleEquals: 0 == 0n is the point
    if (size == 0)
      throw new FdtError('BADVALUE', 'a reservation of size 0 would end the map early');
    const n = countReservations(this.#view, this.#total());
    const at = this.#view.getUint32(HDR_OFF_MEM_RSVMAP) + n * FDT_RESERVE_ENTRY_SIZE;
    this.#spliceRsv(at, 0, 1);
    setBeU64(this.#view, at, address);
    setBeU64(this.#view, at + 8, size);
  }

  /**
   * Deletes reservation map entry `index` (fdt_del_mem_rsv).
   * @throws FdtError NOTFOUND no such entry; TRUNCATED no terminator;
   *   BADVERSION, BADLAYOUT as `open`
   */
  delReservation(index: number): void {
    this.#probe();
    const n = countReservations(this.#view, this.#total());
    if (!Number.isInteger(index) || index < 0 || index >= n) {
      throw new FdtError('NOTFOUND', `no reservation ${show(index)} (there are ${n})`);
    }
    this.#spliceRsv(
      this.#view.getUint32(HDR_OFF_MEM_RSVMAP) + index * FDT_RESERVE_ENTRY_SIZE,
      1,
      0,
    );
  }

  // ---- layout ----

  /**
   * Removes the slack (fdt_pack): the map moves to 40, the blocks close up,
   * and totalsize shrinks to the end of the strings block.
   * @throws FdtError TRUNCATED no reservation terminator; BADVERSION, BADLAYOUT as `open`
   */
  pack(): void {
    this.#probe();
    const v = this.#view;
    const rsvSize = (countReservations(v, this.#total()) + 1) * FDT_RESERVE_ENTRY_SIZE;
    packBlocks(
      this.#buf,
      this.#buf,
      rsvSize,
      v.getUint32(HDR_SIZE_DT_STRUCT),
      v.getUint32(HDR_SIZE_DT_STRINGS),
    );
    v.setUint32(HDR_TOTALSIZE, this.#dataEnd());
    this.#fdt = undefined;
  }

  // ---- internals ----

  #total(): number {
    return this.#view.getUint32(HDR_TOTALSIZE);
  }

  /** libfdt's fdt_data_size_: the end of the strings block. */
  #dataEnd(): number {
    return this.#view.getUint32(HDR_OFF_DT_STRINGS) + this.#view.getUint32(HDR_SIZE_DT_STRINGS);
  }

  /** libfdt's fdt_rw_probe_, on top of the full header check. */
  #probe(): void {
    checkHeader(this.#buf);
    const v = this.#view;
    const version = v.getUint32(HDR_VERSION);
    if (version < 17) {
      throw new FdtError('BADVERSION', `version ${version}: edits need 17 (use openInto)`);
    }
    if (misordered(v, FDT_RESERVE_ENTRY_SIZE, v.getUint32(HDR_SIZE_DT_STRUCT))) {
      throw new FdtError(
        'BADLAYOUT',
        'blocks are not in the order reservation map, structure, strings (use openInto)',
      );
    }
    if (version > 17) {
      v.setUint32(HDR_VERSION, 17);
      this.#fdt = undefined;
    }
  }

  #struct(): StructView {
    return new StructView(this.#buf);
  }

  #node(node: FdtNodeRef): number {
    if (typeof node === 'string') return this.fdt.pathOffset(node);
    if (!Number.isInteger(node)) throw new FdtError('BADOFFSET', `no node at ${show(node)}`);
    return node;
  }

  /**
   * libfdt's fdt_get_property_namelen_: the offset of the node's property
   * `name`, or a negative errno (NOTFOUND, BADOFFSET, walk errors).
   */
  #findProp(s: StructView, node: number, name: Uint8Array): number {
    let next = checkNodeOffset(s, node);
    if (next < 0) return next;
    let off = nextProp(s, next);
    const u8 = s.u8;
    while (off >= 0) {
      const start = stringAt(s, s.u32(off + 8));
      if (start >= 0 && s.next - start === name.length) {
        let i = 0;
        while (i < name.length && u8[start + i] === name[i]) i++;
        if (i === name.length) return off;
      }
      next = checkPropOffset(s, off);
      if (next < 0) return next;
      off = nextProp(s, next);
    }
    return off;
  }

  /** fdt_setprop_placeholder: resize the value or add the property; returns where the value goes. */
  #resizeOrAdd(node: number, name: string, len: number): number {
    const s = this.#struct();
    const prop = this.#findProp(s, node, lookupBytes(name));
    if (prop >= 0) {
      const at = s.base + prop + 12;
      this.#spliceStruct(at, alignUp(s.u32(prop + 4), 4), alignUp(len, 4));
      this.#view.setUint32(s.base + prop + 4, len);
      return at;
    }
    if (prop !== -FDT_ERR.NOTFOUND) fail(prop, `node at ${node}`);
    return this.#addProp(node, name, len);
  }

  /** libfdt's fdt_add_property_: a new property first in the node; returns where the value goes. */
  #addProp(node: number, name: string, len: number): number {
    if (this.#checkNames) checkPropName(name);
    else checkRawName(name);
    const s = this.#struct();
    const next = checkNodeOffset(s, node);
    if (next < 0) fail(next, `no node at ${node}`);
    const bytes = nameBytes(name)!;
    const [nameoff, added] = this.#findAddString(bytes);
    const at = s.base + next;
    try {
      this.#spliceStruct(at, 0, 12 + alignUp(len, 4));
    } catch (e) {
      // Take back the name we just added (libfdt's fdt_del_last_string_).
      if (added) {
        const v = this.#view;
        v.setUint32(HDR_SIZE_DT_STRINGS, v.getUint32(HDR_SIZE_DT_STRINGS) - bytes.length - 1);
      }
      throw e;
    }
    const v = this.#view;
    v.setUint32(at, FDT_PROP);
    v.setUint32(at + 4, len);
    v.setUint32(at + 8, nameoff);
    return at + 12;
  }

  /**
   * libfdt's fdt_find_add_string_: the first place in the strings block
   * where `name` and its NUL occur (a whole string or the tail of one), else
   * `name` appended. Returns the offset and whether it was appended.
   */
  #findAddString(name: Uint8Array): [number, boolean] {
    const v = this.#view;
    const base = v.getUint32(HDR_OFF_DT_STRINGS);
    const size = v.getUint32(HDR_SIZE_DT_STRINGS);
    const needle = new Uint8Array(name.length + 1);
    needle.set(name);
    const table = Buffer.from(this.#buf.buffer, this.#buf.byteOffset + base, size);
    const found = table.indexOf(needle);
    if (found >= 0) return [found, false];
    const at = base + size;
    this.#splice(at, 0, needle.length);
    v.setUint32(HDR_SIZE_DT_STRINGS, size + needle.length);
    this.#buf.set(needle, at);
    return [size, true];
  }

  /**
   * libfdt's fdt_splice_: replace `oldLen` bytes at absolute `at` by `newLen`
   * bytes, moving everything up to the end of the strings block.
   * @throws FdtError BADOFFSET outside the data; NOSPACE beyond totalsize
   */
  #splice(at: number, oldLen: number, newLen: number): void {
    const end = this.#dataEnd();
    if (at < 0 || at + oldLen > end) {
      throw new FdtError(
        'BADOFFSET',
        `splice of ${oldLen} bytes at ${at} past the data end ${end}`,
      );
    }
    const newEnd = end - oldLen + newLen;
    if (newEnd > this.#total()) {
      throw new FdtError(
        'NOSPACE',
        `the edit needs ${newEnd - this.#total()} more bytes than totalsize ${this.#total()} (use openInto)`,
      );
    }
    this.#buf.copyWithin(at + newLen, at + oldLen, end);
    this.#fdt = undefined;
  }

  /** libfdt's fdt_splice_struct_. */
  #spliceStruct(at: number, oldLen: number, newLen: number): void {
    this.#splice(at, oldLen, newLen);
    const v = this.#view;
    const delta = newLen - oldLen;
    v.setUint32(HDR_SIZE_DT_STRUCT, v.getUint32(HDR_SIZE_DT_STRUCT) + delta);
    v.setUint32(HDR_OFF_DT_STRINGS, v.getUint32(HDR_OFF_DT_STRINGS) + delta);
  }

  /** libfdt's fdt_splice_mem_rsv_: in whole entries. */
  #spliceRsv(at: number, oldN: number, newN: number): void {
    this.#splice(at, oldN * FDT_RESERVE_ENTRY_SIZE, newN * FDT_RESERVE_ENTRY_SIZE);
    const v = this.#view;
    const delta = (newN - oldN) * FDT_RESERVE_ENTRY_SIZE;
    v.setUint32(HDR_OFF_DT_STRUCT, v.getUint32(HDR_OFF_DT_STRUCT) + delta);
    v.setUint32(HDR_OFF_DT_STRINGS, v.getUint32(HDR_OFF_DT_STRINGS) + delta);
  }
}
