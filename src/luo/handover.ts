/**
 * The sessions as one FDT (layout in abi.ts): built after freeze by the
 * running generation, parsed and checked by its successor. Parsing trusts
 * nothing: every fault is a LuoError EFAULT saying where and what.
 */
import { hexDigits } from '../base/hex.js';
import { Fdt, FdtError, FdtWriter } from '../fdt/index.js';
import { NodeProps } from './_props.js';
import {
  LUO_COMPATIBLE,
  LUO_COMPATIBLE_V2,
  LUO_FD_MAX,
  LUO_FILE_NODE,
  LUO_FLB_COMPATIBLE_MAX,
  LUO_FLB_MAX,
  LUO_FLB_NODE,
  LUO_HANDLER_COMPATIBLE_MAX,
  LUO_SESSION_NAME_MAX,
  LUO_SESSION_NODE,
  PROP_COMPATIBLE,
  PROP_COUNT,
  PROP_DATA,
  PROP_FD,
  PROP_FD_FLAGS,
  PROP_NAME,
  PROP_TOKEN,
} from './abi.js';
import { LuoError } from './errors.js';
import type { HandoverFlb } from './flb.js';
import type { FileHandler, FileIdentity } from './handlers.js';

/** One file as it crosses the exec. */
export interface HandoverFile {
  token: bigint;
  fd: number;
  /** F_GETFD flags before freeze, restored at retrieve. */
  fdFlags: number;
  handler: FileHandler;
  data: FileIdentity;
}

export interface HandoverSession {
  name: string;
  files: HandoverFile[];
}

/** The only F_GETFD flag Linux defines. */
const FD_FLAGS_MASK = 1;

/** Everything a handover carries. */
export interface LiveUpdateHandover {
  sessions: HandoverSession[];
  flbs: HandoverFlb[];
}

/**
 * Build the handover FDT: v1 without FLBs, v2 with them.
 * @throws FdtError only on a writer bug (names are fixed)
 */
export function buildHandover(
  sessions: readonly HandoverSession[],
  flbs: readonly HandoverFlb[] = [],
): Uint8Array {
  const w = new FdtWriter();
  w.finishReservations();
  w.beginNode('');
  w.propertyString(PROP_COMPATIBLE, flbs.length > 0 ? LUO_COMPATIBLE_V2 : LUO_COMPATIBLE);
  sessions.forEach((s, i) => {
    w.beginNode(`${LUO_SESSION_NODE}@${hexDigits(i)}`);
    w.propertyString(PROP_NAME, s.name);
    s.files.forEach((f, j) => {
      w.beginNode(`${LUO_FILE_NODE}@${hexDigits(j)}`);
      w.propertyString(PROP_COMPATIBLE, f.handler.compatible);
      w.propertyU64(PROP_TOKEN, f.token);
      w.propertyU32(PROP_FD, f.fd);
      w.propertyU32(PROP_FD_FLAGS, f.fdFlags);
      f.handler.save(w, f.data);
      w.endNode();
    });
    w.endNode();
  });
  flbs.forEach((f, i) => {
    w.beginNode(`${LUO_FLB_NODE}@${hexDigits(i)}`);
    w.propertyString(PROP_COMPATIBLE, f.compatible);
    w.property(PROP_DATA, f.data);
    w.propertyU64(PROP_COUNT, BigInt(f.count));
    w.endNode();
  });
  w.endNode();
  return w.finish();
}

function fault(message: string): LuoError {
  return new LuoError('EFAULT', `corrupt handover: ${message}`);
}

/**
 * Parse and check the handover FDT: structure, compatible strings, unique
 * session names, tokens and descriptors, every handler property.
 * Descriptors are not touched here (retrieve checks each).
 * @throws LuoError EFAULT anything wrong, with where and what
 */
export function parseHandover(
  bytes: Uint8Array,
  handlers: readonly FileHandler[],
): HandoverSession[] {
  return parseLiveUpdateHandover(bytes, handlers).sessions;
}

/**
 * parseHandover, with the FLBs too. Each FLB's count is checked against the
 * number of files handed over.
 * @throws LuoError EFAULT anything wrong, with where and what
 */
export function parseLiveUpdateHandover(
  bytes: Uint8Array,
  handlers: readonly FileHandler[],
): LiveUpdateHandover {
  const raw = readHandover(bytes);
  return { sessions: bindHandlers(raw.sessions, handlers), flbs: raw.flbs };
}

/** One file node, checked but not yet read by its handler. */
export interface UnboundFile {
  token: bigint;
  fd: number;
  fdFlags: number;
  /** Its handler's compatible. */
  compatible: string;
  /** The node's properties, for the handler's load(). */
  props: NodeProps;
}

export interface UnboundSession {
  name: string;
  files: UnboundFile[];
}

/** A handover read before its file handlers are known (the kernel reads it at boot). */
export interface UnboundHandover {
  sessions: UnboundSession[];
  flbs: HandoverFlb[];
}

/**
 * The first half of parseLiveUpdateHandover: everything but the handlers'
 * own properties, so a successor can read its handover at boot and bind
 * handlers registered later.
 * @throws LuoError EFAULT anything wrong, with where and what
 */
