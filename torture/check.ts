/**
 * The successor's side of a case: restore everything the manifest says was
 * preserved, check every byte and every index, then take every page the
 * allocators still hand out and check none of them is one that was
 * restored, held in a pool or still preserved.
 */
import type { Kernel } from '../src/kernel/kernel.js';
import { memfdRead } from '../src/luo/memfd.js';
import { PAGE_SIZE } from '../src/memory/device.js';
import type { Outcome } from './outcome.js';
import { typed, Verdict } from './outcome.js';
import { patternMismatch } from './rng.js';
import {
  BLOB_COMPATIBLE,
  BLOB_SUBTREE,
  LUO_SESSION,
  LUO_TOKEN,
  type Manifest,
  type PkramObjectPlan,
  RESERVE_MEM_NAME,
  USER_SUBTREE,
} from './scenario.js';

export interface CheckOptions {
  /** Take every free page of the page allocator and the pool afterwards (default true). */
  drain?: boolean;
  /** The memfd must come back under the same descriptor number (default false). */
  sameFd?: boolean;
}

/** Owners of pages seen so far: 0 none, else an index into `names`. */
class Owners {
  readonly owner: Uint16Array;
  readonly names: string[] = [''];

  constructor(pages: number) {
    this.owner = new Uint16Array(pages);
  }

  claim(pfn: number, count: number, who: string): void {
    this.names.push(who);
    const id = this.names.length - 1;
    for (let p = pfn; p < pfn + count; p++) {
      if (p < 0 || p >= this.owner.length)
        throw new Verdict('wrong', `${who}: pfn ${p} outside the device`);
      if (this.owner[p] !== 0)
        throw new Verdict(
          'double',
          `pfn ${p} handed to ${who}, already ${this.names[this.owner[p]]}`,
        );
      this.owner[p] = id;
    }
  }

  /** A page handed out fresh must be nobody's and not preserved. */
  fresh(pfn: number, count: number, who: string, preserved: Uint8Array): void {
    for (let p = pfn; p < pfn + count; p++) {
      if (this.owner[p] !== 0)
        throw new Verdict(
          'double',
          `${who} handed out pfn ${p}, held by ${this.names[this.owner[p]]}`,
        );
      if (preserved[p] !== 0)
        throw new Verdict('double', `${who} handed out pfn ${p} while it is still preserved`);
    }
  }
}

function same(what: string, got: unknown, want: unknown): void {
  if (got !== want)
    throw new Verdict('wrong', `${what}: got ${String(got)}, preserved ${String(want)}`);
}

function pattern(what: string, bytes: Uint8Array, seed: number): void {
  const at = patternMismatch(bytes, seed);
  if (at >= 0) throw new Verdict('wrong', `${what}: byte ${at} is not what was preserved`);
}

/**
 * Checks a successor booted from a (possibly damaged) handover of `m`.
 * @returns the outcome (cold, full or partial) and the typed errors seen.
 * @throws Verdict for an unacceptable outcome; anything untyped passes through.
 */
