/**
 * The trial loader: what a failed try of a successor on trial execs in its
 * place (same PID, the device descriptor and the preserved ones still
 * open), as a bootloader that counts tries. It counts the failure in the
 * device's boot record and execs the successor again while it has tries
 * left, else the last known-good program (the fallback), which boots the
 * same, untouched handover. Both commands come from the boot block's kexec
 * metadata. When anything is wrong it says so and exits 1: the handover
 * stays pending, and the next boot() of the device takes it.
 */
import { SETUP } from './boot/abi.js';
import { decodeKexecMetadata } from './boot/kexec-metadata.js';
import { readPendingBootBlock } from './kernel/boot-block-read.js';
import { getProcLibc } from './kexec/_libc.js';
import { tryFailed } from './kexec/boot-counting.js';
import { ENV_BOOT, ENV_DEVICE_FD, parseBootSpec } from './kexec/process-platform.js';
import { readDeviceHeader, writeDeviceHeader } from './memory/header.js';
import { MappedDevice } from './memory/mapped.js';
import { ENV_TRIAL_FAILED, trialImportOption, withNodeOption } from './trial.js';

function main(): void {
  const env = process.env;
  const reason = env[ENV_TRIAL_FAILED] ?? 'unknown failure';
  delete env[ENV_TRIAL_FAILED];
  const spec = env[ENV_BOOT];
  const fdText = env[ENV_DEVICE_FD];
  if (spec === undefined || fdText === undefined || !/^\d{1,9}$/.test(fdText)) {
    throw new Error(`${ENV_BOOT} or ${ENV_DEVICE_FD} is missing`);
  }
  const { path, bootBlock } = parseBootSpec(spec);
  const device = MappedDevice.openFd(Number(fdText), path);
  const header = readDeviceHeader(device);
  const block = readPendingBootBlock(device, header, bootBlock);
  const entry = block.setupData.find((d) => d.type === SETUP.KEXEC_METADATA);
  const counting = entry ? decodeKexecMetadata(entry.data).counting : null;
  const next = header.record ? tryFailed(header.record, bootBlock, reason, process.pid) : null;
  if (counting === null || next === null) {
    throw new Error(`the pending handover at 0x${bootBlock.toString(16)} is not on trial`);
  }
  writeDeviceHeader(device, { ...header, ownerPid: process.pid, record: next.record });
  const trial = next.record.trial!;
  const command = next.next === 'retry' ? counting.successor : counting.fallback;
  const trialBoot = trialImportOption(new URL('./trial-boot.js', import.meta.url).href);
  const options = withNodeOption(env.NODE_OPTIONS, trialBoot, next.next === 'retry');
  if (options === '') delete env.NODE_OPTIONS;
  else env.NODE_OPTIONS = options;
  process.stderr.write(
    next.next === 'retry'
      ? `livekexec: try ${trial.tries - 1} of ${trial.maxTries} failed (${reason}); try ${trial.tries}\n`
      : `livekexec: try ${trial.tries} of ${trial.maxTries} failed (${reason}); falling back to ${command.argv.join(' ')}\n`,
  );
  if (command.cwd !== '') process.chdir(command.cwd);
  const lines = Object.entries(env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]));
  const libc = getProcLibc();
  libc.execve(command.file, command.argv, lines);
  throw new Error(`execve(${command.file}) failed (errno ${libc.errno()})`);
}

try {
  main();
} catch (err) {
  process.stderr.write(
    `livekexec trial loader: ${err instanceof Error ? err.message : String(err)}; the handover stays pending for the next boot of the device\n`,
  );
  process.exitCode = 1;
}
