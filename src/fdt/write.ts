/**
 * Sequential writer: builds a blob front to back, as libfdt's fdt_sw.c does.
 *
 * The writer is a state machine, and a call in the wrong phase is BADSTATE:
 *
 *   'rsvmap'  addReservation()*, then finishReservations()
 *   'struct'  beginNode() / property*() / endNode(), then finish()
 *   'done'    nothing; finish() has returned the blob
 *
 * As in libfdt, beginNode() before finishReservations() is BADSTATE (libfdt
 * requires fdt_finish_reservemap() before fdt_begin_node()). Beyond libfdt,
 * which writes whatever it is told and lets fdt_check_full() find out, this
 * writer refuses calls that could only make a broken tree, also as BADSTATE:
 * a property outside every node, endNode() with no open node, a second root,
 * and finish() with open nodes or without a root. Like libfdt (and unlike
 * dtc), it accepts a property after a subnode of the same node.
 *
 * The output has libfdt's sequential-write layout byte for byte: header,
 * reservation map at 48, structure block, strings block. Property names are
 * de-duplicated, a name may reuse the tail of another ("phandle" in
 * "linux,phandle"), and the strings come out in reverse order of first use,
 * because libfdt grows its string table downward from the end of the buffer.
 */

import { show } from '../base/errors.js';
import {
  checkBytes,
  checkCells,
  checkNodeName,
  checkPropName,
  checkRawName,
  checkStrings,
  checkU32,
  checkU64,
  hasNul,
  setBeU64,
  utf8Length,
  writeName,
  writeUtf8,
} from './_edit-internal.js';
import { FdtError } from './errors.js';
import {
  alignUp,
  FDT_BEGIN_NODE,
  FDT_END,
  FDT_END_NODE,
  FDT_MAGIC,
  FDT_MAX_DEPTH,
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

/**
 * Where the reservation map starts: libfdt's sw hdrsize, the 40-byte header
 * rounded up to the 16-byte size of a reservation entry (dtc uses 40).
 */
const RSVMAP_OFFSET = 48;
/** The largest totalsize the header check (libfdt's fdt_check_header) accepts. */
const MAX_TOTALSIZE = 0x7fffffff;
/** Initial buffer size of a growable writer; it doubles as needed. */
const DEFAULT_CAPACITY = 4096;

export type FdtWriterPhase = 'rsvmap' | 'struct' | 'done';

export interface FdtWriterOptions {
  /**
   * Bytes of the blob buffer. Growable writers start with this much and
   * double as needed (default 4096); fixed writers never exceed it.
   */
  capacity?: number;
  /**
   * Like libfdt's fdt_create(buf, capacity): the whole blob, while being
   * built, must fit in `capacity` bytes, or the call that would overflow
   * throws NOSPACE and changes nothing. Default false (the buffer grows).
   */
  fixed?: boolean;
  /** Header field boot_cpuid_phys (default 0). */
  bootCpuidPhys?: number;
  /**
   * Share property names in the strings block, with tail reuse (default
   * true). false is libfdt's FDT_CREATE_FLAG_NO_NAME_DEDUP: every property
   * appends its name.
   */
  dedupeNames?: boolean;
  /**
   * Check node and property names as dtc would accept them (default true):
   * node `name[@unit]` with a name of 1..31 of [0-9a-zA-Z,._+-], property
   * names 1..31 of [0-9a-zA-Z,._+?#-], an empty name for the root only.
   * libfdt checks nothing; with false only what a blob cannot hold is
   * refused: a NUL, or a character above 0xff (names are byte strings, one
   * character per byte, as the reader returns them).
   */
  checkNames?: boolean;
}

/**
 * Builds one blob. See the file comment for the phases.
 *
 * @example
 *   const w = new FdtWriter();
 *   w.finishReservations();
 *   w.beginNode('');
 *   w.propertyString('compatible', 'livekexec,kho-v1');
 *   w.endNode();
 *   const blob = w.finish();
 */
export class FdtWriter {
  #phase: FdtWriterPhase = 'rsvmap';
  /** Header, reservation map and structure block; `#pos` is the end of what is written. */
  #buf: Uint8Array;
  #view: DataView;
  #pos = RSVMAP_OFFSET;
  #structOffset = 0;
  /** The strings block grows downward from the end of `#strtab`, as in libfdt. */
  #strtab: Uint8Array;
  #strSize = 0;
  /**
   * Every suffix of every name in the strings block, mapped to where the
   * newest string ending with it starts, as a distance from the top of the
   * block. The newest string sits lowest, and libfdt takes the lowest match.
   */
  #names = new Map<string, number>();
  /** Offsets of nameoff fields, which hold distances from the top until finish(). */
  #nameoffAt = new Uint32Array(256);
  #nprops = 0;
  #depth = 0;
  #rootDone = false;
  /** 0 when growable, else the fixed capacity. */
  readonly #limit: number;
  readonly #bootCpuidPhys: number;
  readonly #dedupe: boolean;
  readonly #checkNames: boolean;

  /**
   * @throws FdtError BADVALUE for options that are not an object, a capacity or boot_cpuid_phys out of range,
   *   NOSPACE when a fixed capacity cannot hold the header (as fdt_create).
   */
  constructor(options: FdtWriterOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new FdtError('BADVALUE', `options must be an object, got ${show(options)}`);
    }
    const capacity = options.capacity ?? DEFAULT_CAPACITY;
    if (!Number.isSafeInteger(capacity) || capacity < 0 || capacity > MAX_TOTALSIZE) {
      throw new FdtError('BADVALUE', `capacity ${capacity} is not in 0..2^31-1`);
    }
    const fixed = options.fixed ?? false;
    if (fixed && capacity < RSVMAP_OFFSET) {
      throw new FdtError(
        'NOSPACE',
        `capacity ${capacity} cannot hold a ${RSVMAP_OFFSET}-byte header`,
      );
    }
    const cpu = options.bootCpuidPhys ?? 0;
    checkU32(cpu, 'boot_cpuid_phys');
    this.#limit = fixed ? capacity : 0;
    this.#bootCpuidPhys = cpu;
    this.#dedupe = options.dedupeNames ?? true;
    this.#checkNames = options.checkNames ?? true;
    this.#buf = new Uint8Array(Math.max(capacity, RSVMAP_OFFSET));
    this.#view = new DataView(this.#buf.buffer);
    this.#strtab = new Uint8Array(256);
  }

  /** The current phase. */
  get phase(): FdtWriterPhase {
    return this.#phase;
  }

  /** Nodes begun and not yet ended. */
  get depth(): number {
    return this.#depth;
  }

  /**
   * Adds a reservation map entry (fdt_add_reservemap_entry).
   * @throws FdtError BADSTATE after finishReservations(); BADVALUE for a value
   *   out of range or a size of 0 (which would end the map early); NOSPACE
   *   when a fixed buffer is full.
   */
  addReservation(address: number | bigint, size: number | bigint): void {
    this.#expect('rsvmap', 'addReservation');
    checkU64(address, 'reservation address');
    checkU64(size, 'reservation size');
    // biome-ignore lint/suspicious/noDoubleEquals: 0 == 0n is the point
    if (size == 0) {
      throw new FdtError('BADVALUE', 'a reservation of size 0 would end the map early');
    }
    this.#writeReservation(address, size);
  }

  /**
   * Ends the reservation map and enters the structure phase (fdt_finish_reservemap).
   * @throws FdtError BADSTATE outside the 'rsvmap' phase; NOSPACE when a fixed buffer is full.
   */
  finishReservations(): void {
    this.#expect('rsvmap', 'finishReservations');
    this.#writeReservation(0, 0);
    this.#structOffset = this.#pos;
    this.#phase = 'struct';
  }

  /**
   * Opens a node; the first is the root, named ''.
   * @throws FdtError BADSTATE outside the 'struct' phase or after the root has
   *   ended; BADVALUE for a bad name; BADSTRUCTURE beyond FDT_MAX_DEPTH levels;
   *   NOSPACE when a fixed buffer is full.
   */
  beginNode(name: string): void {
    this.#expect('struct', 'beginNode');
    if (this.#depth === 0 && this.#rootDone) {
      throw new FdtError('BADSTATE', 'beginNode: the root node has already ended');
    }
    if (this.#depth >= FDT_MAX_DEPTH) {
      throw new FdtError('BADSTRUCTURE', `beginNode: nesting deeper than ${FDT_MAX_DEPTH}`);
    }
    if (this.#checkNames) checkNodeName(name, this.#depth === 0);
    else checkRawName(name);
    const nameLen = name.length;
    const end = this.#pos + 4 + alignUp(nameLen + 1, 4);
    this.#reserve(end, 0);
    const buf = this.#buf;
    const pos = this.#pos;
    this.#view.setUint32(pos, FDT_BEGIN_NODE);
    writeName(buf, pos + 4, name);
    for (let i = pos + 4 + nameLen; i < end; i++) buf[i] = 0;
    this.#pos = end;
    this.#depth++;
  }

  /**
   * Closes the innermost open node.
   * @throws FdtError BADSTATE outside the 'struct' phase or with no open node;
   *   NOSPACE when a fixed buffer is full.
   */
  endNode(): void {
    this.#expect('struct', 'endNode');
    if (this.#depth === 0) throw new FdtError('BADSTATE', 'endNode: no open node');
    const end = this.#pos + 4;
    this.#reserve(end, 0);
    this.#view.setUint32(this.#pos, FDT_END_NODE);
    this.#pos = end;
    if (--this.#depth === 0) this.#rootDone = true;
  }

  /**
   * Adds a property with raw bytes as its value (fdt_property).
   * @throws FdtError BADSTATE outside the 'struct' phase or outside every node;
   *   BADVALUE for a bad name; NOSPACE when a fixed buffer is full.
   */
  property(name: string, value: Uint8Array): void {
    checkBytes(value, name);
    const off = this.#propHeader(name, value.length);
    this.#buf.set(value, off);
  }

  /** An empty property, such as `ranges;`. @throws FdtError as `property`. */
  propertyEmpty(name: string): void {
    this.#propHeader(name, 0);
  }

  /**
   * One big-endian u32 cell (fdt_property_u32).
   * @throws FdtError BADVALUE when `value` is not a u32; otherwise as `property`.
   */
  propertyU32(name: string, value: number): void {
    checkU32(value, name);
    const off = this.#propHeader(name, 4);
    this.#view.setUint32(off, value);
  }

  /**
   * One big-endian u64 (fdt_property_u64).
   * @throws FdtError BADVALUE when `value` is not a u64; otherwise as `property`.
   */
  propertyU64(name: string, value: number | bigint): void {
    checkU64(value, name);
    const off = this.#propHeader(name, 8);
    setBeU64(this.#view, off, value);
  }

  /**
   * Big-endian u32 cells, as `<a b c>` in DTS.
   * @throws FdtError BADVALUE when a cell is not a u32; otherwise as `property`.
   */
  propertyCells(name: string, cells: ArrayLike<number>): void {
    checkCells(cells, name);
    const n = cells.length;
    for (let i = 0; i < n; i++) checkU32(cells[i]!, name);
    let off = this.#propHeader(name, n * 4);
    for (let i = 0; i < n; i++, off += 4) this.#view.setUint32(off, cells[i]!);
  }

  /**
   * A NUL-terminated UTF-8 string (fdt_property_string).
   * @throws FdtError BADVALUE when the string holds a NUL; otherwise as `property`.
   */
  propertyString(name: string, value: string): void {
    checkStrings([value], name);
    if (hasNul(value)) throw new FdtError('BADVALUE', `${name}: string value holds a NUL`);
    const len = utf8Length(value);
    const off = this.#propHeader(name, len + 1);
    writeUtf8(this.#buf, off, value, len);
    this.#buf[off + len] = 0;
  }

  /**
   * Several NUL-terminated strings, as `"a", "b"` in DTS.
   * @throws FdtError BADVALUE when a string holds a NUL; otherwise as `property`.
   */
  propertyStringList(name: string, values: readonly string[]): void {
    checkStrings(values, name);
    let total = 0;
    for (const s of values) {
      if (hasNul(s)) throw new FdtError('BADVALUE', `${name}: string value holds a NUL`);
      total += utf8Length(s) + 1;
    }
    let off = this.#propHeader(name, total);
    const buf = this.#buf;
    for (const s of values) {
      const len = utf8Length(s);
      writeUtf8(buf, off, s, len);
      buf[off + len] = 0;
      off += len + 1;
    }
  }

  /**
   * Ends the structure block and returns the blob (fdt_finish): version 17,
   * last_comp_version 16, exactly totalsize bytes. The writer is then 'done'.
   * @throws FdtError BADSTATE outside the 'struct' phase, with open nodes or
   *   without a root; NOSPACE when a fixed buffer is full.
   */
  finish(): Uint8Array {
    this.#expect('struct', 'finish');
    if (this.#depth !== 0) {
      throw new FdtError('BADSTATE', `finish: ${this.#depth} node(s) still open`);
    }
    if (!this.#rootDone) throw new FdtError('BADSTATE', 'finish: no root node');
    const structEnd = this.#pos + 4;
    this.#reserve(structEnd, 0);
    this.#view.setUint32(this.#pos, FDT_END);
    this.#pos = structEnd;
    const strSize = this.#strSize;
    const total = structEnd + strSize;
    this.#ensure(total);
    const buf = this.#buf;
    const view = this.#view;
    buf.set(this.#strtab.subarray(this.#strtab.length - strSize), structEnd);
    // Distances from the top of the strings block become offsets from its start.
    const at = this.#nameoffAt;
    for (let i = 0; i < this.#nprops; i++) {
      const p = at[i]!;
      view.setUint32(p, strSize - view.getUint32(p));
    }
    view.setUint32(HDR_MAGIC, FDT_MAGIC);
    view.setUint32(HDR_TOTALSIZE, total);
    view.setUint32(HDR_OFF_DT_STRUCT, this.#structOffset);
    view.setUint32(HDR_OFF_DT_STRINGS, structEnd);
    view.setUint32(HDR_OFF_MEM_RSVMAP, RSVMAP_OFFSET);
    view.setUint32(HDR_VERSION, FDT_WRITE_VERSION);
    view.setUint32(HDR_LAST_COMP_VERSION, FDT_WRITE_LAST_COMP_VERSION);
    view.setUint32(HDR_BOOT_CPUID_PHYS, this.#bootCpuidPhys);
    view.setUint32(HDR_SIZE_DT_STRINGS, strSize);
    view.setUint32(HDR_SIZE_DT_STRUCT, structEnd - this.#structOffset);
    this.#phase = 'done';
    const out = buf.length === total ? buf : buf.slice(0, total);
    // Let go of the working buffers; nothing may be written any more.
    this.#buf = new Uint8Array(0);
    this.#view = new DataView(this.#buf.buffer);
    this.#strtab = this.#buf;
    this.#names.clear();
    return out;
  }

  #expect(phase: FdtWriterPhase, call: string): void {
    if (this.#phase !== phase) {
      throw new FdtError('BADSTATE', `${call} is not allowed in the '${this.#phase}' phase`);
    }
  }

  /**
   * Makes room for the structure part to reach `end` and the strings block
   * to grow by `strBytes`, or throws NOSPACE without changing anything.
   */
  #reserve(end: number, strBytes: number): void {
    const total = end + this.#strSize + strBytes;
    if (this.#limit !== 0 ? total > this.#limit : total > MAX_TOTALSIZE) {
      throw new FdtError(
        'NOSPACE',
        `the blob would need ${total} bytes, more than ${this.#limit || MAX_TOTALSIZE}`,
      );
    }
    if (end > this.#buf.length) this.#ensure(end);
  }

  /** Grows the buffer, keeping what is written, so that it reaches `end`. */
  #ensure(end: number): void {
    if (end > this.#buf.length) {
      const grown = new Uint8Array(Math.min(Math.max(end, this.#buf.length * 2), MAX_TOTALSIZE));
      grown.set(this.#buf.subarray(0, this.#pos));
      this.#buf = grown;
      this.#view = new DataView(grown.buffer);
    }
  }

  #writeReservation(address: number | bigint, size: number | bigint): void {
    const end = this.#pos + FDT_RESERVE_ENTRY_SIZE;
    this.#reserve(end, 0);
    setBeU64(this.#view, this.#pos, address);
    setBeU64(this.#view, this.#pos + 8, size);
    this.#pos = end;
  }

  /**
   * Writes a property's tag, length and name, zeroes the padding after a
   * value of `len` bytes, and returns where the value goes.
   */
  #propHeader(name: string, len: number): number {
    this.#expect('struct', 'property');
    if (this.#depth === 0) throw new FdtError('BADSTATE', `property "${name}" outside every node`);
    // Names are byte strings (one char per byte), so a tail is a byte suffix.
    let dist = this.#dedupe ? this.#names.get(name) : undefined;
    // A name found is a tail of one already checked, and so is valid itself.
    if (dist === undefined) {
      if (this.#checkNames) checkPropName(name);
      else checkRawName(name);
    }
    const strBytes = dist === undefined ? name.length + 1 : 0;
    const pos = this.#pos;
    const valueEnd = pos + 12 + len;
    const end = pos + 12 + alignUp(len, 4);
    this.#reserve(end, strBytes);
    if (dist === undefined) dist = this.#addString(name);
    const view = this.#view;
    view.setUint32(pos, FDT_PROP);
    view.setUint32(pos + 4, len);
    view.setUint32(pos + 8, dist);
    if (this.#nprops === this.#nameoffAt.length) {
      const grown = new Uint32Array(this.#nprops * 2);
      grown.set(this.#nameoffAt);
      this.#nameoffAt = grown;
    }
    this.#nameoffAt[this.#nprops++] = pos + 8;
    // At most 3 bytes: a loop is cheaper than fill()'s call.
    for (let i = valueEnd; i < end; i++) this.#buf[i] = 0;
    this.#pos = end;
    return pos + 12;
  }

  /** Puts a name below the strings block; returns its distance from the top. */
  #addString(name: string): number {
    const nameLen = name.length;
    const size = this.#strSize + nameLen + 1;
    let tab = this.#strtab;
    if (size > tab.length) {
      const grown = new Uint8Array(Math.max(size, tab.length * 2));
      grown.set(tab.subarray(tab.length - this.#strSize), grown.length - this.#strSize);
      this.#strtab = tab = grown;
    }
    const start = tab.length - size;
    writeName(tab, start, name);
    tab[start + nameLen] = 0;
    this.#strSize = size;
    if (this.#dedupe) {
      for (let i = 0; i < nameLen; i++) this.#names.set(name.slice(i), size - i);
    }
    return size;
  }
}
