/**
 * kernel.pkram through the emulated machine: round trips over one and many
 * kexecs (KHO subtree and standalone pkram=), partial loads with exact page
 * accounting, discardSave, error codes, refused super blocks, crash kernel.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getU64 } from '../../src/base/u64.js';
import { SETUP } from '../../src/boot/abi.js';
import { Kernel } from '../../src/kernel/kernel.js';
import type { LoadedImage } from '../../src/kexec/kexec.js';
import { Machine } from '../../src/machine.js';
import { crc32c } from '../../src/memory/crc32c.js';
import { PAGE_SIZE } from '../../src/memory/device.js';
import type { Folio } from '../../src/mm/folio.js';
import {
  LINK_ENTRY_OFF_INDEX,
  LINK_ENTRY_SIZE,
  LINK_OFF_ENTRIES,
  NODE_OFF_OBJ,
  OBJ_OFF_FOLIO_HEAD,
  PKRAM_KHO_SUBTREE,
  SB_CRC_LEN,
  SB_OFF_BOOT_ID,
  SB_OFF_CRC,
  SB_OFF_GENERATION,
  SB_OFF_NODE_PFN,
} from '../../src/pkram/abi.js';
import { PkramError } from '../../src/pkram/index.js';
import { decodePkramSetup } from '../../src/pkram/kernel-early.js';
import { allocateAll } from '../kernel/_helpers.js';
import { fillPattern, pattern, readAll } from './_setup.js';

const MiB = 1024 * 1024;

function isPkramError(code: string): (e: unknown) => boolean {
  return (e) => e instanceof PkramError && e.code === code;
}

/** Saves node `name`: one object per entry of `objects`, folios filled from seeds, bytes appended. */
function saveNode(
  k: Kernel,
  name: string,
  objects: { folios: { order: number; seed: number; index: number }[]; bytes: Uint8Array }[],
): Folio[] {
  const node = k.pkram.prepareSave(name);
  const out: Folio[] = [];
  for (const o of objects) {
    const obj = node.prepareSaveObj();
    for (const f of o.folios) {
      const folio = k.allocPages(f.order);
      assert.ok(folio, 'machine out of memory');
      fillPattern(k.folioBytes(folio), f.seed);
      obj.saveFolio(folio, f.index);
      out.push(folio);
    }
    obj.write(o.bytes);
    obj.finishSaveObj();
  }
  node.finishSave();
  return out;
}

/** Loads every object of `name`, checks folios against seeds and bytes, frees the folios. */
function loadAndCheck(
  k: Kernel,
  name: string,
  objects: { folios: { order: number; seed: number; index: number }[]; bytes: Uint8Array }[],
): void {
  const node = k.pkram.prepareLoad(name);
  for (const o of objects) {
    const obj = node.prepareLoadObj();
    assert.ok(obj);
    for (const f of o.folios) {
      const got = obj.loadFolio();
      assert.ok(got);
      assert.equal(got.index, f.index);
      assert.equal(got.folio.order, f.order);
      assert.deepEqual(k.folioBytes(got.folio), pattern(PAGE_SIZE * 2 ** f.order, f.seed));
      k.freePages(k.pkram.takeFolio(got.folio));
    }
    assert.equal(obj.loadFolio(), null);
    assert.deepEqual(readAll(obj, 1000), o.bytes);
    obj.finishLoadObj();
  }
  assert.equal(node.prepareLoadObj(), null);
  node.finishLoad();
}

const SAMPLE = [
  {
    folios: [
      { order: 0, seed: 1, index: 0 },
      { order: 3, seed: 2, index: 8 },
      { order: 9, seed: 3, index: 512 },
    ],
    bytes: pattern(10_000, 4),
  },
  { folios: [], bytes: pattern(3, 5) },
  { folios: [{ order: 1, seed: 6, index: 7 }], bytes: new Uint8Array(0) },
];

/** Boots a kernel whose kexec runs `hook` on the committed image before the successor boots. */
function hookedBoot(m: Machine, cmdline: string, hook: (img: LoadedImage) => void): Kernel {
  return Kernel.boot({
    device: m.device,
    cmdline,
    platform: {
      execute(img) {
        hook(img);
        return Kernel.boot({
          device: m.device,
          cmdline: '',
          bootBlock: img.segment.base,
          platform: m,
        });
      },
    },
  });
}

