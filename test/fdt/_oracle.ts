/**
 * Builds and runs test/fdt/libfdt-oracle.c against the system's libfdt, so
 * tests can ask libfdt itself which code a blob gets. Needs a C compiler and
 * libfdt-dev; `oracleAvailability()` says why it cannot run.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../_helpers/paths.js';

const SOURCE = join(REPO_ROOT, 'test', 'fdt', 'libfdt-oracle.c');

/** Whether interop tools must be present (CI's interop step sets it). */
export const INTEROP_REQUIRED = process.env['LIVEKEXEC_INTEROP'] === '1';

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** undefined when the oracle can be built, else the reason it cannot. */
export function oracleAvailability(): string | undefined {
  if (!has('cc')) return 'no C compiler (cc)';
  if (!existsSync('/usr/include/libfdt.h')) return 'libfdt.h missing (apt-get install libfdt-dev)';
  return undefined;
}

/** Compile the oracle; returns its path and a cleanup function. */
export function buildOracle(): { bin: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'livekexec-oracle-'));
  const bin = join(dir, 'oracle');
  execFileSync('cc', ['-O1', '-o', bin, SOURCE, '-lfdt'], { stdio: 'pipe' });
  return { bin, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** libfdt's line for each blob, in order. */
export function runOracle(bin: string, blobs: Uint8Array[]): string[] {
  const parts: Buffer[] = [];
  for (const b of blobs) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    parts.push(len, Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  }
  const out = execFileSync(bin, { input: Buffer.concat(parts), maxBuffer: 1 << 30 });
  const lines = out.toString('utf8').split('\n');
  lines.pop();
  if (lines.length !== blobs.length) {
    throw new Error(`oracle answered ${lines.length} of ${blobs.length} blobs`);
  }
  return lines;
}
