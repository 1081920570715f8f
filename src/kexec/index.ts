/**
 * kexec: load, exec and unload the next generation, and the process
 * platform behind it (execve in place, sd_notify).
 * @module livekexec/kexec
 */
export type { BootCounting, KexecCommand } from '../boot/kexec-metadata.js';
export { KexecError, type KexecErrorCode } from './errors.js';
export {
  Kexec,
  type KexecHost,
  type KexecLoadOptions,
  type KexecPlatform,
  type LoadedImage,
} from './kexec.js';
export { ProcessPlatform, type ProcessPlatformOptions } from './process-platform.js';
export { notifyReady, notifyReloading, sdNotify } from './sd-notify.js';
