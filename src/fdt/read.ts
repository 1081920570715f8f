import { show } from '../base/errors.js';
/**
 * Read-only access to a Flattened Device Tree blob, with libfdt's semantics:
 * node and property offsets are offsets into the structure block (the root is
 * 0), and every function raises the FdtError code libfdt would return.
 * Zero-copy: property values are views into the caller's bytes, which must
 * not change while an Fdt reads them (header fields and property names are
 * taken once); the in-place editor has its own view.
 */
import {
  checkNodeOffset,
  checkPropOffset,
  E_BADOFFSET,
  E_NOTFOUND,
  errorFor,
  nameBytes,
  nameText,
  nextNode,
  nextProp,
  nextTag,
  StructView,
  stringAt,
  valueText,
} from './_walk.js';
import { FDT_ERR, FdtError } from './errors.js';
import {
  FDT_BEGIN_NODE,
  FDT_DEFAULT_ADDRESS_CELLS,
  FDT_DEFAULT_SIZE_CELLS,
  FDT_END,
  FDT_END_NODE,
  FDT_MAX_DEPTH,
  FDT_MAX_NCELLS,
  FDT_MAX_PHANDLE,
  FDT_NOP,
  FDT_PROP,
  FDT_RESERVE_ENTRY_SIZE,
  HDR_BOOT_CPUID_PHYS,
  HDR_LAST_COMP_VERSION,
  HDR_MAGIC,
  HDR_OFF_MEM_RSVMAP,
  HDR_SIZE_DT_STRINGS,
  HDR_SIZE_DT_STRUCT,
} from './format.js';
import { checkHeader } from './header.js';
import {
  decodeCells,
  decodeReg,
  decodeString,
  decodeStringList,
  decodeU32,
  decodeU64,
  exactInt,
  type FdtInt,
  type RegEntry,
} from './values.js';

/** One memory reservation map entry. */
export interface Reservation {
  address: FdtInt;
  size: FdtInt;
}

/** A property seen by offset. `value` is a view into the blob. */
export interface FdtProperty {
  name: string;
  value: Uint8Array;
}

/** One node met by `walk()`; the root has depth 0 and the name ''. */
export interface WalkEntry {
  offset: number;
  depth: number;
  name: string;
}

/** Scratch depth for the public nextNode (nothing re-enters it). */
const DEPTH = new Int32Array(1);

/** `r` if it is an offset; else throw its error. The detail is built only on failure. */
function orThrow(r: number, what?: string, at?: number | string): number {
  if (r < 0)
    throw errorFor(
      r,
      what === undefined
        ? undefined
        : at === undefined
          ? what
          : `${what} ${typeof at === 'string' ? at : show(at)}`,
    );
  return r;
}

/** Read-only view of a blob. Create with `Fdt.from(bytes)`. */
export class Fdt {
  /** The blob's bytes (the caller's, not a copy). */
  readonly bytes: Uint8Array;
  /** @internal The shared walker over this blob. */
  readonly s: StructView;
  private readonly dv: DataView;
  /** Property names by name offset: a tree repeats a few names many times. */
  private names: Map<number, string> | undefined;
  // The last node and property whose tag was checked, so the usual sequence
  // (next node, its name, its properties) checks each tag once.
  private nodeOff = -1;
  private nodeNext = 0;
  private nodeNameEnd = 0;
  private propOff = -1;
  private propNext = 0;

  /** checkNodeOffset with a one-entry memo; also leaves `s.nameEnd` set. */
  private checkNode(offset: number): number {
    if (offset === this.nodeOff) {
      this.s.nameEnd = this.nodeNameEnd;
      return this.nodeNext;
    }
    const r = checkNodeOffset(this.s, offset);
    if (r >= 0) this.noteNode(offset);
    return r;
  }

  /** Remember `offset` as a node whose tag nextTag has just walked. */
  private noteNode(offset: number): void {
    this.nodeOff = offset;
    this.nodeNext = this.s.next;
    this.nodeNameEnd = this.s.nameEnd;
  }

  /** checkPropOffset with a one-entry memo. */
  private checkProp(offset: number): number {
    if (offset === this.propOff) return this.propNext;
    const r = checkPropOffset(this.s, offset);
    if (r >= 0) {
      this.propOff = offset;
      this.propNext = r;
    }
    return r;
  }

