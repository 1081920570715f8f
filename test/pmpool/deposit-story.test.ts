/**
 * The seeds' deposited-pages story on the emulated machine: a hypervisor
 * takes pages from the kernel and keeps using them across kexec; any access
 * by the kernel to a deposited page is a general protection fault.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Kernel } from '../../src/kernel/kernel.js';
import { Machine } from '../../src/machine.js';
import { PAGE_SIZE } from '../../src/memory/device.js';
import { GeneralProtectionFault } from '../../src/memory/errors.js';
import { E820 } from '../../src/memory/memmap-types.js';
import type { PageRange } from '../../src/pmpool/cma.js';

const MiB = 1024 * 1024;
const SIZE = 32 * MiB;
const BASE = 4 * MiB;
const POOL = 'pmpool=4M,8M';
const OWNER = 'hypervisor';

/** The hypervisor's side: which pages it holds. It lives outside the kernel, so it survives kexec. */
class Hypervisor {
  readonly deposits: PageRange[] = [];

  constructor(readonly machine: Machine) {}

  /** Deposits `count` pages taken from the kernel's pool (v2's hv_call_deposit_pages with pmpool). */
  depositFromPool(k: Kernel, count: number): void {
    const r = k.pmpool?.alloc(count);
    assert.ok(r, `the pool has ${count} free pages`);
    this.#take(r);
  }

  /** The same deposit made from plain page allocator folios (the bug the seeds describe). */
  depositFromBuddy(k: Kernel, order: number): void {
    const f = k.allocPages(order);
    assert.ok(f);
    this.#take({ pfn: f.pfn, count: 2 ** order });
  }

  /** Gives back the last `n` deposits: they stop faulting and go back to the pool. */
  withdraw(k: Kernel, n: number): void {
    for (const r of this.deposits.splice(this.deposits.length - n, n)) {
      this.machine.device.unguard(r.pfn * PAGE_SIZE, r.count * PAGE_SIZE);
      assert.equal(k.pmpool?.release(r.pfn, r.count), true, 'the pool knows the deposit');
    }
  }

  get pages(): number {
    return this.deposits.reduce((n, r) => n + r.count, 0);
  }

  /** The guard is still on exactly the deposited pages. */
  assertGuarded(): void {
    const guarded = this.machine.device.guardedRanges().reduce((n, g) => n + g.size / PAGE_SIZE, 0);
    assert.equal(guarded, this.pages);
    for (const r of this.deposits) {
      for (let p = r.pfn; p < r.pfn + r.count; p++) assert.ok(this.machine.device.isGuarded(p));
    }
  }

  #take(r: PageRange): void {
    this.machine.device.guard(r.pfn * PAGE_SIZE, r.count * PAGE_SIZE, OWNER);
    this.deposits.push(r);
  }
}

/** The successor's first work: allocate every free page and write it. Returns the pages touched. */
function useAllMemory(k: Kernel): number {
  let pages = 0;
  for (let order = 10; order >= 0; order--) {
    for (let f = k.allocPages(order); f !== null; f = k.allocPages(order)) {
      k.folioBytes(f).fill(0x6b);
      pages += 2 ** order;
    }
  }
  assert.equal(k.pages.stats().freePages, 0);
  return pages;
}

/** Kexec, then use all memory; the first fault, wherever it comes, is returned. */
function kexecAndUse(k: Kernel, cmdline: string): { next: Kernel | null; fault: unknown } {
  let next: Kernel | null = null;
  try {
    k.kexec.load({ cmdline });
    next = k.kexec.exec();
    useAllMemory(next);
    return { next, fault: null };
  } catch (err) {
    return { next, fault: faultIn(err) ?? err };
  }
}

/** The GeneralProtectionFault in an error or its causes. */
function faultIn(err: unknown): GeneralProtectionFault | null {
  for (let e = err; e instanceof Error; e = e.cause) {
    if (e instanceof GeneralProtectionFault) return e;
  }
  return null;
}

/** Deposits of assorted sizes, grown in rounds, some beyond the page allocator's largest order. */
const GROWTH = [
  [1, 7, 64],
  [300, 2],
  [1025, 16, 16],
];

/** Frees what useAllMemory took, so the next kexec has memory to work with. */
function freeAll(k: Kernel): void {
  for (let pfn = 0; pfn < k.pages.stats().totalPages; ) {
    const order = k.pages.pageState(pfn) === 'allocated' ? k.pages.headOrder(pfn) : -1;
    if (order >= 0) {
      k.freePages({ pfn, order });
      pfn += 2 ** order;
    } else pfn++;
  }
}