test('KHO handover: a node round-trips through one kexec, subtree and SETUP.PKRAM handed over', () => {
  const m = Machine.create({ size: 32 * MiB });
  const k1 = m.boot();
  saveNode(k1, 'db', SAMPLE);
  k1.kexec.load();
  const k2 = k1.kexec.exec();
  assert.ok(k2.boot.setupData.some((s) => s.type === SETUP.PKRAM));
  const rec = decodePkramSetup(
    k2.boot.setupData.find((s) => s.type === SETUP.PKRAM)?.data ?? new Uint8Array(),
    m.device,
  );
  assert.equal(k2.status().pkram.attached?.via, 'kho');
  assert.equal(k2.status().pkram.attached?.superPfn, rec.superPfn);
  // The successor claimed the subtree, so KHO does not carry it on.
  assert.deepEqual(k2.kho.unclaimed().subtrees, []);
  assert.deepEqual(
    k2.pkram.list().map((n) => [n.name, n.folios, n.bytes]),
    [['db', 4, 10_003]],
  );
  loadAndCheck(k2, 'db', SAMPLE);
  assert.deepEqual(k2.pkram.list(), []);
});

test('nodes survive six kexecs, new nodes join on the way, the subtree is re-added each time', () => {
  const m = Machine.create({ size: 32 * MiB });
  let k = m.boot();
  saveNode(k, 'gen1', SAMPLE);
  for (let g = 2; g <= 7; g++) {
    k.kexec.load();
    k = k.kexec.exec();
    assert.equal(k.generation, g);
    assert.ok(k.log.some((l) => /PKRAM: attached/.test(l)));
    saveNode(k, `gen${g}`, [{ folios: [{ order: 2, seed: g, index: g }], bytes: pattern(g, g) }]);
  }
  k.kexec.load();
  k = k.kexec.exec();
  assert.equal(k.pkram.list().length, 7);
  loadAndCheck(k, 'gen1', SAMPLE);
  for (let g = 2; g <= 7; g++) {
    loadAndCheck(k, `gen${g}`, [
      { folios: [{ order: 2, seed: g, index: g }], bytes: pattern(g, g) },
    ]);
  }
});

test('standalone pkram= (kho=off on both sides) round-trips through three kexecs', () => {
  const m = Machine.create({ size: 32 * MiB });
  let k = m.boot('kho=off pkram=0');
  assert.equal(k.kho.enabled, false);
  saveNode(k, 'db', SAMPLE);
  for (let i = 0; i < 3; i++) {
    const pfn = k.pkram.finalize();
    k.kexec.load({ cmdline: `kho=off pkram=${pfn.toString(16)}` });
    k = k.kexec.exec();
    assert.equal(k.status().pkram.attached?.via, 'pkram=');
    assert.equal(k.status().pkram.attached?.superPfn, pfn);
    assert.deepEqual(k.kho.subtreeNames(), []);
  }
  loadAndCheck(k, 'db', SAMPLE);
});

test('partial loads: finishLoad frees the rest; page counts are exact', () => {
  const m = Machine.create({ size: 32 * MiB });
  const k1 = m.boot();
  saveNode(k1, 'db', SAMPLE);
  k1.kexec.load();
  const k2 = k1.kexec.exec();
  const info = k2.pkram.list()[0];
  const folioPages = 1 + 8 + 512 + 2;
  const before = k2.pages.stats();
  const tableBefore = k2.pkram.raw.tablePages;
  const node = k2.pkram.prepareLoad('db');
  const obj = node.prepareLoadObj();
  assert.ok(obj);
  const first = obj.loadFolio();
  assert.ok(first);
  const buf = new Uint8Array(100);
  assert.equal(obj.read(buf), 100);
  assert.deepEqual(buf, SAMPLE[0].bytes.subarray(0, 100));
  node.finishLoad(); // object open, two objects never visited
  const mid = k2.pages.stats();
  // Everything but the one taken folio is free again (and the table pages that emptied);
  // the taken one stays reserved until taken.
  const table = tableBefore - k2.pkram.raw.tablePages;
  assert.equal(k2.pkram.raw.tablePages, 0);
  assert.equal(mid.freePages - before.freePages, info.metadataPages + folioPages - 1 + table);
  assert.equal(k2.pages.pageState(first.folio.pfn), 'reserved');
  k2.freePages(k2.pkram.takeFolio(first.folio));
  assert.equal(
    k2.pages.stats().freePages - before.freePages,
    info.metadataPages + folioPages + table,
  );
  // The table was the predecessor's, taken over in place: its pages were reserved too.
  assert.equal(
    k2.pages.stats().reservedPages,
    before.reservedPages - (info.metadataPages + folioPages + table),
  );
  assert.throws(() => k2.pkram.prepareLoad('db'), isPkramError('ENOENT'));
  assert.throws(() => node.finishLoad(), isPkramError('EINVAL'));
});

