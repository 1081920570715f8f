/** The pools across kexec: v2 (KHO node), v3 (kept range), mismatches, older successors, corruption. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BootError } from '../../src/boot/errors.js';
import { Fdt } from '../../src/fdt/read.js';
import type { Kernel } from '../../src/kernel/kernel.js';
import { KexecError } from '../../src/kexec/errors.js';
import { parseRootFdt } from '../../src/kho/root-fdt.js';
import { Machine } from '../../src/machine.js';
import { PAGE_SIZE } from '../../src/memory/device.js';
import { readDeviceHeader } from '../../src/memory/header.js';
import { E820 } from '../../src/memory/memmap-types.js';
import { BITMAP_OFFSET, HDR_CRC } from '../../src/pmpool/abi.js';
import { CmaPool, type PageRange } from '../../src/pmpool/cma.js';
import type { PmpoolRange } from '../../src/pmpool/pool-early.js';
import { type Pmpool, planBringUp } from '../../src/pmpool/pools.js';

const MiB = 1024 * 1024;
const SIZE = 32 * MiB;
const BASE = 4 * MiB;
const POOL = 'pmpool=4M,4M';

function kexec(k: Kernel, cmdline: string): Kernel {
  k.kexec.load({ cmdline });
  return k.kexec.exec();
}

function must<T>(v: T | null | undefined): T {
  assert.ok(v !== null && v !== undefined);
  return v;
}

/** A few allocations of assorted sizes, alignments and a release in between. */
function allocSome(pool: Pmpool): PageRange[] {
  const out = [must(pool.alloc(1)), must(pool.alloc(37)), must(pool.alloc(512, 512))];
  const gone = must(pool.alloc(9));
  out.push(must(pool.alloc(3)));
  assert.equal(pool.release(gone.pfn, gone.count), true);
  out.push({ pfn: must(pool.allocPages(4)), count: 16 });
  return out;
}

function assertHeld(pool: Pmpool, ranges: readonly PageRange[]): void {
  let pages = 0;
  for (const r of ranges) {
    for (let p = r.pfn; p < r.pfn + r.count; p++) assert.ok(pool.isAllocated(p), `pfn ${p}`);
    pages += r.count;
  }
  const s = pool.stats();
  assert.equal(s.usedPages - s.metadataPages, pages, 'nothing else is in use');
}

function buddyAvoids(k: Kernel, base: number, size: number): boolean {
  const first = base / PAGE_SIZE;
  const end = (base + size) / PAGE_SIZE;
  return k.pages.freeExtents().every((e) => e.base + e.count <= first || e.base >= end);
}

function corruptHeader(m: Machine, base: number): void {
  const v = m.device.view(base + HDR_CRC * 4, 4);
  v.setUint32(0, v.getUint32(0, true) ^ 0x5a5a, true);
}

