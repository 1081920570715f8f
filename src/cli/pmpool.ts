/**
 * `livekexec pmpool status`: the persistent memory pools of a device, read
 * in place without taking the device (a running owner keeps it). Pools are
 * found from the device map's "reserved by kernel" ranges (written at each
 * kexec) and from `--pool` ranges given outright.
 */
import { closeSync, constants, openSync, readSync } from 'node:fs';
import type { Command } from 'commander';
import { PMPOOL } from '../boot/params.js';
import { type MemoryDevice, PAGE_SIZE, type PhysRange } from '../memory/device.js';
import { DeviceError } from '../memory/errors.js';
import { decodeDeviceHeader } from '../memory/header.js';
import { MappedDevice } from '../memory/mapped.js';
import { E820 } from '../memory/memmap-types.js';
import { formatInspectedPools, inspectPools } from '../pmpool/status.js';

export function registerPmpoolCommands(program: Command): void {
  const pmpool = program.command('pmpool').description('inspect persistent memory pools');
  pmpool
    .command('status')
    .description('pools on a device: pages used and free, largest free run (read-only)')
    .requiredOption('-d, --device <path>', 'device file')
    .option(
      '--pool <base,size>',
      'also inspect this range (pmpool= syntax, repeatable)',
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .option('--json', 'print a JSON object instead')
    .action((opts: { device: string; pool: string[]; json?: boolean }) =>
      status(opts.device, opts.pool, opts.json === true),
    );
}

function status(path: string, poolArgs: readonly string[], json: boolean): void {
  const peek = MappedDevice.peek(path);
  const header = decodeDeviceHeader(peek.page0, peek.size, path);
  const ranges: PhysRange[] = header.memmap
    .filter((r) => r.type === E820.RESERVED_KERN)
    .map((r) => ({ base: r.addr, size: r.size }));
  for (const text of poolArgs) {
    const v = PMPOOL.parse(text, '--pool');
    if (v.base + v.size > header.size) {
      throw new DeviceError('EINVAL', `--pool: ${text} ends past the ${header.size}-byte device`);
    }
    if (!ranges.some((r) => r.base <= v.base && v.base + v.size <= r.base + r.size)) {
      ranges.push({ base: v.base, size: v.size });
    }
  }
  const device = ReadOnlyFile.open(path, header.size);
  let pools: ReturnType<typeof inspectPools>;
  try {
    pools = inspectPools(device, ranges);
  } finally {
    device.close();
  }
  if (json) {
    const out = { path, generation: header.generation, owner: peek.ownerPid ?? null, pools };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return;
  }
  const lines = [
    `device:     ${path}`,
    `generation: ${header.generation}`,
    `owner:      ${peek.ownerPid === undefined ? 'none (not in use)' : `PID ${peek.ownerPid}`}`,
    ...formatInspectedPools(pools),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

/**
 * A device file read with pread, never mapped and never locked: each view is
 * a private copy, so nothing is ever written back. Enough for reading pool
 * metadata while the owner runs (a concurrent writer may show a torn value).
 */
class ReadOnlyFile implements MemoryDevice {
  readonly pageSize = PAGE_SIZE;
  readonly pages: number;
  #fd: number | null;
  #last: { phys: number; bytes: Uint8Array } | null = null;

  private constructor(
    readonly name: string,
    fd: number,
    readonly size: number,
  ) {
    this.#fd = fd;
    this.pages = size / PAGE_SIZE;
  }

  /** @throws DeviceError as open(2) fails. */
  static open(path: string, size: number): ReadOnlyFile {
    try {
      return new ReadOnlyFile(
        path,
        openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW),
        size,
      );
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new DeviceError('EIO', `open(${path}): ${e.code ?? e.message}`);
    }
  }

  bytes(phys: number, length: number): Uint8Array {
    const fd = this.#fd;
    if (fd === null) throw new DeviceError('EBADF', `${this.name} is closed`);
    if (!Number.isSafeInteger(phys) || !Number.isSafeInteger(length) || phys < 0 || length < 0) {
      throw new DeviceError('EFAULT', `${this.name}: bad range [${phys}, +${length})`);
    }
    if (phys + length > this.size) {
      throw new DeviceError('EFAULT', `${this.name}: [${phys}, +${length}) is past the end`);
    }
    const last = this.#last;
    if (last && last.phys === phys && last.bytes.length === length) return last.bytes;
    const bytes = new Uint8Array(length);
    for (let got = 0; got < length; ) {
      const n = readSync(fd, bytes, got, length - got, phys + got);
      if (n === 0) throw new DeviceError('EIO', `${this.name}: short read at ${phys + got}`);
      got += n;
    }
    this.#last = { phys, bytes };
    return bytes;
  }

  view(phys: number, length: number): DataView {
    const b = this.bytes(phys, length);
    return new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  flush(): void {}

  close(): void {
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
  }
}
