/**
 * `livekexec pmpool status`: the persistent memory pools of a device, read
 * in place without taking the device (a running owner keeps it). Pools are
 * found from the device map's "reserved by kernel" ranges (written at each
 * boot and kexec) and from `--pool` ranges given outright.
 */
import type { Command } from 'commander';
import { PMPOOL } from '../boot/params.js';
import { PAGE_SIZE, type PhysRange } from '../memory/device.js';
import { DeviceError } from '../memory/errors.js';
import { decodeDeviceHeader } from '../memory/header.js';
import { MappedDevice } from '../memory/mapped.js';
import { E820 } from '../memory/memmap-types.js';
import { ReadonlyDevice } from '../memory/readonly.js';
import { metadataPages } from '../pmpool/abi.js';
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
    if (v.base % PAGE_SIZE !== 0 || v.size % PAGE_SIZE !== 0) {
      throw new DeviceError('EINVAL', `--pool: ${text} is not whole ${PAGE_SIZE}-byte pages`);
    }
    if (v.size / PAGE_SIZE <= metadataPages(v.size / PAGE_SIZE)) {
      throw new DeviceError(
        'EINVAL',
        `--pool: ${text} cannot hold a pool's metadata and one data page`,
      );
    }
    if (v.base + v.size > header.size) {
      throw new DeviceError('EINVAL', `--pool: ${text} ends past the ${header.size}-byte device`);
    }
    if (!ranges.some((r) => r.base <= v.base && v.base + v.size <= r.base + r.size)) {
      ranges.push({ base: v.base, size: v.size });
    }
  }
  const device = ReadonlyDevice.open(path);
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
