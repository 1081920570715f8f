import type { Stats } from 'node:fs';
import { DeviceError } from './errors.js';

/**
 * The one rule every use of a device file follows, owner or reader alike:
 * a regular file owned by this user and writable by no one else, so another
 * user can neither plant a device nor share one.
 * @throws DeviceError EINVAL not a regular file; EPERM another user's, or group- or world-writable.
 */
export function checkDeviceFile(path: string, st: Stats): Stats {
  if (!st.isFile()) throw new DeviceError('EINVAL', `${path} is not a regular file`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new DeviceError(
      'EPERM',
      `${path} is owned by uid ${st.uid}, not by this user (uid ${uid})`,
    );
  }
  if (st.mode & 0o022) {
    throw new DeviceError(
      'EPERM',
      `${path} is group- or world-writable (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); chmod 600 it`,
    );
  }
  return st;
}