describe('pmpool across kexec', () => {
  it('v2: the KHO node brings the pool back with every allocation', () => {
    const m = Machine.create({ size: SIZE });
    const k1 = m.boot(POOL);
    const held = allocSome(must(k1.pmpool));
    const k2 = kexec(k1, POOL);
    const pool = must(k2.pmpool);
    assert.equal(pool.origin, 'v2');
    assert.equal(pool.reason, null);
    assertHeld(pool, held);
    assert.ok(!k2.kho.unclaimed().subtrees.includes('default_pmpool'), 'the node was claimed');
    assert.ok(k2.log.some((l) => /pmpool: default pool at 0x400000: v2, 569 of 1022/.test(l)));
    // And again: the successor hands the node on.
    const k3 = kexec(k2, POOL);
    assert.equal(k3.pmpool?.origin, 'v2');
    assertHeld(must(k3.pmpool), held);
  });

  it('v2: finalize writes one node per pool with compatible, base, size and bitmap', () => {
    const m = Machine.create({ size: SIZE });
    const k = m.boot('pmpool=4M,4M pmpool=io:12M,1M');
    k.kho.finalize();
    const entries = k.kho.subtreeEntries;
    for (const [name, base, size] of [
      ['default_pmpool', 4 * MiB, 4 * MiB],
      ['pmpool_io', 12 * MiB, 1 * MiB],
    ] as const) {
      const e = must(entries.get(name));
      const fdt = Fdt.from(m.device.bytes(e.phys, e.size).slice());
      assert.deepEqual(fdt.getStringList(0, 'compatible'), ['pmpool']);
      assert.equal(fdt.getU64(0, 'base'), base);
      assert.equal(fdt.getU64(0, 'size'), size);
      assert.equal(fdt.getU64(0, 'bitmap'), base + BITMAP_OFFSET);
    }
    // An abort and a second finalize replace the nodes rather than fail.
    k.kho.abort();
    k.kho.finalize();
    k.kho.abort();
    const k2 = kexec(k, k.boot.cmdline);
    assert.equal(k2.pmpools.get('io')?.origin, 'v2');
  });

  it('v3: a successor with KHO off restores the pool from the kept range', () => {
    const m = Machine.create({ size: SIZE });
    const k1 = m.boot(POOL);
    const held = allocSome(must(k1.pmpool));
    const k2 = kexec(k1, `kho=off ${POOL}`);
    assert.equal(k2.kho.enabled, false);
    assert.equal(k2.pmpool?.origin, 'v3');
    assertHeld(must(k2.pmpool), held);
    // A predecessor with KHO off hands no node either: v3 again.
    const k3 = kexec(k2, POOL);
    assert.equal(k3.pmpool?.origin, 'v3');
    assertHeld(must(k3.pmpool), held);
  });

  it('v3: a pool whose name is too long for a node still survives', () => {
    const name = 'n'.repeat(31);
    const m = Machine.create({ size: SIZE });
    const k1 = m.boot(`pmpool=${name}:4M,1M`);
    const r = must(must(k1.pmpools.get(name)).alloc(5));
    const k2 = kexec(k1, k1.boot.cmdline);
    const p = must(k2.pmpools.get(name));
    assert.equal(p.fdtNode, null);
    assert.equal(p.origin, 'v3');
    assert.ok(p.isAllocated(r.pfn + 4));
  });

  it('a base/size mismatch reinitialises a pool and reports it; the old range stays kept', () => {
    const m = Machine.create({ size: SIZE });
    const k1 = m.boot(POOL);
    allocSome(must(k1.pmpool));
    const k2 = kexec(k1, 'pmpool=12M,2M');
    const pool = must(k2.pmpool);
    assert.equal(pool.origin, 'reinitialised');
    assert.match(
      must(pool.reason),
      /base\/size mismatch: the predecessor's pool was \[0x400000, \+0x400000\)/,
    );
    assert.equal(pool.stats().usedPages, pool.stats().metadataPages, 'empty');
    assert.ok(
      k2.log.some((l) =>
        /pmpool: default pool at 0xc00000: reinitialised \(base\/size mismatch/.test(l),
      ),
    );
    assert.equal(k2.memoryMap.find(BASE)?.type, E820.RESERVED_KERN);
    assert.ok(buddyAvoids(k2, BASE, 4 * MiB), 'the old pool is left alone');
    assert.equal(k2.status().pmpools.pools[0].origin, 'reinitialised');
  });

  it('a pool overlapping the kept range with another size refuses the successor; the running generation stays usable', () => {
    const m = Machine.create({ size: SIZE });
    const k1 = m.boot(POOL);
    const held = allocSome(must(k1.pmpool));
    k1.kexec.load({ cmdline: 'pmpool=4M,2M' });
    assert.throws(
      () => k1.kexec.exec(),
      (err: unknown) =>
        err instanceof KexecError &&
        err.code === 'EIO' &&
        err.cause instanceof BootError &&
        err.cause.param === 'pmpool' &&
        /another base or size/.test(err.cause.message),
    );
    assert.equal(k1.alive, true);
    assert.equal(readDeviceHeader(m.device).bootBlock, 0, 'the pending boot was cancelled');
    assertHeld(must(k1.pmpool), held);
    assert.ok(k1.pmpool?.alloc(1));
    const k2 = kexec(k1, POOL);
    assert.equal(k2.pmpool?.origin, 'v2');
  });

  it('an older successor without pmpool leaves the range alone; a later one gets the pool back', () => {
    const m = Machine.create({ size: SIZE });
    const k1 = m.boot(POOL);
    const held = allocSome(must(k1.pmpool));
    const k2 = kexec(k1, '');
    assert.equal(k2.pmpool, null);
    assert.equal(k2.memoryMap.find(BASE)?.type, E820.RESERVED_KERN);
    assert.ok(buddyAvoids(k2, BASE, 4 * MiB));
    assert.ok(k2.kho.unclaimed().subtrees.includes('default_pmpool'), 'the node is carried on');
    const taken = [];
    for (let order = 10; order >= 0; order--) {
      for (let f = k2.allocPages(order); f !== null; f = k2.allocPages(order)) {
        assert.ok(f.pfn * PAGE_SIZE >= BASE + 4 * MiB || (f.pfn + 2 ** order) * PAGE_SIZE <= BASE);
        k2.folioBytes(f).fill(0xee);
        taken.push(f);
      }
    }
    for (const f of taken) k2.freePages(f);
    const k3 = kexec(k2, POOL);
    assert.equal(k3.pmpool?.origin, 'v2');
    assertHeld(must(k3.pmpool), held);
  });

  it('adjacent pools merge in the map; a successor configuring only one still finds it', () => {
    const m = Machine.create({ size: SIZE });
    const k1 = m.boot('pmpool=4M,4M pmpool=b:8M,1M');
    const held = allocSome(must(k1.pmpool));
    const k2 = kexec(k1, 'kho=off pmpool=4M,4M');
    assert.deepEqual(k2.memoryMap.find(BASE), {
      addr: BASE,
      size: 5 * MiB,
      type: E820.RESERVED_KERN,
    });
    assert.equal(k2.pmpool?.origin, 'v3');
    assertHeld(must(k2.pmpool), held);
    const k3 = kexec(k2, 'kho=off pmpool=b:8M,1M');
    assert.equal(k3.pmpools.get('b')?.origin, 'v3');
  });

  it('a corrupt header is rebuilt, not reformatted, and reported, through v2 and v3 alike', () => {
    for (const successor of [POOL, `kho=off ${POOL}`]) {
      const m = Machine.create({ size: SIZE });
      const k1 = m.boot(POOL);
      const held = allocSome(must(k1.pmpool));
      corruptHeader(m, BASE);
      const k2 = kexec(k1, successor);
      const pool = must(k2.pmpool);
      assert.equal(pool.origin, 'rebuilt');
      assert.match(
        must(pool.reason),
        /^v[23] attach failed: EFAULT: .*header crc.*header rewritten/,
      );
      assertHeld(pool, held);
      assert.ok(CmaPool.attach(m.device, BASE, 4 * MiB, { repair: false }), 'a valid pool again');
    }
  });

  it('an operation a killed writer left in flight is recovered at attach and reported', () => {
    const m = Machine.create({ size: SIZE });
    const k1 = m.boot(POOL);
    const held = allocSome(must(k1.pmpool));
    let stores = 0;
    const writer = CmaPool.attach(m.device, BASE, 4 * MiB, {
      beforeStore: () => {
        if (++stores === 8) throw new Error('killed');
      },
    });
    assert.throws(() => writer.alloc(40), /killed/);
    const k2 = kexec(k1, POOL);
    const pool = must(k2.pmpool);
    assert.equal(pool.origin, 'v2');
    assert.match(must(pool.reason), /^recovered: alloc of 40 pages/);
    assertHeld(pool, held);
  });
});

describe('planBringUp', () => {
  const range = (marked: boolean): PmpoolRange => ({
    name: null,
    base: BASE,
    size: 4 * MiB,
    marked,
  });
  const node = { base: BASE, size: 4 * MiB, bitmap: BASE + BITMAP_OFFSET };

  it('attaches through a matching node (v2) or a kept range (v3), else formats fresh', () => {
    assert.deepEqual(planBringUp(range(true), node), {
      action: 'attach',
      origin: 'v2',
      reason: null,
    });
    assert.deepEqual(planBringUp(range(false), node), {
      action: 'attach',
      origin: 'v2',
      reason: null,
    });
    assert.deepEqual(planBringUp(range(true), null), {
      action: 'attach',
      origin: 'v3',
      reason: null,
    });
    assert.deepEqual(planBringUp(range(false), null), {
      action: 'format',
      origin: 'fresh',
      reason: null,
    });
  });

  it('never trusts a mismatching or unusable node: formats a range the map did not keep, attaches one it kept', () => {
    const cases: [typeof node | string, RegExp][] = [
      [{ ...node, base: BASE + PAGE_SIZE }, /base\/size mismatch/],
      [{ ...node, size: 2 * MiB }, /base\/size mismatch/],
      [{ ...node, bitmap: BASE + 2 * PAGE_SIZE }, /bitmap at 0x402000 is not the pool's own/],
      ['\'default_pmpool\': no property "base"', /the handed-over node: /],
    ];
    for (const [n, reason] of cases) {
      const fresh = planBringUp(range(false), n);
      assert.equal(fresh.action, 'format');
      assert.equal(fresh.origin, 'reinitialised');
      assert.match(must(fresh.reason), reason);
      // The node lies outside every checksum, the map does not: formatting would free held pages.
      const kept = planBringUp(range(true), n);
      assert.equal(kept.action, 'attach');
      assert.equal(kept.origin, 'v3');
      assert.match(must(kept.reason), reason);
      assert.match(must(kept.reason), /the node ignored, the map kept the range/);
    }
  });

  it('a damaged v2 node over the kept range: held pages stay held (found by npm run torture)', () => {
    for (const damage of ['zero the FDT magic', 'flip a bit of base'] as const) {
      const m = Machine.create({ size: SIZE });
      const k1 = m.boot(POOL);
      const held = must(must(k1.pmpool).alloc(40));
      k1.kho.finalize();
      k1.kexec.load({ cmdline: POOL });
      const phys = parseRootFdt(must(k1.kho.rootFdt), SIZE).subtrees.get('default_pmpool')!;
      const bytes = m.device.bytes(phys, PAGE_SIZE);
      if (damage === 'zero the FDT magic') {
        bytes.fill(0, 0, 4);
      } else {
        const want = new Uint8Array(8);
        new DataView(want.buffer).setBigUint64(0, BigInt(BASE), false);
        const at = Buffer.from(bytes).indexOf(Buffer.from(want));
        assert.ok(at > 0);
        bytes[at + 5] ^= 0x10;
      }
      const k2 = k1.kexec.exec();
      const pool = must(k2.pmpool);
      assert.equal(pool.origin, 'v3', damage);
      assert.match(must(pool.reason), /the node ignored/);
      for (let p = held.pfn; p < held.pfn + held.count; p++) assert.ok(pool.isAllocated(p), damage);
      for (let r = pool.alloc(1); r !== null; r = pool.alloc(1)) {
        assert.ok(
          r.pfn < held.pfn || r.pfn >= held.pfn + held.count,
          `${damage}: pfn ${r.pfn} handed out again`,
        );
      }
    }
  });
});