export function checkSuccessor(
  kernel: Kernel,
  m: Manifest,
  options: CheckOptions = {},
): { outcome: Outcome; detail: string } {
  const pages = kernel.device.pages;
  const owners = new Owners(pages);
  const preserved = new Uint8Array(pages);
  const errors: string[] = [];
  const attempt = (what: string, fn: () => void): void => {
    try {
      fn();
    } catch (err) {
      if (err instanceof Verdict || !typed(err)) throw err;
      errors.push(`${what}: ${err.message}`);
    }
  };
  // What must never be handed out fresh, restored or not.
  for (const f of m.khoFolios)
    preserved.fill(1, f.phys / PAGE_SIZE, f.phys / PAGE_SIZE + 2 ** f.order);
  for (const r of m.khoPages) preserved.fill(1, r.phys / PAGE_SIZE, r.phys / PAGE_SIZE + r.count);
  for (const n of m.pkram)
    for (const o of n.objects)
      for (const f of o.folios) preserved.fill(1, f.pfn, f.pfn + 2 ** f.order);
  const kexecBoot = kernel.boot.kind === 'kexec';
  if (kexecBoot) {
    for (const f of m.khoFolios) {
      attempt(`kho folio 0x${f.phys.toString(16)}`, () => {
        const got = kernel.kho.restoreFolio(f.phys);
        same(`kho folio 0x${f.phys.toString(16)} pfn`, got.pfn * PAGE_SIZE, f.phys);
        same(`kho folio 0x${f.phys.toString(16)} order`, got.order, f.order);
        owners.claim(got.pfn, 2 ** got.order, `kho folio 0x${f.phys.toString(16)}`);
        pattern(`kho folio 0x${f.phys.toString(16)}`, kernel.folioBytes(got), f.seed);
      });
    }
    for (const r of m.khoPages) {
      attempt(`kho pages 0x${r.phys.toString(16)}`, () => {
        const got = kernel.kho.restorePages(r.phys, r.count);
        same('kho pages base', got.base, r.phys);
        same('kho pages size', got.size, r.count * PAGE_SIZE);
        owners.claim(r.phys / PAGE_SIZE, r.count, `kho pages 0x${r.phys.toString(16)}`);
        pattern('kho pages', kernel.device.bytes(got.base, got.size), r.seed);
      });
    }
    const subtree = m.subtree;
    if (subtree)
      attempt('kho subtree', () => {
        const fdt = kernel.kho.retrieveSubtree(USER_SUBTREE);
        same('subtree magic', fdt.getU32(0, 'magic'), subtree.magic);
        same('subtree label', fdt.getString(0, 'label'), subtree.label);
      });
    const blob = m.blob;
    if (blob)
      attempt('kho blob', () => {
        const got = kernel.kho.retrieveBlob(BLOB_SUBTREE, [BLOB_COMPATIBLE]);
        same('blob length', got.bytes.length, blob.length);
        pattern('blob', got.bytes, blob.seed);
      });
    for (const n of m.pkram) attempt(`pkram node ${n.name}`, () => loadNode(kernel, n, owners));
    const luo = m.luo;
    if (luo)
      attempt('luo memfd', () => {
        const fd = kernel.liveupdate.retrieveSession(LUO_SESSION).retrieveFd(LUO_TOKEN);
        if (options.sameFd) same('luo fd', fd, luo.fd);
        pattern('luo memfd', memfdRead(fd, luo.length, 0), luo.seed);
      });
  }
  const rm = m.reserveMem;
  if (rm)
    attempt('reserve_mem', () => {
      const r = kernel.reserveMem(RESERVE_MEM_NAME);
      if (r.kept) {
        same('reserve_mem kept at', r.phys, rm.phys);
        same('reserve_mem size', r.size, rm.size);
        pattern('reserve_mem', r.bytes, rm.seed);
      } else {
        owners.fresh(r.phys / PAGE_SIZE, r.size / PAGE_SIZE, 'reserve_mem', preserved);
        if (kexecBoot) errors.push('reserve_mem: not kept');
      }
      owners.claim(r.phys / PAGE_SIZE, r.size / PAGE_SIZE, 'reserve_mem');
    });
  checkPool(kernel, m, owners, preserved, errors, options.drain !== false);
  if (options.drain !== false) {
    for (let order = 10; order >= 0; order--) {
      for (let f = kernel.allocPages(order); f !== null; f = kernel.allocPages(order)) {
        owners.fresh(f.pfn, 2 ** order, `the page allocator (order ${order})`, preserved);
        owners.claim(f.pfn, 2 ** order, 'a fresh allocation');
      }
    }
  }
  const outcome: Outcome = !kexecBoot ? 'cold' : errors.length === 0 ? 'full' : 'partial';
  const why = kexecBoot ? '' : `${kernel.boot.coldReason ?? 'no handover'}; `;
  return { outcome, detail: `${why}${errors.join('; ')}` };
}

function checkPool(
  kernel: Kernel,
  m: Manifest,
  owners: Owners,
  preserved: Uint8Array,
  errors: string[],
  drain: boolean,
): void {
  const pool = kernel.pmpool;
  if (!pool) {
    if (m.pool.length > 0) errors.push('pmpool: no pool');
    return;
  }
  for (const h of m.pool) {
    for (let p = h.pfn; p < h.pfn + h.count; p++) {
      if (!pool.isAllocated(p)) throw new Verdict('double', `pool page ${p}, held, reads as free`);
    }
    pattern(
      `pool pages ${h.pfn}+${h.count}`,
      kernel.device.bytes(h.pfn * PAGE_SIZE, h.count * PAGE_SIZE),
      h.seed,
    );
    owners.claim(h.pfn, h.count, `pool allocation ${h.pfn}+${h.count}`);
  }
  if (!drain) return;
  for (let r = pool.alloc(1); r !== null; r = pool.alloc(1)) {
    owners.fresh(r.pfn, r.count, 'the pool', preserved);
    owners.claim(r.pfn, r.count, 'a fresh pool allocation');
  }
}

function loadNode(
  kernel: Kernel,
  n: { name: string; objects: PkramObjectPlan[] },
  owners: Owners,
): void {
  const node = kernel.pkram.prepareLoad(n.name);
  n.objects.forEach((plan, i) => {
    const obj = node.prepareLoadObj();
    if (obj === null)
      throw new Verdict('wrong', `pkram ${n.name}: ${i} objects, ${n.objects.length} saved`);
    for (const want of plan.folios) {
      const got = obj.loadFolio();
      if (got === null)
        throw new Verdict('wrong', `pkram ${n.name}/${i}: folio stream ended early`);
      same(`pkram ${n.name}/${i} folio index`, got.index, want.index);
      same(`pkram ${n.name}/${i} folio order`, got.folio.order, want.order);
      owners.claim(got.folio.pfn, 2 ** got.folio.order, `pkram ${n.name}/${i} folio ${want.index}`);
      pattern(`pkram ${n.name}/${i} folio ${want.index}`, kernel.folioBytes(got.folio), want.seed);
    }
    if (obj.loadFolio() !== null)
      throw new Verdict('wrong', `pkram ${n.name}/${i}: more folios than saved`);
    const buf = new Uint8Array(plan.bytes.length + 1);
    let total = 0;
    for (let got = obj.read(buf.subarray(total)); got > 0; got = obj.read(buf.subarray(total)))
      total += got;
    same(`pkram ${n.name}/${i} byte length`, total, plan.bytes.length);
    pattern(`pkram ${n.name}/${i} bytes`, buf.subarray(0, total), plan.bytes.seed);
    obj.finishLoadObj();
  });
  if (node.prepareLoadObj() !== null)
    throw new Verdict('wrong', `pkram ${n.name}: more objects than saved`);
  node.finishLoad();
}
