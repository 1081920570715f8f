import { show } from '../base/errors.js';
import { hex, hexDigits } from '../base/hex.js';
/**
 * A DTS printer that prints what `dtc -I dtb -O dts` (dtc 1.6.1) prints for
 * the same blob, byte for byte, so the two outputs compile to equal trees.
 *
 * A blob carries no types, so dtc guesses each value's type from its bytes
 * (treesource.c, guess_value_type): a string when every byte is printable or
 * NUL, the last byte is NUL and NULs are at most half the bytes; otherwise
 * 32-bit cells when the length is a multiple of 4; otherwise bytes.
 */
import { errorFor, nextTag } from './_walk.js';
import { FdtError } from './errors.js';
import { FDT_BEGIN_NODE, FDT_END, FDT_END_NODE, FDT_MAX_DEPTH, FDT_PROP } from './format.js';
import type { Fdt } from './read.js';

/** How dtc shows a property value read from a blob. */
export type DtsValueType = 'empty' | 'string' | 'cells' | 'bytes';

/** isprint() in the C locale. */
function isPrint(c: number): boolean {
  return c >= 0x20 && c <= 0x7e;
}

/** dtc's isstring(): printable, NUL, or one of the escapes \a \b \t \n \v \f \r. */
function isStringByte(c: number): boolean {
  return isPrint(c) || c === 0 || (c >= 0x07 && c <= 0x0d);
}

/** The type dtc 1.6.1 guesses for a value without type markers. */
export function guessValueType(value: Uint8Array): DtsValueType {
  if (!(value instanceof Uint8Array))
    throw new FdtError('BADVALUE', `a value is a Uint8Array, got ${show(value)}`);
  const len = value.length;
  if (len === 0) return 'empty';
  let notString = 0;
  let nul = 0;
  for (let i = 0; i < len; i++) {
    const c = value[i];
    if (!isStringByte(c)) notString++;
    if (c === 0) nul++;
  }
  if (value[len - 1] === 0 && notString === 0 && nul <= len - nul) return 'string';
  if (len % 4 === 0) return 'cells';
  return 'bytes';
}

const ESCAPES: Record<number, string> = {
  7: '\\a',
  8: '\\b',
  9: '\\t',
  10: '\\n',
  11: '\\v',
  12: '\\f',
  13: '\\r',
  92: '\\\\',
  34: '\\"',
  0: '\\0',
};

/** One quoted string as dtc writes it: the final NUL dropped, inner NULs as \0. */
function quoteString(value: Uint8Array): string {
  let out = '"';
  for (let i = 0; i < value.length - 1; i++) {
    const c = value[i];
    const esc = ESCAPES[c];
    if (esc !== undefined) out += esc;
    else if (isPrint(c)) out += String.fromCharCode(c);
    else out += `\\x${hexDigits(c, 2)}`;
  }
  return `${out}"`;
}

/** Big-endian 32-bit cells as dtc writes them: `<0x01 0xdeadbeef>`. */
function formatCells(value: Uint8Array): string {
  const parts: string[] = [];
  for (let i = 0; i + 4 <= value.length; i += 4) {
    const cell =
      ((value[i] << 24) | (value[i + 1] << 16) | (value[i + 2] << 8) | value[i + 3]) >>> 0;
    parts.push(`${hex(cell, 2)}`);
  }
  return `<${parts.join(' ')}>`;
}

/** Bytes as dtc writes them: `[01 ab]`. */
function formatBytes(value: Uint8Array): string {
  const parts: string[] = [];
  for (let i = 0; i < value.length; i++) parts.push(hexDigits(value[i], 2));
  return `[${parts.join(' ')}]`;
}

/** A value's text after `name = ` (empty for an empty property). */
export function formatValue(value: Uint8Array): string {
  switch (guessValueType(value)) {
    case 'empty':
      return '';
    case 'string':
      return quoteString(value);
    case 'cells':
      return formatCells(value);
    default:
      return formatBytes(value);
  }
}

/** One property line without indentation: `name;` or `name = value;`. */
export function formatProperty(name: string, value: Uint8Array): string {
  if (typeof name !== 'string')
    throw new FdtError('BADVALUE', `a name is a string, got ${show(name)}`);
  formatValue(value);
  return value.length === 0 ? `${name};` : `${name} = ${formatValue(value)};`;
}

/** A memory reservation line: `/memreserve/\t0x<16 hex> 0x<16 hex>;`. */
export function formatReservation(address: bigint, size: bigint): string {
  if (typeof address !== 'bigint' || typeof size !== 'bigint' || address < 0n || size < 0n)
    throw new FdtError(
      'BADVALUE',
      `a reservation is two non-negative bigints, got ${show(address)}, ${show(size)}`,
    );
  const h = (n: bigint) => `${hex(n, 16)}`;
  return `/memreserve/\t${h(address)} ${h(size)};`;
}

