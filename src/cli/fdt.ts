/**
 * `livekexec fdt dump|check|get`: look at a Flattened Device Tree blob the way
 * `dtc -I dtb -O dts`, libfdt's fdt_check_full and `fdtget` do.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import type { Command } from 'commander';
import { toDts } from '../fdt/dts.js';
import { FdtError } from '../fdt/errors.js';
import { Fdt } from '../fdt/read.js';
import { ExitCode } from './cli-exit.js';

/** Refuse to read more than this: a blob's totalsize is a u32, but no real one is near it. */
const MAX_BLOB_BYTES = 256 << 20;

/**
 * The file's bytes in a fresh 8-aligned buffer (libfdt needs the alignment).
 * Only a regular file is read: a FIFO or a character device would block the
 * open or never reach its end. The size is checked before anything is read.
 * @throws ExitCode 1 after printing why the file cannot be read
 */
function readBlob(file: string): Uint8Array {
  const refuse = (why: string): never => {
    process.stderr.write(`livekexec fdt: cannot read ${file}: ${why}\n`);
    throw new ExitCode(1);
  };
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO with no writer must not wait for one.
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return refuse(e.code === 'ENOENT' ? 'no such file' : (e.code ?? e.message));
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) return refuse('is a directory');
    if (!st.isFile()) return refuse('not a regular file');
    if (st.size > MAX_BLOB_BYTES) {
      process.stderr.write(
        `livekexec fdt: ${file} is ${st.size} bytes, larger than any blob this reads\n`,
      );
      throw new ExitCode(1);
    }
    const bytes = new Uint8Array(st.size);
    let got = 0;
    try {
      while (got < bytes.length) {
        const n = readSync(fd, bytes, got, bytes.length - got, got);
        if (n === 0) break;
        got += n;
      }
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      return refuse(e.code ?? e.message);
    }
    // A file that shrank while read: the bytes there are.
    return got === bytes.length ? bytes : bytes.slice(0, got);
  } finally {
    closeSync(fd);
  }
}

/** Runs `fn`; an FdtError is printed with its libfdt name first on the line, exit 1. */
function withFdtErrors<T>(file: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof FdtError) {
      process.stderr.write(`${err.message} (${file})\n`);
      throw new ExitCode(1);
    }
    throw err;
  }
}

/** A blob that passed libfdt's full check. */
function openChecked(file: string): Fdt {
  const bytes = readBlob(file);
  return withFdtErrors(file, () => {
    const fdt = Fdt.from(bytes);
    fdt.checkFull();
    return fdt;
  });
}

/** util_is_printable_string of dtc 1.6.1: NUL-terminated, non-empty printable chunks. */
function isPrintableString(v: Uint8Array): boolean {
  if (v.length === 0 || v[v.length - 1] !== 0) return false;
  let i = 0;
  while (i < v.length) {
    const start = i;
    while (i < v.length && v[i] >= 0x20 && v[i] <= 0x7e) i++;
    if (v[i] !== 0 || i === start) return false;
    i++;
  }
  return true;
}

/**
 * A value as `fdtget` prints it by default: strings separated by spaces;
 * otherwise signed decimal 32-bit cells when the length is a multiple of 4,
 * else decimal bytes; nothing for an empty value.
 */
export function formatFdtgetValue(v: Uint8Array): string {
  if (v.length === 0) return '';
  if (isPrintableString(v)) {
    // Printable ASCII and NULs only: one char per byte.
    let text = '';
    // In slices: one call with a huge value would overflow the argument stack.
    for (let i = 0; i < v.length - 1; i += 4096) {
      text += String.fromCharCode(...v.subarray(i, Math.min(v.length - 1, i + 4096)));
    }
    return text.replaceAll('\0', ' ');
  }
  const parts: number[] = [];
  if (v.length % 4 === 0) {
    const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
    for (let i = 0; i < v.length; i += 4) parts.push(dv.getInt32(i));
  } else {
    for (const b of v) parts.push(b);
  }
  return parts.join(' ');
}

function dump(file: string): void {
  const fdt = openChecked(file);
  // Names are one char per byte: latin1 writes them back byte for byte, as dtc does.
  process.stdout.write(
    withFdtErrors(file, () => toDts(fdt)),
    'latin1',
  );
}

function check(file: string): void {
  const fdt = openChecked(file);
  const { nodes, props } = withFdtErrors(file, () => countTree(fdt));
  const rsv = fdt.reservations().length;
  process.stdout.write(
    `OK: ${file}: version ${fdt.version}, ${fdt.totalSize} bytes, ${nodes} nodes, ${props} properties, ${rsv} reservations\n`,
  );
}

function countTree(fdt: Fdt): { nodes: number; props: number } {
  let nodes = 0;
  let props = 0;
  for (let n = fdt.nextNode(-1, 0); n.offset >= 0; n = fdt.nextNode(n.offset, n.depth)) {
    nodes++;
    for (const _ of fdt.propertyOffsets(n.offset)) props++;
  }
  return { nodes, props };
}

interface GetOptions {
  properties?: boolean;
  list?: boolean;
}

function get(file: string, path: string, prop: string | undefined, opts: GetOptions): void {
  const fdt = openChecked(file);
  const out = withFdtErrors(file, () => {
    const node = fdt.pathOffset(path);
    if (prop !== undefined) return `${formatFdtgetValue(fdt.getProp(node, prop))}\n`;
    // Without a property: its property names (fdtget -p), then its subnodes (fdtget -l).
    const both = !opts.properties && !opts.list;
    const lines: string[] = [];
    if (both || opts.properties) {
      for (const p of fdt.propertyOffsets(node)) lines.push(fdt.getPropertyByOffset(p).name);
    }
    if (both || opts.list) for (const c of fdt.subnodes(node)) lines.push(fdt.getName(c));
    return lines.map((l) => `${l}\n`).join('');
  });
  process.stdout.write(out, 'latin1');
}

/** Adds the `fdt` verb group to the program. */
export function registerFdtCommands(program: Command): void {
  const fdt = program.command('fdt').description('look at a Flattened Device Tree blob (DTB)');
  fdt
    .command('dump')
    .description('print the blob as DTS, exactly as `dtc -I dtb -O dts` does')
    .argument('<file>', 'DTB file')
    .action((file: string) => dump(file));
  fdt
    .command('check')
    .description(
      "check the blob with libfdt's full check; on failure print the FDT_ERR_ name and exit 1",
    )
    .argument('<file>', 'DTB file')
    .action((file: string) => check(file));
  fdt
    .command('get')
    .description("print a property's value as `fdtget` does, or a node's properties and subnodes")
    .argument('<file>', 'DTB file')
    .argument('<path>', 'node path, e.g. /soc/serial@1000, or an alias from /aliases')
    .argument('[prop]', 'property name')
    .option('-p, --properties', "with no property: list only the node's properties")
    .option('-l, --list', "with no property: list only the node's subnodes")
    .action((file: string, path: string, prop: string | undefined, opts: GetOptions) =>
      get(file, path, prop, opts),
    );
}
