/**
 * What `livekexec status`, `iomem` and `map` show of a device, read in
 * place (pread, no lock, no mapping) whether a generation runs on it or
 * not: the header, the owner, the status the running (or last) generation
 * published, a pending handover, and the memory layout.
 */
import { readdirSync, readlinkSync, statSync } from 'node:fs';
import { type DeviceHandoverStatus, inspectDeviceHandover } from '../kho/status.js';
import { PAGE_SIZE } from '../memory/device.js';
import { DeviceError } from '../memory/errors.js';
import { type DeviceHeader, decodeDeviceHeader, readDeviceHeader } from '../memory/header.js';
import { MappedDevice } from '../memory/mapped.js';
import { E820 } from '../memory/memmap-types.js';
import { ReadonlyDevice } from '../memory/readonly.js';
import { type InspectedPool, inspectPools } from '../pmpool/status.js';
import { findStatusArea, readArea } from '../status/area.js';
import { StatusError } from '../status/errors.js';
import { type Paint, paintRuns } from '../status/layout.js';
import type { MemoryLayout, MemoryRun, PublishedStatus, RunKind } from '../status/model.js';
import { decodeStatusPayload } from '../status/payload.js';

export interface DeviceStatusView {
  readonly path: string;
  readonly header: DeviceHeader;
  /** The PID holding the device's lock: a live generation. */
  readonly owner: number | null;
  /** The last status published there, if one can be read. */
  readonly status: PublishedStatus | null;
  /** Why there is no status to show. */
  readonly statusError?: string;
  /** The status is the running generation's (same generation and boot id as the header, owner alive). */
  readonly live: boolean;
  /** A handover committed and not yet taken. */
  readonly pending: DeviceHandoverStatus | null;
  readonly pools: readonly InspectedPool[];
  /** From the running generation's status when live, else from the device's own map. */
  readonly layout: MemoryLayout;
  readonly layoutSource: 'published' | 'device map';
}

/** @throws DeviceError (ENOENT, ELOOP, EINVAL, EPERM, ENODEV, ...) when the path holds no readable device. */
export function readDeviceStatus(path: string): DeviceStatusView {
  const peek = MappedDevice.peek(path);
  const dev = ReadonlyDevice.open(path);
  try {
    const header = readDeviceHeader(dev);
    const owner = peek.ownerPid ?? null;
    let status: PublishedStatus | null = null;
    let statusError: string | undefined;
    try {
      const area = findStatusArea(header.memmap, dev.size);
      if (!area)
        throw new StatusError(
          'ENOENT',
          'the device has no status area (no generation has published one)',
        );
      const read = readArea(dev, area);
      if (!read.ok) throw read.error;
      status = decodeStatusPayload(read.payload);
    } catch (err) {
      if (!(err instanceof StatusError)) throw err;
      statusError = err.message;
    }
    const live =
      owner !== null &&
      status !== null &&
      status.generation === header.generation &&
      status.bootId === header.bootId;
    const pending = header.bootBlock !== 0 ? inspectDeviceHandover(dev) : null;
    const pools = inspectPools(
      dev,
      header.memmap
        .filter((r) => r.type === E820.RESERVED_KERN)
        .map((r) => ({ base: r.addr, size: r.size })),
    );
    const layout = live && status ? status.layout : restingLayout(header, pools, pending);
    return {
      path,
      header,
      owner,
      status,
      ...(statusError === undefined ? {} : { statusError }),
      live,
      pending,
      pools,
      layout,
      layoutSource: live ? 'published' : 'device map',
    };
  } finally {
    dev.close();
  }
}

const KIND_OF_TYPE: Record<number, RunKind> = {
  [E820.USABLE]: 'free',
  [E820.RESERVED]: 'reserved',
  [E820.RESERVED_KERN]: 'pmpool',
  [E820.PRESERVED]: 'preserved',
  [E820.SCRATCH]: 'scratch',
  [E820.STATUS]: 'status',
};

/**
 * A device no generation runs on: its map says what is kept (pools,
 * preserved extents, scratch, the status area); everything usable is free.
 */
export function restingLayout(
  header: DeviceHeader,
  pools: readonly InspectedPool[],
  pending: DeviceHandoverStatus | null,
): MemoryLayout {
  const runs: MemoryRun[] = [];
  let at = 0;
  for (const r of header.memmap) {
    if (r.addr > at) runs.push({ base: at, size: r.addr - at, kind: 'reserved' });
    runs.push({ base: r.addr, size: r.size, kind: KIND_OF_TYPE[r.type] ?? 'reserved' });
    at = r.addr + r.size;
  }
  if (at < header.size) runs.push({ base: at, size: header.size - at, kind: 'reserved' });
  const paints: Paint[] = [{ base: 0, size: PAGE_SIZE, kind: 'header' }];
  for (const p of pools) if (p.ok) paints.push({ base: p.base, size: p.size, kind: 'pmpool' });
  if (pending && header.bootBlock !== 0) {
    paints.push({ base: header.bootBlock, size: PAGE_SIZE, kind: 'boot-block', owner: 'pending' });
  }
  return {
    size: header.size,
    nodes: [{ base: 0, size: header.size }],
    runs: paintRuns(runs, paints),
  };
}

/**
 * The livekexec devices process `pid` has open or mapped (from
 * /proc/PID/fd and /proc/PID/map_files).
 * @throws DeviceError ESRCH when there is no such process, EACCES when its
 *   descriptors cannot be read, ENOENT when it holds no device.
 */
export function devicesOfPid(pid: number): string[] {
  let links: string[];
  try {
    links = readdirSync(`/proc/${pid}/fd`).map((n) => `/proc/${pid}/fd/${n}`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DeviceError('ENOENT', `no process ${pid}`);
    throw new DeviceError('EACCES', `cannot read the descriptors of process ${pid}: ${code}`);
  }
  const found = new Set<string>();
  for (const link of links) {
    let target: string;
    try {
      target = readlinkSync(link);
      if (!target.startsWith('/') || !statSync(target).isFile() || !isDevice(target)) continue;
    } catch {
      continue;
    }
    found.add(target);
  }
  if (found.size === 0) throw new DeviceError('ENOENT', `process ${pid} holds no livekexec device`);
  return [...found];
}

/** Whether `path` holds a livekexec device header (read, never locked). */
function isDevice(path: string): boolean {
  const d = ReadonlyDevice.open(path);
  try {
    decodeDeviceHeader(d.bytes(0, Math.min(d.size, PAGE_SIZE)), d.size, path);
    return true;
  } catch {
    return false;
  } finally {
    d.close();
  }
}
