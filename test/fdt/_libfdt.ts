/**
 * Interop helpers: the real dtc tools and a tiny C checker linked against
 * libfdt. Interop tests skip with a reason when a tool is missing, unless
 * LIVEKEXEC_INTEROP=1 (scripts/interop.sh), where a missing tool fails.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** True under scripts/interop.sh: a missing tool is a failure, not a skip. */
export const INTEROP_REQUIRED = process.env.LIVEKEXEC_INTEROP === '1';

function onPath(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).status === 0;
}

/** Why the given tools cannot be used here, or undefined when all are present. */
export function missingTools(tools: readonly string[]): string | undefined {
  const missing: string[] = [];
  for (const t of tools) {
    if (t === 'libfdt') {
      if (!onPath('cc') || !existsSync('/usr/include/libfdt.h'))
        missing.push('libfdt-dev (cc + libfdt.h)');
    } else if (!onPath(t)) missing.push(t);
  }
  return missing.length > 0
    ? `missing ${missing.join(', ')} (apt-get install device-tree-compiler libfdt-dev gcc)`
    : undefined;
}

/**
 * The `skip` option for an interop test: a reason when tools are missing and
 * interop is optional; false otherwise (the test then fails on the missing tool).
 */
export function skipUnless(tools: readonly string[]): string | false {
  const why = missingTools(tools);
  if (why === undefined || INTEROP_REQUIRED) return false;
  return `interop: ${why}`;
}

/** Throws when a tool is missing: used inside tests that must not skip. */
export function requireTools(tools: readonly string[]): void {
  const why = missingTools(tools);
  if (why !== undefined) throw new Error(`interop: ${why}`);
}

/** A scratch folder under the OS temp dir, removed at exit. */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `livekexec-${prefix}-`));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// For each file argument, one line: "OK" or libfdt's error name from fdt_check_full.
const CHECKER_C = `#include <stdio.h>
#include <stdlib.h>
#include <libfdt.h>

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		if (!f) { printf("NOFILE\\n"); continue; }
		fseek(f, 0, SEEK_END);
		long size = ftell(f);
		fseek(f, 0, SEEK_SET);
		void *buf = malloc(size > 0 ? size : 1);
		size_t got = fread(buf, 1, size, f);
		fclose(f);
		int err = fdt_check_full(buf, got);
		printf("%s\\n", err == 0 ? "OK" : fdt_strerror(err));
		free(buf);
	}
	return 0;
}
`;

let checkerPath: string | undefined;
let checkerDir: string | undefined;

function checker(): string {
  if (checkerPath !== undefined) return checkerPath;
  requireTools(['libfdt']);
  checkerDir = scratchDir('libfdt');
  const src = join(checkerDir, 'check_full.c');
  const bin = join(checkerDir, 'check_full');
  writeFileSync(src, CHECKER_C);
  execFileSync('cc', ['-O2', '-o', bin, src, '-lfdt'], { stdio: ['ignore', 'ignore', 'pipe'] });
  checkerPath = bin;
  return bin;
}

/** libfdt's fdt_check_full on each blob: "OK" or an error name such as "FDT_ERR_TRUNCATED". */
export function libfdtCheckFull(...blobs: Uint8Array[]): string[] {
  const bin = checker();
  const files = blobs.map((b, i) => {
    const p = join(checkerDir as string, `blob${i}.dtb`);
    writeFileSync(p, b);
    return p;
  });
  const out = execFileSync(bin, files, { encoding: 'utf8' });
  return out.trimEnd().split('\n');
}

/** `dtc -I dtb -O dts` of a blob (warnings go to stderr and are ignored). */
export function dtcToDts(blob: Uint8Array): string {
  const r = spawnSync('dtc', ['-q', '-I', 'dtb', '-O', 'dts', '-'], {
    input: blob,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`dtc -I dtb failed: ${r.stderr}`);
  return r.stdout;
}

/** `dtc -I dts -O dtb` of DTS text. */
export function dtcToDtb(dts: string): Uint8Array {
  const r = spawnSync('dtc', ['-q', '-I', 'dts', '-O', 'dtb', '-'], {
    input: dts,
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`dtc -I dts failed: ${r.stderr.toString()}`);
  return new Uint8Array(r.stdout);
}

/** `dtc -I dtb -O dtb` of a blob: dtc's own layout of the same tree. */
export function dtcRelayout(blob: Uint8Array): Uint8Array {
  const r = spawnSync('dtc', ['-q', '-I', 'dtb', '-O', 'dtb', '-'], {
    input: blob,
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`dtc -I dtb -O dtb failed: ${r.stderr.toString()}`);
  return new Uint8Array(r.stdout);
}

/** `fdtget` with the given arguments on a blob file. */
export function fdtget(
  file: string,
  args: string[],
): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('fdtget', [file, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
