/**
 * The status area's payload: a flattened device tree (see abi.ts), written
 * with the project's FDT writer and read back as untrusted input: the tree
 * is fully checked, every number must be an exact u64 below 2^53, every
 * list is bounded, and any violation is a StatusError naming the property.
 */
import { hex } from '../base/hex.js';
import { FdtError } from '../fdt/errors.js';
import { Fdt } from '../fdt/read.js';
import { FdtWriter } from '../fdt/write.js';
import { MAX_LIST, NODE, PROP, STATUS_COMPATIBLE } from './abi.js';
import { StatusError } from './errors.js';
import {
  type HandoverHistory,
  type HandoverOutcome,
  type LastHandover,
  type LuoSessionStatus,
  type MemoryRun,
  type PublishedStatus,
  RUN_KINDS,
  type RunKind,
  type StatusRange,
} from './model.js';

const OUTCOMES: readonly HandoverOutcome[] = ['ok', 'failed', 'refused', 'fallback'];

/** u64 cells, big-endian, as the devicetree convention has them (LUO tokens come as decimal strings). */
function u64s(values: readonly (number | string)[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const v = new DataView(out.buffer);
  values.forEach((x, i) => {
    v.setBigUint64(i * 8, BigInt(x));
  });
  return out;
}

function ranges(rs: readonly StatusRange[]): Uint8Array {
  return u64s(rs.flatMap((r) => [r.base, r.size]));
}

/** The payload tree of `s`. @throws FdtError only for a value this writer cannot encode. */
export function encodeStatusPayload(s: PublishedStatus): Uint8Array {
  const w = new FdtWriter({ capacity: 8192 });
  w.finishReservations();
  const node = (name: string, body: () => void) => {
    w.beginNode(name);
    body();
    w.endNode();
  };
  const u64 = (name: string, x: number) => w.property(name, u64s([x]));
  const flag = (name: string, on: boolean) => {
    if (on) w.propertyEmpty(name);
  };
  node('', () => {
    w.propertyString(PROP.compatible, STATUS_COMPATIBLE);
    u64(PROP.generation, s.generation);
    w.property(PROP.bootId, Uint8Array.from(Buffer.from(s.bootId, 'hex')));
    w.propertyString(PROP.bootKind, s.bootKind);
    w.propertyU32(PROP.ownerPid, s.ownerPid);
    u64(PROP.bootedAtMs, s.bootedAtMs);
    u64(PROP.publishedAtMs, s.publishedAtMs);
    w.propertyU32(PROP.publishIntervalMs, s.publishIntervalMs);
    u64(PROP.deviceSize, s.deviceSize);
    if (s.coldReason !== undefined) w.propertyString(PROP.coldReason, s.coldReason);
    flag(PROP.truncated, s.truncated);
    const h = s.handover;
    node(NODE.handover, () => {
      u64(PROP.handovers, h.handovers);
      u64(PROP.failed, h.failed);
      u64(PROP.fallbacks, h.fallbacks);
      u64(PROP.refused, h.refused);
      w.property(PROP.downtimeBoundsUs, u64s(h.downtime.boundsUs));
      w.property(PROP.downtimeCounts, u64s(h.downtime.counts));
      u64(PROP.downtimeSumUs, h.downtime.sumUs);
      const l = h.last;
      if (l) {
        w.propertyString(PROP.lastOutcome, l.outcome);
        u64(PROP.lastAtMs, l.atMs);
        w.propertyString(PROP.lastWay, l.way);
        u64(PROP.lastFrom, l.fromGeneration);
        u64(PROP.lastTo, l.toGeneration);
        if (l.downtimeUs !== undefined) u64(PROP.lastDowntimeUs, l.downtimeUs);
        if (l.reason !== undefined) w.propertyString(PROP.lastReason, l.reason);
      }
    });
    node(NODE.bootCounting, () => {});
    const p = s.pages;
    node(NODE.pages, () => {
      u64(PROP.total, p.total);
      u64(PROP.free, p.free);
      u64(PROP.allocated, p.allocated);
      u64(PROP.reserved, p.reserved);
      u64(PROP.preserved, p.preserved);
      w.property(PROP.freeByOrder, u64s(p.freeByOrder));
    });
    node(NODE.kho, () => {
      flag(PROP.enabled, s.kho.enabled);
      u64(PROP.preservedBytes, s.kho.preservedBytes);
      u64(PROP.preservedBlocks, s.kho.preservedBlocks);
      u64(PROP.metadataPages, s.kho.metadataPages);
      w.propertyStringList(PROP.subtrees, s.kho.subtrees);
      w.property(PROP.scratch, ranges(s.kho.scratch));
    });
    node(NODE.pkram, () => {
      flag(PROP.enabled, s.pkram.enabled);
      w.propertyStringList(PROP.nodes, s.pkram.nodes);
      u64(PROP.preservedPages, s.pkram.preservedPages);
    });
    node(NODE.pmpool, () => {
      for (const [i, pool] of s.pmpools.entries())
        node(`${NODE.pool}@${i}`, () => {
          w.propertyString(PROP.name, pool.name ?? '');
          u64(PROP.base, pool.base);
          u64(PROP.size, pool.size);
          u64(PROP.totalPages, pool.totalPages);
          u64(PROP.usedPages, pool.usedPages);
        });
    });
    node(NODE.reserveMem, () => {
      for (const [i, r] of s.reserveMem.entries())
        node(`${NODE.region}@${i}`, () => {
          w.propertyString(PROP.name, r.name);
          u64(PROP.base, r.base);
          u64(PROP.size, r.size);
        });
    });
    if (s.luo) {
      const sessions = s.luo.sessions;
      node(NODE.luo, () => {
        w.propertyEmpty(PROP.opened);
        for (const [i, ss] of sessions.entries())
          node(`${NODE.session}@${i}`, () => {
            w.propertyString(PROP.name, ss.name);
            w.propertyString(PROP.direction, ss.direction);
            w.property(PROP.tokens, u64s(ss.files.map((f) => f.token)));
            w.propertyStringList(
              PROP.kinds,
              ss.files.map((f) => f.kind),
            );
            w.propertyStringList(
              PROP.descriptions,
              ss.files.map((f) => f.description),
            );
          });
      });
    }
    if (s.kexec) {
      const k = s.kexec;
      node(NODE.kexec, () => {
        w.property(PROP.segment, ranges([k.segment]));
        flag(PROP.preload, k.preload);
        w.propertyString(PROP.cmdline, k.cmdline);
      });
    }
    node(NODE.layout, () => {
      w.property(PROP.nodes, ranges(s.layout.nodes));
      w.propertyStringList(PROP.kinds, RUN_KINDS);
      const owners = [
        ...new Set(s.layout.runs.flatMap((r) => (r.owner === undefined ? [] : [r.owner]))),
      ];
      w.propertyStringList(PROP.owners, owners);
      w.property(
        PROP.runs,
        u64s(
          s.layout.runs.flatMap((r) => [
            r.base,
            r.size,
            RUN_KINDS.indexOf(r.kind),
            r.owner === undefined ? 0 : owners.indexOf(r.owner) + 1,
          ]),
        ),
      );
    });
  });
  return w.finish();
}

/**
 * Reads a payload tree. Unknown properties and nodes are ignored (a newer
 * writer may add them); a missing or malformed one it needs is an error.
 * @throws StatusError EINVAL naming what is wrong.
 */
export function decodeStatusPayload(bytes: Uint8Array): PublishedStatus {
  return readPayload(bytes, readTree);
}

/**
 * Only the handover history of a payload: what a booting generation carries
 * on from its predecessor's status (the rest it builds itself), checked as
 * decodeStatusPayload checks the tree.
 * @throws StatusError as decodeStatusPayload.
 */
export function decodeStatusHistory(bytes: Uint8Array): HandoverHistory {
  return readPayload(bytes, (r) => {
    checkCompatible(r.fdt);
    return readHandover(r, r.node(0, NODE.handover));
  });
}

/** Checks the tree whole, then reads it with `read`; any fault of the tree is a StatusError. */
function readPayload<T>(bytes: Uint8Array, read: (r: Reader) => T): T {
  let fdt: Fdt;
  try {
    fdt = Fdt.from(bytes);
    fdt.checkFull();
  } catch (err) {
    throw new StatusError('EINVAL', `status tree: ${(err as Error).message}`, { cause: err });
  }
  try {
    return read(new Reader(fdt));
  } catch (err) {
    if (err instanceof StatusError) throw err;
    if (err instanceof FdtError)
      throw new StatusError('EINVAL', `status tree: ${err.message}`, { cause: err });
    throw err;
  }
}

/** Typed, bounded getters over an untrusted tree. */
class Reader {
  constructor(readonly fdt: Fdt) {}

  node(parent: number, name: string): number {
    const off = this.optNode(parent, name);
    if (off < 0) throw bad(`no node ${name}`);
    return off;
  }

  optNode(parent: number, name: string): number {
    for (const c of this.fdt.subnodes(parent)) if (this.fdt.getName(c) === name) return c;
    return -1;
  }

  /** Children named `prefix@N`, in order, at most MAX_LIST. */
  children(parent: number, prefix: string): number[] {
    const out: number[] = [];
    for (const c of this.fdt.subnodes(parent)) {
      if (!this.fdt.getName(c).startsWith(`${prefix}@`)) continue;
      if (out.length >= MAX_LIST) throw bad(`more than ${MAX_LIST} ${prefix} nodes`);
      out.push(c);
    }
    return out;
  }

  u64s(off: number, name: string): number[] {
    const v = this.fdt.getProp(off, name);
    if (v.length % 8 !== 0) throw bad(`${name} is ${v.length} bytes, not u64 cells`);
    if (v.length / 8 > MAX_LIST * 4) throw bad(`${name} has ${v.length / 8} cells`);
    const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
    const out: number[] = [];
    for (let i = 0; i < v.length; i += 8) {
      const x = dv.getBigUint64(i);
      if (x > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`${name}[${i / 8}] is above 2^53`);
      out.push(Number(x));
    }
    return out;
  }

  tokens(off: number, name: string): string[] {
    const v = this.fdt.getProp(off, name);
    if (v.length % 8 !== 0 || v.length / 8 > MAX_LIST)
      throw bad(`${name} is not a list of u64 tokens`);
    const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
    const out: string[] = [];
    for (let i = 0; i < v.length; i += 8) out.push(dv.getBigUint64(i).toString());
    return out;
  }

  u64(off: number, name: string): number {
    const v = this.u64s(off, name);
    if (v.length !== 1) throw bad(`${name} holds ${v.length} values, not 1`);
    return v[0] as number;
  }

  optU64(off: number, name: string): number | undefined {
    return this.fdt.hasProp(off, name) ? this.u64(off, name) : undefined;
  }

  u32(off: number, name: string): number {
    return this.fdt.getU32(off, name);
  }

  str(off: number, name: string): string {
    const v = this.fdt.getProp(off, name);
    // An empty string is one NUL; getString refuses it as empty.
    return v.length === 1 && v[0] === 0 ? '' : this.fdt.getString(off, name);
  }

  optStr(off: number, name: string): string | undefined {
    return this.fdt.hasProp(off, name) ? this.str(off, name) : undefined;
  }

  strs(off: number, name: string): string[] {
    const list = this.fdt.getStringList(off, name);
    if (list.length > MAX_LIST) throw bad(`${name} has ${list.length} strings`);
    return list;
  }

  flag(off: number, name: string): boolean {
    return this.fdt.hasProp(off, name);
  }

  ranges(off: number, name: string): StatusRange[] {
    const v = this.u64s(off, name);
    if (v.length % 2 !== 0) throw bad(`${name} is not (base, size) pairs`);
    const out: StatusRange[] = [];
    for (let i = 0; i < v.length; i += 2)
      out.push({ base: v[i] as number, size: v[i + 1] as number });
    return out;
  }
}

/** `{ key: value }`, or nothing when the value is absent (so absent stays absent, not undefined). */
function optional<K extends string, V>(key: K, value: V | undefined): { [k in K]?: V } {
  return value === undefined ? {} : ({ [key]: value } as { [k in K]?: V });
}

function bad(why: string): StatusError {
  return new StatusError('EINVAL', `status tree: ${why}`);
}

function checkCompatible(fdt: Fdt): void {
  const compatible = fdt.getStringList(0, PROP.compatible);
  if (!compatible.includes(STATUS_COMPATIBLE)) {
    throw new StatusError(
      'EPROTONOSUPPORT',
      `status tree is ${JSON.stringify(compatible)}, not ${STATUS_COMPATIBLE}`,
    );
  }
}

function readTree(r: Reader): PublishedStatus {
  const fdt = r.fdt;
  checkCompatible(fdt);
  const bootIdBytes = fdt.getProp(0, PROP.bootId);
  if (bootIdBytes.length !== 16) throw bad(`boot-id is ${bootIdBytes.length} bytes, not 16`);
  const deviceSize = r.u64(0, PROP.deviceSize);
  return {
    generation: r.u64(0, PROP.generation),
    bootId: Buffer.from(bootIdBytes).toString('hex'),
    bootKind: r.str(0, PROP.bootKind),
    ownerPid: r.u32(0, PROP.ownerPid),
    bootedAtMs: r.u64(0, PROP.bootedAtMs),
    publishedAtMs: r.u64(0, PROP.publishedAtMs),
    publishIntervalMs: r.u32(0, PROP.publishIntervalMs),
    deviceSize,
    ...optional('coldReason', r.optStr(0, PROP.coldReason)),
    truncated: r.flag(0, PROP.truncated),
    handover: readHandover(r, r.node(0, NODE.handover)),
    pages: readPages(r, r.node(0, NODE.pages)),
    kho: (() => {
      const o = r.node(0, NODE.kho);
      return {
        enabled: r.flag(o, PROP.enabled),
        preservedBytes: r.u64(o, PROP.preservedBytes),
        preservedBlocks: r.u64(o, PROP.preservedBlocks),
        metadataPages: r.u64(o, PROP.metadataPages),
        subtrees: r.strs(o, PROP.subtrees),
        scratch: r.ranges(o, PROP.scratch),
      };
    })(),
    pkram: (() => {
      const o = r.node(0, NODE.pkram);
      return {
        enabled: r.flag(o, PROP.enabled),
        nodes: r.strs(o, PROP.nodes),
        preservedPages: r.u64(o, PROP.preservedPages),
      };
    })(),
    pmpools: r.children(r.node(0, NODE.pmpool), NODE.pool).map((o) => {
      const name = r.str(o, PROP.name);
      return {
        name: name === '' ? null : name,
        base: r.u64(o, PROP.base),
        size: r.u64(o, PROP.size),
        totalPages: r.u64(o, PROP.totalPages),
        usedPages: r.u64(o, PROP.usedPages),
      };
    }),
    reserveMem: r.children(r.node(0, NODE.reserveMem), NODE.region).map((o) => ({
      name: r.str(o, PROP.name),
      base: r.u64(o, PROP.base),
      size: r.u64(o, PROP.size),
    })),
    luo: readLuo(r),
    kexec: (() => {
      const o = r.optNode(0, NODE.kexec);
      if (o < 0) return null;
      const seg = r.ranges(o, PROP.segment);
      if (seg.length !== 1) throw bad('kexec segment is not one range');
      return {
        segment: seg[0] as StatusRange,
        preload: r.flag(o, PROP.preload),
        cmdline: r.str(o, PROP.cmdline),
      };
    })(),
    layout: readLayout(r, r.node(0, NODE.layout), deviceSize),
  };
}

function readHandover(r: Reader, o: number): HandoverHistory {
  const boundsUs = r.u64s(o, PROP.downtimeBoundsUs);
  const counts = r.u64s(o, PROP.downtimeCounts);
  if (counts.length !== boundsUs.length + 1)
    throw bad(`downtime-counts has ${counts.length} buckets for ${boundsUs.length} bounds`);
  for (let i = 1; i < boundsUs.length; i++) {
    if ((boundsUs[i] as number) <= (boundsUs[i - 1] as number))
      throw bad('downtime-bounds-us is not increasing');
  }
  const outcome = r.optStr(o, PROP.lastOutcome);
  let last: LastHandover | null = null;
  if (outcome !== undefined) {
    if (!OUTCOMES.includes(outcome as HandoverOutcome)) throw bad(`unknown outcome ${outcome}`);
    last = {
      outcome: outcome as HandoverOutcome,
      atMs: r.u64(o, PROP.lastAtMs),
      way: r.str(o, PROP.lastWay),
      fromGeneration: r.u64(o, PROP.lastFrom),
      toGeneration: r.u64(o, PROP.lastTo),
      ...optional('downtimeUs', r.optU64(o, PROP.lastDowntimeUs)),
      ...optional('reason', r.optStr(o, PROP.lastReason)),
    };
  }
  return {
    handovers: r.u64(o, PROP.handovers),
    failed: r.u64(o, PROP.failed),
    fallbacks: r.u64(o, PROP.fallbacks),
    refused: r.u64(o, PROP.refused),
    downtime: { boundsUs, counts, sumUs: r.u64(o, PROP.downtimeSumUs) },
    last,
  };
}

function readPages(r: Reader, o: number): PublishedStatus['pages'] {
  return {
    total: r.u64(o, PROP.total),
    free: r.u64(o, PROP.free),
    allocated: r.u64(o, PROP.allocated),
    reserved: r.u64(o, PROP.reserved),
    preserved: r.u64(o, PROP.preserved),
    freeByOrder: r.u64s(o, PROP.freeByOrder),
  };
}

function readLuo(r: Reader): PublishedStatus['luo'] {
  const o = r.optNode(0, NODE.luo);
  if (o < 0 || !r.flag(o, PROP.opened)) return null;
  const sessions: LuoSessionStatus[] = r.children(o, NODE.session).map((s) => {
    const tokens = r.tokens(s, PROP.tokens);
    const kinds = r.strs(s, PROP.kinds);
    const descriptions = r.strs(s, PROP.descriptions);
    if (kinds.length !== tokens.length || descriptions.length !== tokens.length)
      throw bad('a session lists tokens, kinds and descriptions of different lengths');
    return {
      name: r.str(s, PROP.name),
      direction: r.str(s, PROP.direction),
      files: tokens.map((t, i) => ({
        token: t,
        kind: kinds[i] as string,
        description: descriptions[i] as string,
      })),
    };
  });
  return { sessions };
}

/** The runs must be sorted, disjoint, inside the device and of known kinds. */
function readLayout(r: Reader, o: number, deviceSize: number): PublishedStatus['layout'] {
  const kinds = r.strs(o, PROP.kinds);
  const owners = r.strs(o, PROP.owners);
  const cells = r.u64s(o, PROP.runs);
  if (cells.length % 4 !== 0) throw bad('layout runs are not (base, size, kind, owner) cells');
  const runs: MemoryRun[] = [];
  let end = 0;
  for (let i = 0; i < cells.length; i += 4) {
    const base = cells[i] as number;
    const size = cells[i + 1] as number;
    const name = kinds[cells[i + 2] as number];
    const ownerIndex = cells[i + 3] as number;
    if (name === undefined || !RUN_KINDS.includes(name as RunKind))
      throw bad(`layout run ${i / 4} has an unknown kind`);
    if (ownerIndex > owners.length)
      throw bad(`layout run ${i / 4} names owner ${ownerIndex} of ${owners.length}`);
    if (size === 0 || base < end || base + size > deviceSize)
      throw bad(
        `layout run ${i / 4} [${hex(base)}, +${hex(size)}) is out of order or outside the device`,
      );
    end = base + size;
    const owner = ownerIndex === 0 ? undefined : owners[ownerIndex - 1];
    runs.push(
      owner === undefined
        ? { base, size, kind: name as RunKind }
        : { base, size, kind: name as RunKind, owner },
    );
  }
  const nodes = r.ranges(o, PROP.nodes);
  for (const n of nodes) {
    if (n.size === 0 || n.base + n.size > deviceSize)
      throw bad('a layout node is outside the device');
  }
  return { size: deviceSize, nodes, runs };
}
