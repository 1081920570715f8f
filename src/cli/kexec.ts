/**
 * `livekexec kexec --device PATH -- PROGRAM [ARGS...]`: starts PROGRAM as the
 * next generation on a device, in place (this process execve's it, so it
 * keeps the PID). When a handover is pending (committed by a generation whose
 * successor never booted), PROGRAM boots from it; otherwise this command
 * boots a generation itself, loads PROGRAM and execs it, like kexec -l / -e.
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { hex } from '../base/hex.js';
import { ProcessPlatform } from '../kexec/process-platform.js';
import { decodeDeviceHeader, readDeviceHeader } from '../memory/header.js';
import { MappedDevice } from '../memory/mapped.js';
import { boot } from '../process.js';

export function registerKexecCommand(program: Command): void {
  program
    .command('kexec')
    .description(
      'exec PROGRAM in place as the next generation on a device (resuming a pending handover if there is one)',
    )
    .requiredOption(
      '-d, --device <path>',
      'device file (created and formatted when it does not exist)',
    )
    .option(
      '-s, --size <size>',
      'device size, memparse syntax: of a new device (default 64M); an existing one must have it',
    )
    .option('-c, --cmdline <text>', "the successor's command line", '')
    .argument('<program>', 'the program to run (a .js/.mjs file runs under node)')
    .argument('[args...]', 'its arguments')
    .action(
      async (
        prog: string,
        args: string[],
        opts: { device: string; size?: string; cmdline: string },
      ) => kexec(prog, args, opts),
    );
}

async function kexec(
  prog: string,
  args: string[],
  opts: { device: string; size?: string; cmdline: string },
): Promise<void> {
  const pending = pendingBootBlock(opts.device);
  if (pending !== 0) {
    // Resume: the committed boot block is the successor's; only exec it. A device
    // with a pending handover was made whole by livekexec: holes mean damage, never filled.
    const device = MappedDevice.open(opts.device, { fillHoles: false });
    const header = readDeviceHeader(device);
    const platform = new ProcessPlatform({ device });
    process.stderr.write(`livekexec: resuming the handover pending at ${hex(pending)}\n`);
    platform.execute({
      cmdline: opts.cmdline,
      segment: { base: header.bootBlock, size: 0 },
      inArena: false,
      bootId: new Uint8Array(16),
      generation: header.generation + 1,
      program: prog,
      argv: args,
      preload: false,
      successor: 'in-place',
      counting: null,
    });
  }
  const kernel = await boot({
    device: opts.device,
    size: opts.size,
    create: opts.size !== undefined,
  });
  // PROGRAM need not use livekexec, and this command is no program to fall back to.
  kernel.kexec.load({ cmdline: opts.cmdline, program: prog, argv: args, trial: false });
  kernel.kexec.exec();
}

/**
 * The pending boot block of an existing device, read without taking it (0
 * when none, or when there is no file yet: boot() creates it). A file that
 * is there but is not a device is refused here, before anything maps or
 * allocates it; an empty or all-zero one is left for boot() to format.
 * @throws DeviceError as MappedDevice.peek and decodeDeviceHeader.
 */
function pendingBootBlock(path: string): number {
  if (!existsSync(path)) return 0;
  const peek = MappedDevice.peek(path);
  if (peek.page0.every((b) => b === 0)) return 0;
  return decodeDeviceHeader(peek.page0, peek.size, path).bootBlock;
}
