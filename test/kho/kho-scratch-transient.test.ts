/**
 * Scratch given back: transient allocations (never preserved) use KHO
 * scratch, KHO and PKRAM refuse to preserve them, and kexec
 * segments go to scratch's window or free scratch, never over a live one.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Kernel } from '../../src/kernel/kernel.js';
import { KexecError } from '../../src/kexec/errors.js';
import { KHO_SCRATCH_SEGMENT_WINDOW } from '../../src/kho/scratch.js';
import { Machine } from '../../src/machine.js';
import { PAGE_SIZE } from '../../src/memory/device.js';
import type { Folio } from '../../src/mm/folio.js';
import { PkramError } from '../../src/pkram/errors.js';
import { code, MiB } from './_helpers.js';

function inScratch(k: Kernel, f: Folio): boolean {
  const a = f.pfn * PAGE_SIZE;
  const b = a + 2 ** f.order * PAGE_SIZE;
  return k.kho.scratch.some((s) => a >= s.base && b <= s.base + s.size);
}

/** Takes every transient page scratch holds (order 0), filling each with its pfn's low byte. */
function fillScratch(k: Kernel): Folio[] {
  const out: Folio[] = [];
  for (;;) {
    const f = k.allocPages(0, { transient: true })!;
    if (!inScratch(k, f)) {
      k.freePages(f);
      return out;
    }
    k.folioBytes(f).fill(f.pfn & 0xff);
    out.push(f);
  }
}

test('transient folios come from scratch, then from memory; scratch keeps a window for kexec', () => {
  const k = Machine.create({ size: 32 * MiB }).boot();
  const scratchPages = k.kho.scratch.reduce((n, s) => n + s.size, 0) / PAGE_SIZE;
  const window = KHO_SCRATCH_SEGMENT_WINDOW / PAGE_SIZE;
  assert.deepEqual(k.status().scratchPages, {
    totalPages: scratchPages,
    transientPages: scratchPages - window,
    freePages: scratchPages - window,
    segmentPages: 0,
  });
  const free = k.pages.stats().freePages;
  const plain = k.allocPages(0)!;
  assert.ok(!inScratch(k, plain), 'an ordinary folio never comes from scratch');
  const big = k.allocPages(5, { transient: true })!;
  assert.ok(inScratch(k, big) && big.pfn % 32 === 0);
  k.freePages(big);
  const taken = fillScratch(k);
  assert.equal(taken.length, scratchPages - window);
  assert.equal(k.pages.stats().freePages, free - 1, 'the page allocator gave only `plain`');
  const spill = k.allocPages(0, { transient: true })!;
  assert.ok(!inScratch(k, spill), 'scratch full: from memory');
  for (const f of [...taken, spill, plain]) k.freePages(f);
  assert.equal(k.status().scratchPages.freePages, scratchPages - window);
  assert.throws(() => k.freePages(taken[0]!), /ENOENT/);
});

test('KHO and PKRAM refuse to preserve a transient folio, and nothing is recorded', () => {
  const m = Machine.create({ size: 32 * MiB });
  const k1 = m.boot();
  const t = k1.allocPages(1, { transient: true })!;
  assert.ok(inScratch(k1, t));
  assert.throws(() => k1.kho.preserveFolio(t), code('EINVAL'));
  assert.throws(() => k1.kho.preservePages(t.pfn, 2), code('EINVAL'));
  assert.throws(() => k1.kho.preservePageList([t]), code('EINVAL'));
  const kept = k1.allocPages(1)!;
  k1.folioBytes(kept).fill(0x3c);
  const node = k1.pkram.prepareSave('cache');
  const obj = node.prepareSaveObj();
  assert.throws(
    () => obj.saveFolio(t, 0),
    (e) => e instanceof PkramError && e.code === 'EINVAL' && /transient/.test(e.message),
  );
  obj.saveFolio(kept, 0);
  obj.finishSaveObj();
  node.finishSave();
  k1.kexec.load();
  const k2 = k1.kexec.exec();
  const loaded = k2.pkram.prepareLoad('cache').prepareLoadObj()!;
  const got = loaded.loadFolio();
  assert.deepEqual(got?.folio, kept, 'only the folio it accepted, in place');
  assert.equal(got?.index, 0);
  assert.equal(loaded.loadFolio(), null);
  assert.ok(k2.folioBytes(kept).every((b) => b === 0x3c));
});

