/**
 * `npm run bench -- pmpool [--ms=N]`: alloc+release pairs per second for 1, 8
 * and 512 pages (4 KiB, 32 KiB, 2 MiB), in the same run:
 * - our CmaPool on a heap device (fail-safe: intent record + bitmap in the pool),
 * - libpmemobj's pmemobj_alloc/pmemobj_free into an oid inside the pool (fail-safe),
 *   through bench/c/pmemobj_bench.c, built here when libpmemobj-dev is installed,
 * - @thi.ng/malloc's MemPool on an ArrayBuffer (no crash promise; a volatile reference).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemPool } from '@thi.ng/malloc';
import { PAGE_SIZE } from '../src/memory/device.js';
import { HeapDevice } from '../src/memory/heap.js';
import { CmaPool } from '../src/pmpool/cma.js';
import { rate, table } from './_harness.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SIZES = [1, 8, 512];
const POOL_PAGES = 32768; // 128 MiB
const PMEMOBJ_POOL_BYTES = 256 * 2 ** 20;
/** Pairs per timed call, so the clock read does not dominate a pair. */
const BATCH = 256;

/** The options run() reads (`--NAME` or `--NAME=VALUE`); main.ts refuses others. */
export const options: readonly string[] = ['ms'];

export async function run(args: string[]): Promise<void> {
  const ms = Number(args.find((a) => a.startsWith('--ms='))?.slice(5) ?? 1000);
  const harness = buildPmemobjHarness();
  const rows: (string | number)[][] = [];
  for (const pages of SIZES) {
    const ours = pmpoolRate(pages, ms);
    const theirs = harness === null ? null : pmemobjRate(harness, pages, ms);
    const thing = thingRate(pages, ms);
    rows.push([
      `${pages} (${(pages * PAGE_SIZE) / 1024} KiB)`,
      ours,
      theirs ?? 'absent',
      theirs === null ? '-' : `${(ours / theirs).toFixed(1)}x`,
      thing,
      `${(ours / thing).toFixed(2)}x`,
    ]);
  }
  table(
    [
      'pages',
      'pmpool pairs/s',
      'libpmemobj pairs/s',
      'pmpool/pmemobj',
      '@thi.ng/malloc pairs/s',
      'pmpool/thi.ng',
    ],
    rows,
  );
  process.stdout.write(
    `(alloc+release pairs; pmpool on a heap device of ${POOL_PAGES} pages; libpmemobj on a ${PMEMOBJ_POOL_BYTES >> 20} MiB pool file in ${poolDir()}; ${ms} ms per cell)\n`,
  );
}

function pmpoolRate(pages: number, ms: number): number {
  const device = new HeapDevice((POOL_PAGES + 1) * PAGE_SIZE);
  const pool = CmaPool.format(device, PAGE_SIZE, POOL_PAGES * PAGE_SIZE);
  return (
    rate(() => {
      for (let i = 0; i < BATCH; i++) {
        const r = pool.alloc(pages);
        if (r === null) throw new Error('pmpool bench: pool full');
        pool.release(r.pfn, pages);
      }
    }, ms) * BATCH
  );
}

function thingRate(pages: number, ms: number): number {
  const heap = new MemPool({ buf: new ArrayBuffer(POOL_PAGES * PAGE_SIZE), align: 16 });
  const bytes = pages * PAGE_SIZE;
  return (
    rate(() => {
      for (let i = 0; i < BATCH; i++) {
        const addr = heap.malloc(bytes);
        if (addr === 0) throw new Error('@thi.ng/malloc bench: pool full');
        heap.free(addr);
      }
    }, ms) * BATCH
  );
}

/** Builds the C harness into bench/.build/; null (with a note) when libpmemobj is absent. */
function buildPmemobjHarness(): string | null {
  const src = join(ROOT, 'bench', 'c', 'pmemobj_bench.c');
  const out = join(ROOT, 'bench', '.build', 'pmemobj_bench');
  try {
    mkdirSync(dirname(out), { recursive: true });
    execFileSync('cc', ['-O2', '-Wall', '-o', out, src, '-lpmemobj'], { stdio: 'pipe' });
    return out;
  } catch (err) {
    const detail = (err as { stderr?: Buffer }).stderr?.toString().split('\n')[0] ?? String(err);
    process.stdout.write(
      `libpmemobj: not built (${detail.trim()}); install libpmemobj-dev to compare. Running ours only.\n`,
    );
    return null;
  }
}

function poolDir(): string {
  return existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
}

function pmemobjRate(harness: string, pages: number, ms: number): number | null {
  const file = join(poolDir(), `livekexec-pmemobj-bench-${process.pid}.pool`);
  try {
    const text = execFileSync(
      harness,
      [file, String(PMEMOBJ_POOL_BYTES), String(pages * PAGE_SIZE), String(ms)],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const m = /^pairs (\d+)/m.exec(text);
    if (m === null) throw new Error(`unexpected output: ${text}`);
    return Number(m[1]);
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    process.stdout.write(`libpmemobj: run failed: ${(e.stderr ?? e.message).trim()}\n`);
    return null;
  }
}