export function readHandover(bytes: Uint8Array): UnboundHandover {
  if (!(bytes instanceof Uint8Array)) throw fault('not a byte array');
  return withFdtFaults(() => read(bytes));
}

/**
 * The second half: each file's handler (by compatible) loads its properties.
 * @throws LuoError EFAULT a file has no handler among `handlers`, or its properties are malformed
 */
export function bindHandlers(
  sessions: readonly UnboundSession[],
  handlers: readonly FileHandler[],
): HandoverSession[] {
  const byCompatible = new Map(handlers.map((h) => [h.compatible, h]));
  return withFdtFaults(() =>
    sessions.map((s) => ({
      name: s.name,
      files: s.files.map((f) => {
        const handler = byCompatible.get(f.compatible);
        if (handler === undefined) {
          throw new LuoError(
            'EFAULT',
            `handover: ${f.props.where}: no handler for "${f.compatible}" (register it before the sessions are opened)`,
          );
        }
        return {
          token: f.token,
          fd: f.fd,
          fdFlags: f.fdFlags,
          handler,
          data: handler.load(f.props),
        };
      }),
    })),
  );
}

function withFdtFaults<T>(run: () => T): T {
  try {
    return run();
  } catch (e) {
    if (e instanceof FdtError) throw fault(e.message);
    throw e;
  }
}

function read(bytes: Uint8Array): UnboundHandover {
  const fdt = Fdt.from(bytes);
  fdt.checkFull();
  const root = new NodeProps(fdt, 0, '/');
  const compatible = root.string(PROP_COMPATIBLE, 64);
  if (compatible !== LUO_COMPATIBLE && compatible !== LUO_COMPATIBLE_V2) {
    throw fault(`compatible is "${compatible}", not "${LUO_COMPATIBLE}" or "${LUO_COMPATIBLE_V2}"`);
  }
  const sessions: UnboundSession[] = [];
  const flbNodes: number[] = [];
  const names = new Set<string>();
  const fds = new Set<number>();
  for (const sn of fdt.subnodes(0)) {
    const where = fdt.getName(sn);
    if (compatible === LUO_COMPATIBLE_V2 && where.startsWith(`${LUO_FLB_NODE}@`)) {
      flbNodes.push(sn);
      continue;
    }
    if (!where.startsWith(`${LUO_SESSION_NODE}@`)) throw fault(`unexpected node ${where}`);
    const sp = new NodeProps(fdt, sn, where);
    const name = sp.string(PROP_NAME, LUO_SESSION_NAME_MAX);
    if (names.has(name)) throw fault(`session name "${name}" appears twice`);
    names.add(name);
    const files: UnboundFile[] = [];
    const tokens = new Set<bigint>();
    for (const fn of fdt.subnodes(sn)) {
      const fwhere = `${where}/${fdt.getName(fn)}`;
      if (!fdt.getName(fn).startsWith(`${LUO_FILE_NODE}@`))
        throw fault(`unexpected node ${fwhere}`);
      const fp = new NodeProps(fdt, fn, fwhere);
      const fc = fp.string(PROP_COMPATIBLE, LUO_HANDLER_COMPATIBLE_MAX);
      const token = fp.u64(PROP_TOKEN);
      if (tokens.has(token)) throw fault(`${fwhere}: token ${token} appears twice in "${name}"`);
      tokens.add(token);
      const fd = fp.u32(PROP_FD, LUO_FD_MAX);
      if (fds.has(fd)) throw fault(`${fwhere}: fd ${fd} is preserved twice`);
      fds.add(fd);
      const fdFlags = fp.u32(PROP_FD_FLAGS);
      if ((fdFlags & ~FD_FLAGS_MASK) !== 0) throw fault(`${fwhere}: fd-flags ${fdFlags} unknown`);
      files.push({ token, fd, fdFlags, compatible: fc, props: fp });
    }
    sessions.push({ name, files });
  }
  return { sessions, flbs: parseFlbs(fdt, flbNodes, fds.size) };
}

function parseFlbs(fdt: Fdt, nodes: readonly number[], files: number): HandoverFlb[] {
  if (nodes.length > LUO_FLB_MAX) throw fault(`${nodes.length} FLBs (at most ${LUO_FLB_MAX})`);
  const flbs: HandoverFlb[] = [];
  const seen = new Set<string>();
  for (const n of nodes) {
    const p = new NodeProps(fdt, n, fdt.getName(n));
    const c = p.string(PROP_COMPATIBLE, LUO_FLB_COMPATIBLE_MAX);
    if (!/^[\x21-\x7e]+$/.test(c))
      throw fault(`${p.where}: compatible "${c}" is not printable ASCII`);
    if (seen.has(c)) throw fault(`${p.where}: FLB "${c}" appears twice`);
    seen.add(c);
    const count = p.u64(PROP_COUNT);
    if (count < 1n || count > BigInt(files)) {
      throw fault(`${p.where}: count ${count} is not 1..${files} (the files handed over)`);
    }
    flbs.push({ compatible: c, data: p.bytes(PROP_DATA).slice(), count: Number(count) });
  }
  return flbs;
}
