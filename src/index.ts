/**
 * livekexec: Kexec HandOver for processes.
 *
 * A real process boots with `await boot({ device, size, cmdline })`; the
 * emulated machine is `Machine.create({ size }).boot(cmdline)`. Both give a
 * `Kernel` with `kho`, `pkram`, `pmpool`, `liveupdate`, `kexec` and the page
 * allocator. Every layer is also reachable through its subpath export
 * (`livekexec/fdt`, `livekexec/memory`, `livekexec/boot`, `livekexec/mm`,
 * `livekexec/kho`, `livekexec/pmpool`, `livekexec/pkram`, `livekexec/luo`,
 * `livekexec/kexec`).
 */
export { LivekexecError } from './base/errors.js';
export { BootError, type BootErrorCode } from './boot/errors.js';
export { FdtError, type FdtErrorCode } from './fdt/errors.js';
export * as fdt from './fdt/index.js';
export type { BootInfo, BootKind } from './kernel/boot-info.js';
export {
  Kernel,
  type KernelPlatform,
  type KernelStatus,
  type KernelTrial,
  type UpgradeStatus,
} from './kernel/kernel.js';
export type { UpgradeOptions } from './kernel/upgrade.js';
export { KexecError, type KexecErrorCode } from './kexec/errors.js';
export type { ListenFd } from './kexec/fd-store.js';
export type {
  KexecLoadOptions,
  LoadedImage,
  SuccessorStart,
  TrialOptions,
} from './kexec/kexec.js';
export { KhoError, type KhoErrorCode } from './kho/errors.js';
export { LuoError, type LuoErrorCode } from './luo/errors.js';
export { Machine, type MachineOptions } from './machine.js';
export type { BootRecord, TrialRecord, UpgradeOutcome } from './memory/boot-record.js';
export { type MemoryDevice, PAGE_SIZE } from './memory/device.js';
export { DeviceError, type DeviceErrorCode, GeneralProtectionFault } from './memory/errors.js';
export { HeapDevice } from './memory/heap.js';
export { MappedDevice } from './memory/mapped.js';
export { PageAllocError, type PageAllocErrorCode } from './mm/errors.js';
export { type Folio, folioPages, folioPhys, folioSize } from './mm/folio.js';
export { PkramError, type PkramErrorCode } from './pkram/errors.js';
export { PmpoolError, type PmpoolErrorCode } from './pmpool/errors.js';
export {
  boot,
  defaultDevicePath,
  defaultRelease,
  listenFds,
  type ProcessBootOptions,
  type ProcessKernel,
  processPlatform,
  receivedFds,
} from './process.js';
export { StatusError, type StatusErrorCode } from './status/errors.js';
export type { PromClientMetric } from './status/metrics.js';
export type {
  HandoverHistory,
  HandoverOutcome,
  LastHandover,
  MemoryLayout,
  MemoryRun,
  PublishedStatus,
  RunKind,
} from './status/model.js';