test('kexec places its segment in the window, never over a live transient folio, and an exec that fails leaves them whole', () => {
  const m = Machine.create({ size: 32 * MiB });
  let fail = true;
  const k = Kernel.boot({
    device: m.device,
    cmdline: '',
    platform: {
      execute(img) {
        if (fail) throw new KexecError('EIO', 'the successor could not start');
        return Kernel.boot({ device: m.device, bootBlock: img.segment.base, platform: m });
      },
    },
  });
  const taken = fillScratch(k);
  const intact = () => taken.every((f) => k.folioBytes(f).every((b) => b === (f.pfn & 0xff)));
  const img = k.kexec.load();
  const top = Math.max(...k.kho.scratch.map((s) => s.base + s.size));
  assert.ok(img.segment.base >= top - KHO_SCRATCH_SEGMENT_WINDOW, 'in the window');
  assert.equal(k.status().scratchPages.segmentPages, img.segment.size / PAGE_SIZE);
  assert.throws(() => k.kexec.exec(), /EIO/);
  assert.ok(intact(), 'the boot block was written only into its segment');
  // A segment larger than the window takes free scratch, claimed from the transient zone.
  k.kexec.unload();
  // Free the 128 KiB of transient scratch right below the window.
  const windowStart = top - KHO_SCRATCH_SEGMENT_WINDOW;
  const below = (f: Folio) =>
    f.pfn * PAGE_SIZE >= windowStart - 128 * 1024 && f.pfn * PAGE_SIZE < windowStart;
  assert.equal(taken.filter(below).length, 32);
  for (const f of taken.filter(below)) k.freePages(f);
  taken.splice(0, taken.length, ...taken.filter((f) => !below(f)));
  const wide = k.kexec.load({ reserveBytes: KHO_SCRATCH_SEGMENT_WINDOW + 64 * 1024 });
  assert.ok(wide.segment.base < windowStart);
  assert.ok(wide.inArena);
  const again = fillScratch(k);
  const seg = [wide.segment.base, wide.segment.base + wide.segment.size];
  for (const f of again) {
    const a = f.pfn * PAGE_SIZE;
    assert.ok(
      a + PAGE_SIZE <= seg[0]! || a >= seg[1]!,
      `transient pfn ${f.pfn} inside the segment`,
    );
  }
  taken.push(...again);
  assert.throws(() => k.kexec.load({ reserveBytes: 4 * MiB }), /ENOMEM/, 'no room, nothing lost');
  assert.equal(k.kexec.loaded, wide as never);
  assert.throws(() => k.kexec.exec(), /EIO/);
  assert.ok(intact());
  fail = false;
  const k2 = k.kexec.exec();
  // The predecessor's transient folios are gone with it: all of scratch is free again.
  const s2 = k2.status().scratchPages;
  assert.equal(s2.freePages, s2.transientPages);
  assert.deepEqual(k2.kho.scratch, k.kho.scratch);
  const t2 = k2.allocPages(0, { transient: true })!;
  assert.ok(inScratch(k2, t2));
  k2.kexec.load();
  assert.ok(k2.kexec.exec().generation > k2.generation);
});

test('with kho=off there is no scratch: transient folios come from memory', () => {
  const k = Machine.create({ size: 16 * MiB }).boot('kho=off');
  const f = k.allocPages(2, { transient: true })!;
  assert.equal(k.pages.pageState(f.pfn), 'allocated');
  assert.equal(k.status().scratchPages.totalPages, 0);
  k.freePages(f);
});