  /** nextProp, remembering the property it finds (its tag was just walked). */
  private nextPropFrom(offset: number): number {
    const r = nextProp(this.s, offset);
    if (r >= 0) {
      this.propOff = r;
      this.propNext = this.s.next;
    }
    return r;
  }

  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.s = new StructView(bytes);
    this.dv = this.s.dv;
  }

  /**
   * Wrap `bytes` (zero-copy) after the header check of libfdt's fdt_check_full.
   * The structure block is only walked lazily; call `checkFull()` to validate it all.
   * @throws FdtError TRUNCATED, ALIGNMENT, BADMAGIC, BADVERSION (see checkHeader)
   */
  static from(bytes: Uint8Array): Fdt {
    checkHeader(bytes);
    return new Fdt(bytes);
  }

  get magic(): number {
    return this.dv.getUint32(HDR_MAGIC);
  }
  get totalSize(): number {
    return this.s.totalSize;
  }
  get offDtStruct(): number {
    return this.s.base;
  }
  get offDtStrings(): number {
    return this.s.stringsBase;
  }
  get offMemRsvmap(): number {
    return this.dv.getUint32(HDR_OFF_MEM_RSVMAP);
  }
  get version(): number {
    return this.s.version;
  }
  get lastCompVersion(): number {
    return this.dv.getUint32(HDR_LAST_COMP_VERSION);
  }
  get bootCpuidPhys(): number {
    return this.dv.getUint32(HDR_BOOT_CPUID_PHYS);
  }
  /** As stored; a v2 header has none (libfdt reads the bytes there anyway). */
  get sizeDtStrings(): number {
    return this.dv.getUint32(HDR_SIZE_DT_STRINGS);
  }
  /** As stored; 0 before v17, where the header has no such field. */
  get sizeDtStruct(): number {
    return this.s.version >= 17 ? this.dv.getUint32(HDR_SIZE_DT_STRUCT) : 0;
  }

  /**
   * libfdt's fdt_check_full: the reservation map ends inside totalsize, every
   * tag walks, nesting is balanced, a single unnamed root, every property name
   * resolves. Duplicate names and properties after subnodes are accepted (as libfdt).
   * @throws FdtError TRUNCATED no reservation terminator, a tag cut by the block end
   * @throws FdtError BADSTRUCTURE unknown tag, unterminated name, bad nesting,
   *   named or second root, anything after the root but NOP/END
   * @throws FdtError BADOFFSET a property name offset outside the strings block
   */
  checkFull(): void {
    this.reservationCount();
    const s = this.s;
    let offset = 0;
    let depth = 0;
    let expectEnd = false;
    for (;;) {
      const tag = nextTag(s, offset);
      const next = s.next;
      if (next < 0) throw errorFor(next, `bad tag at structure offset ${offset}`);
      if (expectEnd && tag !== FDT_END) {
        throw new FdtError('BADSTRUCTURE', `tag ${tag} after the root node at ${offset}`);
      }
      switch (tag) {
        case FDT_NOP:
          break;
        case FDT_END:
          if (depth !== 0) throw new FdtError('BADSTRUCTURE', `END inside ${depth} open nodes`);
          return;
        case FDT_BEGIN_NODE:
          depth++;
          if (depth === 1 && this.getName(offset) !== '') {
            throw new FdtError('BADSTRUCTURE', 'the root node has a name');
          }
          break;
        case FDT_END_NODE:
          if (depth === 0)
            throw new FdtError('BADSTRUCTURE', `END_NODE with no open node at ${offset}`);
          depth--;
          if (depth === 0) expectEnd = true;
          break;
        case FDT_PROP:
          this.getPropertyByOffset(offset);
          break;
        default:
          throw new FdtError('INTERNAL', `tag ${tag}`);
      }
      offset = next;
    }
  }

  /** Entries before the terminator (libfdt's fdt_num_mem_rsv). */
  private reservationCount(): number {
    const base = this.offMemRsvmap;
    const total = this.s.totalSize;
    for (let i = 0, off = base; off + FDT_RESERVE_ENTRY_SIZE <= total; i++) {
      if (this.dv.getBigUint64(off + 8) === 0n) return i;
      off += FDT_RESERVE_ENTRY_SIZE;
    }
    throw new FdtError('TRUNCATED', 'memory reservation map has no terminator inside totalsize');
  }

  /**
   * The memory reservation map, without its terminator (an entry of size 0).
   * @throws FdtError TRUNCATED no terminator inside totalsize
   */
  reservations(): Reservation[] {
    const n = this.reservationCount();
    const out: Reservation[] = [];
    for (let i = 0, off = this.offMemRsvmap; i < n; i++, off += FDT_RESERVE_ENTRY_SIZE) {
      out.push({
        address: exactInt(this.dv.getBigUint64(off)),
        size: exactInt(this.dv.getBigUint64(off + 8)),
      });
    }
    return out;
  }

  /**
   * The next node in document order after `offset` (-1 for the root), with its
   * depth relative to `depth` (libfdt's fdt_next_node).
   * @returns `{offset, depth}`; offset is -1 past the end of the tree.
   * @throws FdtError BADOFFSET, TRUNCATED, BADSTRUCTURE
   */
  nextNode(offset: number, depth: number): { offset: number; depth: number } {
    if (typeof depth !== 'number')
      throw new FdtError('BADVALUE', `depth ${show(depth)} is not a number`);
    const d = DEPTH;
    d[0] = depth;
    const r = nextNode(this.s, offset, d);
    if (r === E_NOTFOUND) return { offset: -1, depth: d[0]! };
    orThrow(r);
    if (d[0]! >= 0) this.noteNode(r);
    return { offset: r, depth: d[0]! };
  }

  /**
   * The first child of a node, or -1 if it has none.
   * @throws FdtError BADOFFSET `offset` is not a node
   */
  firstSubnode(offset: number): number {
    orThrow(checkNodeOffset(this.s, offset), 'no node at', offset);
    const d = new Int32Array(1);
    const r = nextNode(this.s, offset, d);
    // libfdt folds every failure here into NOTFOUND.
    return r < 0 || d[0] !== 1 ? -1 : r;
  }

  /**
   * The next sibling of a node, or -1 if it is the last.
   * @throws FdtError BADOFFSET `offset` is not a node
   */
  nextSubnode(offset: number): number {
    orThrow(checkNodeOffset(this.s, offset), 'no node at', offset);
    const d = new Int32Array([1]);
    let r = offset;
    do {
      r = nextNode(this.s, r, d);
      if (r < 0 || d[0]! < 1) return -1;
    } while (d[0]! > 1);
    return r;
  }

  /** The children of a node, in order. @throws FdtError BADOFFSET */
  *subnodes(offset: number): Generator<number> {
    for (let c = this.firstSubnode(offset); c >= 0; c = this.nextSubnode(c)) yield c;
  }

  /**
   * A node's name with its unit address (`cpu@0`); the root's is ''. Before
   * v16 names are full paths and this gives the part after the last '/'.
   * @throws FdtError BADOFFSET not a node
   * @throws FdtError BADSTRUCTURE a pre-v16 name without '/'
   */
  getName(offset: number): string {
    const s = this.s;
    orThrow(this.checkNode(offset), 'no node at', offset);
    const start = s.base + offset + 4;
    const end = s.nameEnd;
    let from = start;
    if (s.version < 16) {
      const slash = s.u8.lastIndexOf(0x2f, end - 1);
      if (slash < start)
        throw new FdtError('BADSTRUCTURE', `pre-v16 node name at ${offset} is not a path`);
      from = slash + 1;
    }
    return nameText(s.u8, from, end);
  }

  /** Does the node at `offset` have the name `name` (libfdt's fdt_nodename_eq_)? */
  private nameMatches(offset: number, name: Uint8Array, hasAt: boolean): boolean {
    const s = this.s;
    let start = s.base + offset + 4;
    let end = start;
    while (s.u8[end] !== 0) end++;
    if (s.version < 16) {
      const slash = s.u8.lastIndexOf(0x2f, end - 1);
      if (slash < start) return false;
      start = slash + 1;
    }
    if (end - start < name.length) return false;
    for (let i = 0; i < name.length; i++) if (s.u8[start + i] !== name[i]) return false;
    const after = start + name.length;
    return after === end || (!hasAt && s.u8[after] === 0x40);
  }

  /**
   * The child of `parent` called `name`. A name without a unit address also
   * matches `name@unit`; as in libfdt the first match in document order wins.
   * @returns the child's offset
   * @throws FdtError NOTFOUND no such child
   * @throws FdtError BADOFFSET `parent` is not a node; BADSTRUCTURE, TRUNCATED from the walk
   */
  subnodeOffset(parent: number, name: string): number {
    if (typeof parent !== 'number') throw new FdtError('BADOFFSET', `no node at ${show(parent)}`);
    const bytes = nameBytes(name);
    const r = bytes ? this.subnodeOffsetBytes(parent, bytes) : this.notFoundUnder(parent);
    return orThrow(r, r === E_NOTFOUND ? `no child ${JSON.stringify(name)}` : undefined);
  }

  /** What a lookup of a name no node can have returns: NOTFOUND, or the parent's error. */
  private notFoundUnder(parent: number): number {
    const r = checkNodeOffset(this.s, parent);
    return r < 0 ? r : E_NOTFOUND;
  }

  private subnodeOffsetBytes(parent: number, name: Uint8Array): number {
    const hasAt = name.includes(0x40);
    const d = new Int32Array(1);
    let off = parent;
    for (; off >= 0 && d[0]! >= 0; off = nextNode(this.s, off, d)) {
      if (d[0] === 1 && this.nameMatches(off, name, hasAt)) return off;
    }
    if (d[0]! < 0) return E_NOTFOUND;
    return off;
  }

  /**
   * The node at `path` (libfdt's fdt_path_offset). A path that does not start
   * with '/' starts with an alias from /aliases. Repeated '/' are ignored.
   * @throws FdtError BADPATH empty path, or an unknown or malformed alias
   * @throws FdtError NOTFOUND no such node; BADSTRUCTURE, TRUNCATED from the walk
   */
  pathOffset(path: string): number {
    if (typeof path !== 'string')
      throw new FdtError('BADPATH', `a path is a string, got ${show(path)}`);
    if (path.length === 0) throw new FdtError('BADPATH', 'empty path');
    return orThrow(this.pathOffsetRaw(path, 0), 'path', JSON.stringify(path));
  }

  private pathOffsetRaw(path: string, aliasDepth: number): number {
    let p = 0;
    let offset = 0;
    const end = path.length;
    if (path[0] !== '/') {
      let q = path.indexOf('/');
      if (q < 0) q = end;
      const target = aliasDepth === 0 ? this.aliasTarget(path.slice(0, q)) : undefined;
      if (target === undefined) return -FDT_ERR.BADPATH;
      offset = this.pathOffsetRaw(target, aliasDepth + 1);
      p = q;
      if (offset < 0) return offset;
    }
    while (p < end) {
      while (path[p] === '/') {
        p++;
        if (p === end) return offset;
      }
      let q = path.indexOf('/', p);
      if (q < 0) q = end;
      const bytes = nameBytes(path.slice(p, q));
      offset = bytes ? this.subnodeOffsetBytes(offset, bytes) : this.notFoundUnder(offset);
      if (offset < 0) return offset;
      p = q;
    }
    return offset;
  }

  /** An alias value usable as a path: a NUL-terminated string starting with '/'. */
  private aliasTarget(name: string): string | undefined {
    const aliases = this.pathOffsetRaw('/aliases', 1);
    if (aliases < 0) return undefined;
    const v = this.findProp(aliases, name);
    if (v === undefined || v.length < 2 || v[v.length - 1] !== 0 || v[0] !== 0x2f) return undefined;
    return valueText(v, 0, v.length - 1);
  }

  /**
   * The value of alias `name` in /aliases.
   * @throws FdtError NOTFOUND no /aliases or no such alias
   * @throws FdtError BADVALUE the alias is not a path string
   */
  getAlias(name: string): string {
    const aliases = this.pathOffset('/aliases');
    const target = this.aliasTarget(name);
    if (target === undefined) {
      this.getProp(aliases, name);
      throw new FdtError('BADVALUE', `alias ${JSON.stringify(name)} is not an absolute path`);
    }
    return target;
  }

  /**
   * The depth of a node and the offset of its ancestor at `atDepth`
   * (libfdt's fdt_supernode_atdepth_offset).
   */
  private supernode(offset: number, atDepth: number): { depth: number; super: number } {
    if (typeof offset !== 'number' || typeof atDepth !== 'number')
      return { depth: -1, super: E_BADOFFSET };
    const d = new Int32Array(1);
    let found = -FDT_ERR.INTERNAL; // until seen
    let off = 0;
    for (; off >= 0 && off <= offset; off = nextNode(this.s, off, d)) {
      if (d[0] === atDepth) found = off;
      if (off === offset) {
        if (atDepth > d[0]!) return { depth: d[0]!, super: E_NOTFOUND };
        return { depth: d[0]!, super: found };
      }
    }
    if (off === E_NOTFOUND || off >= 0) return { depth: -1, super: E_BADOFFSET };
    if (off === E_BADOFFSET) return { depth: -1, super: -FDT_ERR.BADSTRUCTURE };
    return { depth: -1, super: off };
  }

  /**
   * How deep a node is; the root is 0.
   * @throws FdtError BADOFFSET not a node; BADSTRUCTURE, TRUNCATED from the walk
   */
  nodeDepth(offset: number): number {
    const r = this.supernode(offset, 0);
    orThrow(r.super, 'no node at', offset);
    return r.depth;
  }

  /**
   * The parent of a node.
   * @throws FdtError NOTFOUND for the root
   * @throws FdtError BADOFFSET not a node; BADSTRUCTURE, TRUNCATED from the walk
   */
  parentOffset(offset: number): number {
    const depth = this.nodeDepth(offset);
    if (depth === 0) throw new FdtError('NOTFOUND', 'the root has no parent');
    return orThrow(this.supernode(offset, depth - 1).super);
  }

  /**
   * A node's full path ('/' for the root) (libfdt's fdt_get_path).
   * @throws FdtError BADOFFSET not a node; BADSTRUCTURE, TRUNCATED from the walk
   */
  getPath(offset: number): string {
    if (typeof offset !== 'number') throw new FdtError('BADOFFSET', `no node at ${show(offset)}`);
    const names: string[] = [];
    const d = new Int32Array(1);
    let off = 0;
    for (; off >= 0 && off <= offset; off = nextNode(this.s, off, d)) {
      names.length = Math.max(0, d[0]!);
      names.push(this.getName(off));
      if (off === offset) return names.length === 1 ? '/' : names.join('/');
    }
    if (off === E_NOTFOUND || off >= 0)
      throw new FdtError('BADOFFSET', `no node at ${show(offset)}`);
    if (off === E_BADOFFSET) throw new FdtError('BADSTRUCTURE', `walk to ${show(offset)} failed`);
    throw errorFor(off);
  }

  /**
   * The offset of a node's first property, or -1 if it has none.
   * @throws FdtError BADOFFSET not a node; BADSTRUCTURE, TRUNCATED from the walk
   */
  firstPropertyOffset(offset: number): number {
    const next = orThrow(this.checkNode(offset), 'no node at', offset);
    const r = this.nextPropFrom(next);
    return r === E_NOTFOUND ? -1 : orThrow(r);
  }

  /**
   * The offset of the property after the one at `offset`, or -1 if it was the last.
   * @throws FdtError BADOFFSET not a property; BADSTRUCTURE, TRUNCATED from the walk
   */
  nextPropertyOffset(offset: number): number {
    const next = orThrow(this.checkProp(offset), 'no property at', offset);
    const r = this.nextPropFrom(next);
    return r === E_NOTFOUND ? -1 : orThrow(r);
  }

  /** The property offsets of a node, in order. @throws FdtError as firstPropertyOffset */
  *propertyOffsets(offset: number): Generator<number> {
    for (let p = this.firstPropertyOffset(offset); p >= 0; p = this.nextPropertyOffset(p)) yield p;
  }

  /** Absolute [start, end) of a property's value; `offset` already checked. */
  private valueRange(offset: number): [number, number] {
    const s = this.s;
    const len = s.u32(offset + 4);
    let start = s.base + offset + 12;
    // Pre-v16 realignment of long values, as libfdt's fdt_getprop_by_offset.
    if (s.version < 16 && len >= 8 && (offset + 12) % 8 !== 0) start += 4;
    return [start, start + len];
  }

  /**
   * The property at `offset`: its name and a view of its value.
   * @throws FdtError BADOFFSET not a property, or its name offset is outside the strings block
   * @throws FdtError TRUNCATED its name has no NUL inside the strings block
   */
  getPropertyByOffset(offset: number): FdtProperty {
    const s = this.s;
    orThrow(this.checkProp(offset), 'no property at', offset);
    const nameoff = s.u32(offset + 8);
    this.names ??= new Map();
    let name = this.names.get(nameoff);
    if (name === undefined) {
      const start = orThrow(stringAt(s, nameoff), 'property name offset', nameoff);
      name = nameText(s.u8, start, s.next);
      this.names.set(nameoff, name);
    }
    const [a, b] = this.valueRange(offset);
    return { name, value: s.u8.subarray(a, b) };
  }

  /** The value of property `name` of the node, or undefined; walk errors propagate. */
  private findProp(node: number, name: string): Uint8Array | undefined {
    const s = this.s;
    const next = orThrow(checkNodeOffset(s, node), 'no node at', node);
    const want = nameBytes(name);
    if (want === undefined) return undefined;
    for (let p = nextProp(s, next); p !== E_NOTFOUND; ) {
      orThrow(p);
      const after = s.next;
      const start = stringAt(s, s.u32(p + 8));
      if (start >= 0 && s.next - start === want.length) {
        let eq = true;
        for (let i = 0; i < want.length; i++) {
          if (s.u8[start + i] !== want[i]) {
            eq = false;
            break;
          }
        }
        if (eq) {
          const [a, b] = this.valueRange(p);
          return s.u8.subarray(a, b);
        }
      }
      // nextTag already moved past the property when nextProp found it.
      p = nextProp(s, after);
    }
    return undefined;
  }

  /**
   * The value of property `name` of a node: a zero-copy view into the blob.
   * @throws FdtError NOTFOUND no such property
   * @throws FdtError BADOFFSET not a node; BADSTRUCTURE, TRUNCATED from the walk
   */
  getProp(offset: number, name: string): Uint8Array {
    const v = this.findProp(offset, name);
    if (v === undefined) throw new FdtError('NOTFOUND', `no property ${JSON.stringify(name)}`);
    return v;
  }

  /** Whether a node has property `name`. @throws FdtError as getProp, except NOTFOUND */
  hasProp(offset: number, name: string): boolean {
    return this.findProp(offset, name) !== undefined;
  }

  /**
   * A property holding one u32 cell.
   * @throws FdtError BADVALUE the value is not 4 bytes; and as getProp
   */
  getU32(offset: number, name: string): number {
    return decodeU32(this.getProp(offset, name), name);
  }

  /**
   * A property holding one u64: a number when <= 2^53-1, else a bigint.
   * @throws FdtError BADVALUE the value is not 8 bytes; and as getProp
   */
  getU64(offset: number, name: string): FdtInt {
    return decodeU64(this.getProp(offset, name), name);
  }

  /**
   * A property holding u32 cells.
   * @throws FdtError BADVALUE the length is not a multiple of 4; and as getProp
   */
  getCells(offset: number, name: string): number[] {
    return decodeCells(this.getProp(offset, name), name);
  }

  /**
   * A property holding one NUL-terminated string (the first, if it holds several).
   * @throws FdtError BADVALUE empty or not NUL-terminated; and as getProp
   */
  getString(offset: number, name: string): string {
    return decodeString(this.getProp(offset, name), name);
  }

  /**
   * A property holding NUL-terminated strings back to back; an empty value is [].
   * @throws FdtError BADVALUE the last string is not NUL-terminated; and as getProp
   */
  getStringList(offset: number, name: string): string[] {
    return decodeStringList(this.getProp(offset, name), name);
  }

  private cells(offset: number, name: string): number | undefined {
    const v = this.findProp(offset, name);
    if (v === undefined) return undefined;
    if (v.length !== 4) throw new FdtError('BADNCELLS', `${name} is ${v.length} bytes, not 4`);
    const n = decodeU32(v, name);
    if (n > FDT_MAX_NCELLS)
      throw new FdtError('BADNCELLS', `${name} = ${n} is more than ${FDT_MAX_NCELLS}`);
    return n;
  }

  /**
   * The node's #address-cells (for its children's `reg`); 2 when absent.
   * @throws FdtError BADNCELLS not one cell, 0, or above 4; and as getProp
   */
  addressCells(offset: number): number {
    const n = this.cells(offset, '#address-cells');
    if (n === 0) throw new FdtError('BADNCELLS', '#address-cells = 0');
    return n ?? FDT_DEFAULT_ADDRESS_CELLS;
  }

  /**
   * The node's #size-cells; 1 when absent.
   * @throws FdtError BADNCELLS not one cell, or above 4; and as getProp
   */
  sizeCells(offset: number): number {
    return this.cells(offset, '#size-cells') ?? FDT_DEFAULT_SIZE_CELLS;
  }

  /**
   * The node's `reg`, decoded with its parent's #address-cells/#size-cells
   * (the defaults 2/1 for the root, which has no parent).
   * @throws FdtError BADVALUE the length is not a whole number of entries
   * @throws FdtError BADNCELLS from the parent; NOTFOUND no `reg`; and as getProp
   */
  getReg(offset: number): RegEntry[] {
    let ac = FDT_DEFAULT_ADDRESS_CELLS;
    let sc = FDT_DEFAULT_SIZE_CELLS;
    if (this.nodeDepth(offset) > 0) {
      const parent = this.parentOffset(offset);
      ac = this.addressCells(parent);
      sc = this.sizeCells(parent);
    }
    return decodeReg(this.getProp(offset, 'reg'), ac, sc);
  }

  /**
   * The node's phandle (`phandle`, else `linux,phandle`, each one cell), or 0
   * when it has none (0 is never a valid phandle).
   * @throws FdtError BADOFFSET not a node; BADSTRUCTURE, TRUNCATED from the walk
   */
  getPhandle(offset: number): number {
    for (const name of ['phandle', 'linux,phandle']) {
      const v = this.findProp(offset, name);
      if (v !== undefined && v.length === 4) return decodeU32(v);
    }
    return 0;
  }

  /**
   * The first node whose phandle is `phandle`.
   * @throws FdtError BADPHANDLE 0 or 0xffffffff (or not a u32)
   * @throws FdtError NOTFOUND no such node; BADSTRUCTURE, TRUNCATED from the walk
   */
  nodeOffsetByPhandle(phandle: number): number {
    if (!Number.isInteger(phandle) || phandle < 1 || phandle > FDT_MAX_PHANDLE) {
      throw new FdtError('BADPHANDLE', `phandle ${show(phandle)}`);
    }
    let off = nextNode(this.s, -1, null);
    for (; off >= 0; off = nextNode(this.s, off, null)) {
      if (this.getPhandle(off) === phandle) return off;
    }
    throw errorFor(off, `no node with phandle ${show(phandle)}`);
  }

  /**
   * Every node in document order with its depth (root 0) and name. Stops at
   * the end of the root; refuses nesting deeper than FDT_MAX_DEPTH so a
   * printer's stack stays bounded.
   * @throws FdtError NOTFOUND no node at all; BADSTRUCTURE, TRUNCATED from
   *   the walk; BADSTRUCTURE too deep
   */
  *walk(): Generator<WalkEntry> {
    const s = this.s;
    const d = new Int32Array(1);
    // Like libfdt's fdt_next_node(fdt, -1, ...): NOPs before the root are skipped.
    let off = orThrow(nextNode(s, -1, d), 'no root node');
    this.noteNode(off);
    d[0] = 0;
    while (off >= 0) {
      const depth = d[0]!;
      if (depth > FDT_MAX_DEPTH) {
        throw new FdtError('BADSTRUCTURE', `nesting deeper than ${FDT_MAX_DEPTH}`);
      }
      yield { offset: off, depth, name: this.getName(off) };
      off = nextNode(s, off, d);
      if (d[0]! <= 0) break;
      if (off >= 0) this.noteNode(off);
    }
    if (off < 0 && off !== E_NOTFOUND) throw errorFor(off);
  }

  /** Is the tag at `offset` a node? (cheap check for tools) */
  isNode(offset: number): boolean {
    return checkNodeOffset(this.s, offset) >= 0;
  }
}