test('a node loaded in the generation that saved it leaves the folios to the program', () => {
  const m = Machine.create({ size: 16 * MiB });
  const k = m.boot();
  const before = k.pages.stats();
  const folios = saveNode(k, 'x', SAMPLE);
  const node = k.pkram.prepareLoad('x');
  node.finishLoad();
  const after = k.pages.stats();
  assert.equal(after.allocatedPages - before.allocatedPages, 1 + 8 + 512 + 2);
  for (const f of folios) k.freePages(k.pkram.takeFolio(f));
  assert.equal(k.pages.stats().freePages, before.freePages);
});

test('discardSave frees what the save allocated and hands nothing over', () => {
  const m = Machine.create({ size: 16 * MiB });
  const k1 = m.boot();
  const before = k1.pages.stats().freePages;
  const f = k1.allocPages(0);
  assert.ok(f);
  const node = k1.pkram.prepareSave('gone');
  const obj = node.prepareSaveObj();
  obj.saveFolio(f, 0);
  obj.write(pattern(20_000, 1));
  node.discardSave();
  k1.freePages(f);
  assert.equal(k1.pages.stats().freePages, before);
  k1.kexec.load();
  const k2 = k1.kexec.exec();
  assert.equal(
    k2.boot.setupData.some((s) => s.type === SETUP.PKRAM),
    false,
  );
  assert.throws(() => k2.pkram.prepareLoad('gone'), isPkramError('ENOENT'));
});

test('error codes through kernel.pkram: ENAMETOOLONG, EEXIST, ENOENT, EINVAL, ENOMEM', () => {
  const m = Machine.create({ size: 4 * MiB });
  const k = m.boot('kho=off pkram=0');
  assert.throws(() => k.pkram.prepareSave('n'.repeat(257)), isPkramError('ENAMETOOLONG'));
  const n = k.pkram.prepareSave('n'.repeat(256));
  assert.throws(() => k.pkram.prepareSave('n'.repeat(256)), isPkramError('EEXIST'));
  assert.throws(() => k.pkram.prepareLoad('nope'), isPkramError('ENOENT'));
  assert.throws(() => k.pkram.remove('nope'), isPkramError('ENOENT'));
  assert.throws(() => k.pkram.prepareSave(''), isPkramError('EINVAL'));
  const obj = n.prepareSaveObj();
  allocateAll(k);
  assert.throws(() => obj.write(new Uint8Array(2 * PAGE_SIZE)), isPkramError('ENOMEM'));
});

test('PKRAM is ENODEV in the crash kernel and with kho=off and no pkram=', () => {
  const m = Machine.create({ size: 32 * MiB });
  const k1 = m.boot('crashkernel=8M');
  saveNode(k1, 'db', SAMPLE);
  const crash = k1.panic();
  assert.equal(crash.isCrashKernel, true);
  assert.throws(() => crash.pkram.prepareSave('x'), isPkramError('ENODEV'));
  assert.throws(() => crash.pkram.list(), isPkramError('ENODEV'));
  assert.equal(crash.status().pkram.disabledReason, 'crash kernel');
  const off = m.boot('kho=off');
  assert.throws(() => off.pkram.prepareLoad('db'), isPkramError('ENODEV'));
  assert.throws(() => off.pkram.finalize(), isPkramError('ENODEV'));
  assert.equal(off.pkram.enabled, false);
});

