/** kexec: load, exec and unload the next generation: `livekexec/kexec`. */
export { KexecError, type KexecErrorCode } from './errors.js';
export {
  Kexec,
  type KexecHost,
  type KexecLoadOptions,
  type KexecPlatform,
  type LoadedImage,
} from './kexec.js';
export { locateMemHole, type PhysRange } from './placement.js';
export { ProcessPlatform, type ProcessPlatformOptions } from './process-platform.js';
export { notifyReady, notifyReloading, sdNotify } from './sd-notify.js';
