/**
 * Random bytes for identities (device UUIDs, PKRAM boot ids), read from
 * /dev/urandom. Not node:crypto: importing it loads some 25 internal modules
 * (streams, ciphers, keys), a few ms of every successor's start-up for 16
 * bytes. Where /dev/urandom cannot be read, node:crypto it is.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';

export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  let fd: number | null = null;
  try {
    fd = openSync('/dev/urandom', 'r');
    let done = 0;
    while (done < n) {
      const got = readSync(fd, out, done, n - done, null);
      if (got <= 0) throw new Error('short read');
      done += got;
    }
    return out;
  } catch {
    const crypto = createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto');
    return new Uint8Array(crypto.randomBytes(n));
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/** An RFC 9562 version 4 UUID, lower-case. */
export function randomUUID(): string {
  const b = randomBytes(16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
