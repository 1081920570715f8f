/**
 * What follows a failed try of a successor on trial: counts the failure in
 * the device's boot record and names the next program, the successor again
 * while it has tries left, else the last known-good one (the fallback), both
 * from the boot block's kexec metadata. Run inside the failing process
 * (trial.ts requires its bundle synchronously at exit) or by the trial loader.
 */
import { hex } from './base/hex.js';
import { SETUP } from './boot/abi.js';
import { decodeKexecMetadata, type KexecCommand } from './boot/kexec-metadata.js';
import { readPendingBootBlock } from './kernel/boot-block-read.js';
import { tryFailed } from './kexec/boot-counting.js';
import { ENV_FALLBACK_MAIN, ENV_MAIN } from './kexec/main-script.js';
import { readDeviceHeader, writeDeviceHeader } from './memory/header.js';
import { MappedDevice } from './memory/mapped.js';
import { ENV_TRIAL_FDS, withNodeOption } from './trial-options.js';

const ENV_BOOT = 'LIVEKEXEC_BOOT';
const ENV_DEVICE_FD = 'LIVEKEXEC_DEVICE_FD';

export interface NextTry {
  readonly command: KexecCommand;
  /** The environment to exec it with. */
  readonly env: Record<string, string>;
  /** What happened, for stderr. */
  readonly message: string;
}

/**
 * Counts the failed try (`reason`) of the handover `env` names and returns
 * what to exec next. `trialBoot` is the NODE_OPTIONS word that preloads
 * trial-boot.cjs, added for a retry and removed for the fallback.
 * @throws Error (or a livekexec error) when the handover is not on trial or
 *   cannot be read: the caller leaves it pending.
 */
export function decideNext(
  env: Readonly<Record<string, string | undefined>>,
  reason: string,
  trialBoot: string,
): NextTry {
  const spec = env[ENV_BOOT];
  const fdText = env[ENV_DEVICE_FD];
  const at = spec?.lastIndexOf('@') ?? -1;
  if (spec === undefined || fdText === undefined || !/^\d{1,9}$/.test(fdText) || at < 1) {
    throw new Error(`${ENV_BOOT} or ${ENV_DEVICE_FD} is missing or malformed`);
  }
  const bootBlock = Number.parseInt(spec.slice(at + 1), 16);
  // The mapping goes with the exec that follows; the descriptor (and its lock) stays.
  const device = MappedDevice.openFd(Number(fdText), spec.slice(0, at));
  {
    const header = readDeviceHeader(device);
    const block = readPendingBootBlock(device, header, bootBlock);
    const entry = block.setupData.find((d) => d.type === SETUP.KEXEC_METADATA);
    const counting = entry ? decodeKexecMetadata(entry.data).counting : null;
    const next = header.record ? tryFailed(header.record, bootBlock, reason, process.pid) : null;
    if (counting === null || next === null) {
      throw new Error(`the pending handover at ${hex(bootBlock)} is not on trial`);
    }
    writeDeviceHeader(device, { ...header, ownerPid: process.pid, record: next.record });
    const trial = next.record.trial!;
    const retry = next.next === 'retry';
    const command = retry ? counting.successor : counting.fallback;
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
    const options = withNodeOption(out.NODE_OPTIONS, trialBoot, retry);
    if (options !== '') out.NODE_OPTIONS = options;
    else delete out.NODE_OPTIONS;
    // The fallback runs the old release by its real path; its successors start what it was started as.
    const main = out[ENV_FALLBACK_MAIN];
    if (!retry && main) out[ENV_MAIN] = main;
    // The fallback is not on trial: nothing reads the list there.
    if (!retry) delete out[ENV_TRIAL_FDS];
    const message = retry
      ? `livekexec: try ${trial.tries - 1} of ${trial.maxTries} failed (${reason}); try ${trial.tries}`
      : `livekexec: try ${trial.tries} of ${trial.maxTries} failed (${reason}); falling back to ${command.argv.join(' ')}`;
    return { command, env: out, message };
  }
}