describe('deposited pages across kexec', () => {
  it('with the pool: boot, grow the deposit, kexec; the successor uses all memory and never faults', () => {
    const m = Machine.create({ size: SIZE });
    const hv = new Hypervisor(m);
    const k1 = m.boot(POOL);
    for (const round of GROWTH) for (const n of round) hv.depositFromPool(k1, n);
    hv.assertGuarded();
    const { next: k2, fault } = kexecAndUse(k1, POOL);
    assert.equal(fault, null);
    assert.ok(k2);
    assert.equal(k2.pmpool?.origin, 'v2');
    for (const r of hv.deposits) assert.ok(k2.pmpool?.isAllocated(r.pfn + r.count - 1));
    hv.assertGuarded();
  });

  it('without the pool: the same deposit from plain pages faults in the successor', () => {
    const m = Machine.create({ size: SIZE });
    const hv = new Hypervisor(m);
    const k1 = m.boot('');
    for (const order of [0, 3, 6, 8, 9, 10, 10]) hv.depositFromBuddy(k1, order);
    hv.assertGuarded();
    const { next, fault } = kexecAndUse(k1, '');
    assert.ok(next, 'the successor booted');
    assert.ok(fault instanceof GeneralProtectionFault, `expected a fault, got ${String(fault)}`);
    assert.match(fault.message, /hypervisor/);
    hv.assertGuarded();
  });

  it('boot, grow, kexec, shrink: withdrawn pages go back to the pool, the rest stays held', () => {
    const m = Machine.create({ size: SIZE });
    const hv = new Hypervisor(m);
    let k = m.boot(POOL);
    for (const n of GROWTH[0]) hv.depositFromPool(k, n);
    for (const [grow, shrink] of [
      [GROWTH[1], 2],
      [GROWTH[2], 3],
      [[], 2],
    ] as const) {
      for (const n of grow) hv.depositFromPool(k, n);
      const r = kexecAndUse(k, POOL);
      assert.equal(r.fault, null);
      k = r.next as Kernel;
      freeAll(k);
      hv.withdraw(k, shrink);
      const s = k.pmpool?.stats();
      assert.ok(s);
      assert.equal(s.usedPages - s.metadataPages, hv.pages, 'the pool holds exactly the deposit');
      hv.assertGuarded();
    }
    assert.ok(hv.deposits.length > 0);
  });

  it('a base/size mismatch: the old pool range is left alone, nothing deposited is touched', () => {
    const m = Machine.create({ size: SIZE });
    const hv = new Hypervisor(m);
    const k1 = m.boot(POOL);
    for (const n of GROWTH.flat()) hv.depositFromPool(k1, n);
    const { next: k2, fault } = kexecAndUse(k1, 'pmpool=16M,4M');
    assert.equal(fault, null);
    assert.ok(k2);
    assert.equal(k2.pmpool?.origin, 'reinitialised');
    assert.match(k2.pmpool?.reason ?? '', /mismatch/);
    assert.equal(k2.memoryMap.find(BASE)?.type, E820.RESERVED_KERN);
    // The new pool is empty and all of it can be used.
    const all = k2.pmpool?.alloc(k2.pmpool.stats().freePages);
    assert.ok(all);
    m.device.bytes(all.pfn * PAGE_SIZE, all.count * PAGE_SIZE).fill(1);
    hv.assertGuarded();
  });

  it('an older successor without pmpool, then one with it: no fault, the deposit comes back', () => {
    const m = Machine.create({ size: SIZE });
    const hv = new Hypervisor(m);
    const k1 = m.boot(POOL);
    for (const n of GROWTH.flat()) hv.depositFromPool(k1, n);
    const older = kexecAndUse(k1, '');
    assert.equal(older.fault, null);
    assert.ok(older.next);
    assert.equal(older.next.pmpool, null);
    freeAll(older.next);
    const newer = kexecAndUse(older.next, POOL);
    assert.equal(newer.fault, null);
    assert.ok(newer.next);
    freeAll(newer.next);
    hv.withdraw(newer.next, hv.deposits.length);
    assert.equal(m.device.guardedRanges().length, 0);
  });

  it('a corrupt pool header: rebuilt and reported; the whole pool handed out never faults', () => {
    for (const successor of [POOL, `kho=off ${POOL}`]) {
      const m = Machine.create({ size: SIZE });
      const hv = new Hypervisor(m);
      const k1 = m.boot(POOL);
      for (const n of GROWTH.flat()) hv.depositFromPool(k1, n);
      const crc = m.device.view(BASE + 0x2c, 4);
      crc.setUint32(0, ~crc.getUint32(0, true), true);
      const { next: k2, fault } = kexecAndUse(k1, successor);
      assert.equal(fault, null);
      assert.ok(k2);
      assert.equal(k2.pmpool?.origin, 'rebuilt');
      assert.match(k2.pmpool?.reason ?? '', /attach failed: EFAULT/);
      // Everything the pool still hands out is written: a deposited page would fault.
      for (let r = k2.pmpool?.alloc(1); r; r = k2.pmpool?.alloc(1)) {
        m.device.bytes(r.pfn * PAGE_SIZE, PAGE_SIZE).fill(1);
      }
      hv.assertGuarded();
    }
  });
});