interface DtsNode {
  name: string;
  /** Whether the node's first `name` property has been met. */
  sawName: boolean;
  props: string[];
  children: DtsNode[];
}

/**
 * The blob as `dtc -I dtb -O dts` prints it: `/dts-v1/;`, the reservations,
 * then the tree with tab indentation, each node's properties before its
 * subnodes (dtc's order even when the blob has a property after a subnode),
 * and an empty line before every subnode.
 *
 * @throws FdtError whatever `fdt.checkFull()` throws (TRUNCATED, BADSTRUCTURE,
 *   BADOFFSET): only a blob that passes libfdt's full check is printed.
 * @throws FdtError BADSTRUCTURE nesting deeper than FDT_MAX_DEPTH below the
 *   root (the text would grow with the square of the depth).
 */
export function toDts(fdt: Fdt): string {
  if (typeof (fdt as Partial<Fdt> | null)?.checkFull !== 'function')
    throw new FdtError('BADVALUE', `toDts takes an Fdt, got ${show(fdt)}`);
  fdt.checkFull();
  const out: string[] = ['/dts-v1/;\n\n'];
  for (const r of fdt.reservations()) {
    out.push(`${formatReservation(BigInt(r.address), BigInt(r.size))}\n`);
  }
  printTree(collectTree(fdt), out);
  return out.join('');
}

/** One pass over the structure block; the full check has already passed. */
function collectTree(fdt: Fdt): DtsNode {
  const s = fdt.s;
  const stack: DtsNode[] = [];
  let root: DtsNode | undefined;
  let offset = 0;
  for (;;) {
    const tag = nextTag(s, offset);
    // Read `next` now: the getters below reuse the walker's scratch field.
    const next = s.next;
    if (next < 0) throw errorFor(next, `bad tag at structure offset ${offset}`);
    if (tag === FDT_END) break;
    if (tag === FDT_BEGIN_NODE) {
      // As the reader's walk(): output grows with the square of the depth.
      if (stack.length > FDT_MAX_DEPTH) {
        throw new FdtError('BADSTRUCTURE', `nesting deeper than ${FDT_MAX_DEPTH}`);
      }
      const node: DtsNode = { name: fdt.getName(offset), sawName: false, props: [], children: [] };
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(node);
      else root = node;
      stack.push(node);
    } else if (tag === FDT_END_NODE) {
      stack.pop();
    } else if (tag === FDT_PROP) {
      const p = fdt.getPropertyByOffset(offset);
      const node = stack[stack.length - 1] as DtsNode;
      let drop = false;
      if (p.name === 'name' && !node.sawName) {
        node.sawName = true;
        drop = isRedundantName(node.name, p.value);
      }
      if (!drop) node.props.push(formatProperty(p.name, p.value));
    }
    offset = next;
  }
  if (root === undefined) throw new FdtError('BADSTRUCTURE', 'no root node');
  return root;
}

/**
 * dtc's name_properties check deletes a node's first `name` property when it
 * holds the node name up to '@' (old v1-v3 blobs carry one in every node).
 * An incorrect one makes dtc fail, so any other is printed as it is.
 */
function isRedundantName(nodeName: string, value: Uint8Array): boolean {
  const at = nodeName.indexOf('@');
  const base = encoder.encode(at < 0 ? nodeName : nodeName.slice(0, at));
  if (value.length !== base.length + 1) return false;
  for (let i = 0; i < base.length; i++) if (value[i] !== base[i]) return false;
  return true;
}

const encoder = new TextEncoder();

/** Prints without recursion, so no depth of nesting can overflow the stack. */
function printTree(root: DtsNode, out: string[]): void {
  type Frame = { node: DtsNode; level: number; next: number };
  const frames: Frame[] = [{ node: root, level: 0, next: -1 }];
  while (frames.length > 0) {
    const f = frames[frames.length - 1] as Frame;
    const indent = '\t'.repeat(f.level);
    if (f.next < 0) {
      out.push(`${indent}${f.node.name === '' ? '/' : f.node.name} {\n`);
      for (const p of f.node.props) out.push(`${indent}\t${p}\n`);
      f.next = 0;
    }
    const child = f.node.children[f.next];
    if (child !== undefined) {
      f.next++;
      out.push('\n');
      frames.push({ node: child, level: f.level + 1, next: -1 });
    } else {
      out.push(`${indent}};\n`);
      frames.pop();
    }
  }
}
