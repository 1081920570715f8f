/**
 * A real process killed by SIGKILL in the middle of its allocation loop, on a
 * shared mapping: the parent re-attaches and finds no page handed out twice,
 * at most one unlogged allocation leaked, and a clean pool after repair.
 *
 * The child logs what it owns in page 0 of the device (outside the pool):
 * slot = [state, pfn, count], state 1 = owned (written after alloc returned),
 * 2 = being released (written before release is called).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { PAGE_SIZE } from '../../src/memory/device.js';
import { MappedDevice } from '../../src/memory/mapped.js';
import { CmaPool } from '../../src/pmpool/cma.js';

const DIR = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'livekexec-pmpool-'));
const PATH = join(DIR, 'device');
const POOL_BASE = 16 * PAGE_SIZE;
const POOL_PAGES = 2048;
const DEVICE_SIZE = POOL_BASE + POOL_PAGES * PAGE_SIZE;
const SLOTS = 48;
const ROUNDS = 8;

after(() => rmSync(DIR, { recursive: true, force: true }));

const CHILD = `
import { MappedDevice } from ${JSON.stringify(new URL('../../src/memory/mapped.js', import.meta.url).href)};
import { CmaPool } from ${JSON.stringify(new URL('../../src/pmpool/cma.js', import.meta.url).href)};
const [path, base, size, slots, seed] = process.argv.slice(1);
const dev = MappedDevice.open(path);
const pool = CmaPool.attach(dev, Number(base), Number(size));
let x = Number(seed) >>> 0 || 1;
const rnd = (n) => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x % n; };
const slot = (i) => dev.view(i * 12, 12);
process.stdout.write('ready\\n');
for (;;) {
  const i = rnd(Number(slots));
  const s = slot(i);
  if (s.getUint32(0, true) === 0) {
    const r = pool.alloc(1 + rnd(40), 1 << rnd(3));
    if (r === null) continue;
    s.setUint32(4, r.pfn, true);
    s.setUint32(8, r.count, true);
    s.setUint32(0, 1, true);
  } else if (s.getUint32(0, true) === 1) {
    s.setUint32(0, 2, true);
    if (!pool.release(s.getUint32(4, true), s.getUint32(8, true))) process.exit(3);
    s.setUint32(0, 0, true);
  }
}
`;

function runAndKill(seed: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        CHILD,
        PATH,
        String(POOL_BASE),
        String(POOL_PAGES * PAGE_SIZE),
        String(SLOTS),
        String(seed),
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.stdout.once('data', () => {
      // Let it run a while: long enough for thousands of operations.
      setTimeout(() => child.kill('SIGKILL'), 30 + (seed % 50));
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve();
      else reject(new Error(`child exited with ${code}: ${err}`));
    });
  });
}

interface Slot {
  state: number;
  pfn: number;
  count: number;
}

function readSlots(dev: MappedDevice): Slot[] {
  const out: Slot[] = [];
  for (let i = 0; i < SLOTS; i++) {
    const v = dev.view(i * 12, 12);
    out.push({
      state: v.getUint32(0, true),
      pfn: v.getUint32(4, true),
      count: v.getUint32(8, true),
    });
  }
  return out;
}

test('a child SIGKILLed mid-loop on a shared mapping leaves a pool with no page owned twice', async () => {
  const dev0 = MappedDevice.open(PATH, { create: true, size: DEVICE_SIZE });
  CmaPool.format(dev0, POOL_BASE, POOL_PAGES * PAGE_SIZE);
  dev0.close();
  let pendingSeen = 0;
  for (let round = 0; round < ROUNDS; round++) {
    await runAndKill(0x9e3779b9 ^ (round * 7919));
    const dev = MappedDevice.open(PATH);
    try {
      const probe = CmaPool.attach(dev, POOL_BASE, POOL_PAGES * PAGE_SIZE, { repair: false });
      if (probe.attachReport?.intent) pendingSeen++;
      const slots = readSlots(dev);
      const owner = new Int32Array(POOL_PAGES).fill(-1);
      slots.forEach((s, i) => {
        if (s.state !== 1) return;
        for (let pfn = s.pfn; pfn < s.pfn + s.count; pfn++) {
          const k = pfn - POOL_BASE / PAGE_SIZE;
          assert.equal(owner[k], -1, `page ${pfn} owned by slots ${owner[k]} and ${i}`);
          owner[k] = i;
          assert.equal(probe.isAllocated(pfn), true, `owned page ${pfn} is free before repair`);
        }
      });
      const pool = CmaPool.attach(dev, POOL_BASE, POOL_PAGES * PAGE_SIZE);
      assert.equal(pool.check().ok, true);
      // Finish releases the child was killed in: all or nothing after repair.
      for (const [i, s] of slots.entries()) {
        if (s.state !== 2) continue;
        const used = Array.from({ length: s.count }, (_, j) => pool.isAllocated(s.pfn + j));
        assert.ok(
          used.every((u) => u === used[0]),
          `slot ${i}: half-released after repair`,
        );
        if (used[0]) assert.equal(pool.release(s.pfn, s.count), true);
        dev.view(i * 12, 4).setUint32(0, 0, true);
      }
      // What is used and not owned: at most one allocation that returned but was not logged.
      const first = pool.metadataPages;
      let extra = 0;
      let runs = 0;
      let prev = false;
      for (let k = first; k < POOL_PAGES; k++) {
        const leaked = pool.isAllocated(POOL_BASE / PAGE_SIZE + k) && owner[k] === -1;
        if (leaked) {
          extra++;
          if (!prev) runs++;
        }
        prev = leaked;
      }
      assert.ok(runs <= 1 && extra <= 40, `round ${round}: ${extra} pages in ${runs} runs leaked`);
      if (extra > 0) {
        for (let k = first; k < POOL_PAGES; k++) {
          const pfn = POOL_BASE / PAGE_SIZE + k;
          if (pool.isAllocated(pfn) && owner[k] === -1) pool.release(pfn, 1);
        }
      }
      const st = pool.stats();
      const owned = owner.reduce((n, o) => n + (o >= 0 ? 1 : 0), 0);
      assert.equal(st.usedPages, st.metadataPages + owned, 'used = metadata + logged pages');
    } finally {
      dev.close();
    }
  }
  // Not asserted (timing decides it), only reported: how often the kill landed mid-operation.
  process.stdout.write(`# pmpool process kill: ${pendingSeen}/${ROUNDS} kills left an intent\n`);
});