test('a replaced generation refuses PKRAM calls (ESRCH)', () => {
  const m = Machine.create({ size: 16 * MiB });
  const k1 = m.boot();
  k1.kexec.load();
  k1.kexec.exec();
  assert.throws(
    () => k1.pkram.prepareSave('late'),
    (e: unknown) => (e as Error).message.includes('replaced'),
  );
});

test('remove(name) frees a preserved node; it is not handed over', () => {
  const m = Machine.create({ size: 32 * MiB });
  const k1 = m.boot();
  saveNode(k1, 'a', SAMPLE);
  saveNode(k1, 'b', [{ folios: [], bytes: pattern(5, 9) }]);
  k1.kexec.load();
  const k2 = k1.kexec.exec();
  const free = k2.pages.stats().freePages;
  const table = k2.pkram.raw.tablePages;
  const info = k2.pkram.list().find((n) => n.name === 'a');
  assert.ok(info);
  k2.pkram.remove('a');
  const tableFreed = table - k2.pkram.raw.tablePages;
  assert.equal(k2.pages.stats().freePages - free, info.metadataPages + 523 + tableFreed);
  k2.kexec.load();
  const k3 = k2.kexec.exec();
  assert.deepEqual(
    k3.pkram.list().map((n) => n.name),
    ['b'],
  );
});

/** Saves a node, kexecs with `damage` applied to the committed handover, returns what the successor saw. */
function damaged(
  cmdline: string,
  successorCmdline: (superPfn: number) => string,
  damage: (m: Machine, superPfn: number) => void,
): { k2: Kernel; folios: Folio[]; superPfn: number } {
  const m = Machine.create({ size: 32 * MiB });
  let superPfn = 0;
  const k1 = hookedBoot(m, cmdline, () => damage(m, superPfn));
  const folios = saveNode(k1, 'db', SAMPLE);
  superPfn = k1.pkram.finalize();
  k1.kexec.load({ cmdline: successorCmdline(superPfn) });
  const k2 = k1.kexec.exec();
  return { k2, folios, superPfn };
}

/** Allocates all of k's memory and asserts none of the given pages is handed out. */
function assertNeverHandedOut(k: Kernel, pfns: number[]): void {
  const got = new Set(allocateAll(k));
  assert.ok(got.size > 1000);
  for (const p of pfns) assert.equal(got.has(p), false, `pfn ${p} was handed out`);
}

function folioPfns(folios: Folio[], superPfn: number): number[] {
  return [
    superPfn,
    ...folios.flatMap((f) => Array.from({ length: 2 ** f.order }, (_, i) => f.pfn + i)),
  ];
}

function resealSuper(m: Machine, pfn: number): void {
  const view = m.device.view(pfn * PAGE_SIZE, PAGE_SIZE);
  view.setUint32(SB_OFF_CRC, crc32c(m.device.bytes(pfn * PAGE_SIZE, SB_CRC_LEN)), true);
}

for (const [label, cmdline, next] of [
  ['KHO subtree', '', () => ''],
  ['pkram=', 'kho=off pkram=0', (p: number) => `kho=off pkram=${p.toString(16)}`],
] as const) {
  test(`${label}: a super block with a bad checksum is refused, logged, and its memory never handed out`, () => {
    const { k2, folios, superPfn } = damaged(cmdline, next, (m, pfn) => {
      m.device.bytes(pfn * PAGE_SIZE + SB_OFF_GENERATION, 1)[0] ^= 0x40;
    });
    assert.match(k2.log.join('\n'), /PKRAM: refusing the super block at pfn \d+ .*crc32c/);
    assert.equal(k2.status().pkram.attached, null);
    assert.throws(() => k2.pkram.prepareLoad('db'), isPkramError('ENOENT'));
    assertNeverHandedOut(k2, folioPfns(folios, superPfn));
  });

  test(`${label}: a super block written by another boot is refused`, () => {
    const { k2, folios, superPfn } = damaged(cmdline, next, (m, pfn) => {
      m.device.bytes(pfn * PAGE_SIZE + SB_OFF_BOOT_ID, 1)[0] ^= 1;
      resealSuper(m, pfn);
    });
    assert.match(k2.log.join('\n'), /stale super block: written by another boot/);
    assertNeverHandedOut(k2, folioPfns(folios, superPfn));
  });

  test(`${label}: a flipped bit in a folio entry's index is refused by its link page's crc, its memory never handed out`, () => {
    const { k2, folios, superPfn } = damaged(cmdline, next, (m, pfn) => {
      const link = firstFolioLink(m, pfn);
      const at = link * PAGE_SIZE + LINK_OFF_ENTRIES + LINK_ENTRY_SIZE + LINK_ENTRY_OFF_INDEX;
      m.device.bytes(at, 1)[0] ^= 1 << 5; // index 8 -> 40
    });
    assert.match(
      k2.log.join('\n'),
      /PKRAM: refusing the super block at pfn \d+: .*link page \d+ fails its crc/,
    );
    assert.equal(k2.status().pkram.attached, null);
    assert.throws(() => k2.pkram.prepareLoad('db'), isPkramError('ENOENT'));
    assertNeverHandedOut(k2, folioPfns(folios, superPfn));
  });
}

/** The first link page of the first object's folio stream of the first node. */
function firstFolioLink(m: Machine, superPfn: number): number {
  const page = (pfn: number): DataView => m.device.view(pfn * PAGE_SIZE, PAGE_SIZE);
  const node = getU64(page(superPfn), SB_OFF_NODE_PFN);
  const obj = getU64(page(node), NODE_OFF_OBJ);
  return getU64(page(obj), OBJ_OFF_FOLIO_HEAD);
}

test('a stale super block from an earlier generation is refused (pkram= given one generation late)', () => {
  const m = Machine.create({ size: 32 * MiB });
  const k1 = m.boot('kho=off pkram=0');
  const folios = saveNode(k1, 'db', SAMPLE);
  const pfn = k1.pkram.finalize();
  k1.kexec.load({ cmdline: 'kho=off' }); // PKRAM off in k2: the memory stays reserved
  const k2 = k1.kexec.exec();
  assert.match(k2.log.join('\n'), /PKRAM: off .* stays reserved/);
  k2.kexec.load({ cmdline: `kho=off pkram=${pfn.toString(16)}` });
  const k3 = k2.kexec.exec();
  assert.match(k3.log.join('\n'), /stale super block: generation 1, expected 2/);
  assertNeverHandedOut(k3, folioPfns(folios, pfn));
});

test('a cold boot never attaches, even with pkram= pointing at a valid super block', () => {
  const m = Machine.create({ size: 32 * MiB });
  const k1 = m.boot('kho=off pkram=0');
  saveNode(k1, 'db', SAMPLE);
  const pfn = k1.pkram.finalize();
  const k2 = m.boot(`kho=off pkram=${pfn.toString(16)}`);
  assert.match(k2.log.join('\n'), /cold boot: no predecessor/);
  assert.deepEqual(k2.pkram.list(), []);
});

test('the KHO subtree is named and typed as the ABI says', () => {
  const m = Machine.create({ size: 32 * MiB });
  let root: Uint8Array | null = null;
  const k1 = hookedBoot(m, '', () => {
    root = k1.kho.rootFdt;
  });
  saveNode(k1, 'db', SAMPLE);
  k1.kexec.load();
  const k2 = k1.kexec.exec();
  assert.ok(root);
  assert.ok(Buffer.from(root as Uint8Array).includes(`${PKRAM_KHO_SUBTREE}\0`));
  assert.equal(k2.status().pkram.attached?.via, 'kho');
});

test('with nothing saved PKRAM hands nothing over and allocates nothing', () => {
  const m = Machine.create({ size: 16 * MiB });
  const k1 = m.boot();
  const free = k1.pages.stats().freePages;
  k1.kexec.load();
  const k2 = k1.kexec.exec();
  assert.equal(k1.pages.stats().freePages, free);
  assert.equal(
    k2.boot.setupData.some((s) => s.type === SETUP.PKRAM),
    false,
  );
  assert.equal(k2.status().pkram.attached, null);
});
