import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { SETUP } from '../../src/boot/abi.js';
import { decodeBootBlock, encodeBootBlock } from '../../src/boot/bootblock.js';
import { BootError } from '../../src/boot/errors.js';
import { type Kernel, Kernel as KernelClass } from '../../src/kernel/kernel.js';
import type { LoadedImage } from '../../src/kexec/kexec.js';
import { KhoError } from '../../src/kho/errors.js';
import { KhoRadixTree } from '../../src/kho/radix.js';
import { parseRootFdt } from '../../src/kho/root-fdt.js';
import { Machine } from '../../src/machine.js';
import { PAGE_SIZE } from '../../src/memory/device.js';
import { GeneralProtectionFault } from '../../src/memory/errors.js';
import type { Folio } from '../../src/mm/folio.js';
import { fillFolio, testFdt } from './_kho-test.js';

const MiB = 1024 * 1024;

/** Allocates every free page of the successor and writes to it: a fault means a preserved page was handed out. */
function allocateAndTouchAll(k: Kernel): number {
  let n = 0;
  for (let order = 10; order >= 0; order--) {
    for (let f = k.allocPages(order); f; f = k.allocPages(order)) {
      k.folioBytes(f).fill(0xee);
      n += 2 ** order;
    }
  }
  return n;
}

/** Boots a predecessor with preserved folios and a test subtree; returns it with its data folios. */
function predecessor(
  m: Machine,
  platformHook?: (img: LoadedImage) => void,
): { k: Kernel; data: Folio[] } {
  const k = KernelClass.boot({
    device: m.device,
    cmdline: '',
    platform: {
      execute(img) {
        platformHook?.(img);
        // The data pages are lent out: the successor must never touch them.
        for (const f of data)
          m.device.guard(f.pfn * PAGE_SIZE, 2 ** f.order * PAGE_SIZE, 'hypervisor');
        return KernelClass.boot({
          device: m.device,
          cmdline: 'fallback',
          bootBlock: img.segment.base,
          platform: m,
        });
      },
    },
  });
  const data: Folio[] = [];
  for (let i = 0; i < 24; i++) {
    const f = k.allocPages(i % 4)!;
    fillFolio(k, f, i + 1);
    k.kho.preserveFolio(f);
    data.push(f);
  }
  k.kho.addSubtree('kho-test', testFdt(k, data));
  return { k, data };
}

/** Rewrites the committed boot block's KHO root FDT, keeping the block valid. */
function rewriteRoot(m: Machine, img: LoadedImage, edit: (root: Uint8Array) => void): void {
  const bytes = m.device.bytes(img.segment.base, img.segment.size);
  const bb = decodeBootBlock(bytes.slice());
  const setupData = bb.setupData.map((s) => {
    if (s.type !== SETUP.KHO_FDT) return s;
    const data = s.data.slice();
    edit(data);
    return { type: s.type, data };
  });
  const again = encodeBootBlock({ ...bb, setupData });
  bytes.set(again);
}

test('a successor with kho=off boots cold, allocates all memory, and never touches preserved pages', () => {
  const m = Machine.create({ size: 32 * MiB });
  const { k } = predecessor(m);
  k.kexec.load({ cmdline: 'kho=off' });
  const k2 = k.kexec.exec();
  assert.equal(k2.kho.enabled, false);
  assert.match(
    k2.log.join('\n'),
    /kho=off: not reviving the handover; preserved memory stays reserved/,
  );
  assert.ok(allocateAndTouchAll(k2) > 1000);
});

test('a successor that does not know the root compatible refuses revival and never touches preserved pages', () => {
  const m = Machine.create({ size: 32 * MiB });
  const { k } = predecessor(m, (img) =>
    rewriteRoot(m, img, (root) => {
      const at = Buffer.from(root).indexOf('livekexec,kho-v1');
      root[at + 'livekexec,kho-v'.length] = '9'.charCodeAt(0);
    }),
  );
  k.kexec.load();
  const k2 = k.kexec.exec();
  assert.equal(k2.kho.isKhoBoot(), false);
  assert.match(k2.log.join('\n'), /disabling KHO revival: .*livekexec,kho-v9/);
  assert.ok(allocateAndTouchAll(k2) > 1000);
  assert.throws(
    () => k2.kho.retrieveSubtree('kho-test'),
    (e) => e instanceof KhoError && e.code === 'ENOENT',
  );
});

test('a root FDT that does not parse is refused with a reason', () => {
  const m = Machine.create({ size: 16 * MiB });
  const { k } = predecessor(m, (img) =>
    rewriteRoot(m, img, (root) => {
      root.fill(0xff, 8, 40); // the header's offsets and sizes
    }),
  );
  k.kexec.load();
  const k2 = k.kexec.exec();
  assert.equal(k2.kho.isKhoBoot(), false);
  assert.match(k2.log.join('\n'), /disabling KHO revival: EFAULT: handover FDT is not valid/);
  assert.ok(allocateAndTouchAll(k2) > 1000);
});

/*
 * Physical damage, as memory or a stray write could do it after finalize:
 * to the radix tree and subtree pages in place, and to the boot block (which
 * holds the root FDT, under the block's checksum).
 */
test('random damage to the handover is refused with a reason, raises only typed errors, and hands out no preserved page', () => {
  type Damage = {
    target: 'tree' | 'subtree' | 'bootblock' | 'root';
    pick: number;
    offset: number;
    xor: number;
  };
  const damage: fc.Arbitrary<Damage> = fc.record({
    target: fc.constantFrom(
      'tree' as const,
      'subtree' as const,
      'bootblock' as const,
      'root' as const,
    ),
    pick: fc.nat(),
    offset: fc.nat({ max: PAGE_SIZE - 1 }),
    xor: fc.integer({ min: 1, max: 255 }),
  });
  fc.assert(
    fc.property(damage, (d) => {
      const m = Machine.create({ size: 16 * MiB });
      const { k, data } = predecessor(m, (img) => {
        const bb = decodeBootBlock(m.device.bytes(img.segment.base, img.segment.size).slice());
        const root = parseRootFdt(
          bb.setupData.find((s) => s.type === SETUP.KHO_FDT)!.data,
          m.device.size,
        );
        if (d.target === 'tree') {
          const nodes = KhoRadixTree.walk(m.device, root.memoryMapPhys, () => {}).nodePhys;
          m.device.bytes(nodes[d.pick % nodes.length] + d.offset, 1)[0] ^= d.xor;
        } else if (d.target === 'subtree') {
          m.device.bytes(root.subtrees.get('kho-test')! + (d.offset % 256), 1)[0] ^= d.xor;
        } else if (d.target === 'bootblock') {
          m.device.bytes(img.segment.base + (d.offset % bb.totalSize), 1)[0] ^= d.xor;
        } else {
          // The root FDT travels inside the boot block, whose checksum covers it: damage in place.
          const rootAt = Buffer.from(m.device.bytes(img.segment.base, bb.totalSize)).indexOf(
            Buffer.from(bb.setupData.find((s) => s.type === SETUP.KHO_FDT)!.data),
          );
          m.device.bytes(img.segment.base + rootAt + (d.offset % 64), 1)[0] ^= d.xor;
        }
      });
      k.kexec.load();
      let k2: Kernel;
      try {
        k2 = k.kexec.exec();
      } catch (err) {
        // Only typed errors may escape (a root edit can make the boot block's command line or map fail to encode).
        assert.ok(err instanceof BootError || err instanceof KhoError, String(err));
        return;
      }
      if (!k2.kho.isKhoBoot()) {
        assert.ok(
          k2.boot.coldReason || k2.log.some((l) => /disabling KHO revival|refused/.test(l)),
          'a refused handover says why',
        );
      } else {
        // Revived: the data must be intact or the subtree refused with EFAULT.
        try {
          k2.kho.retrieveSubtree('kho-test');
        } catch (err) {
          assert.ok(
            err instanceof KhoError && ['EFAULT', 'ENOENT'].includes(err.code),
            String(err),
          );
        }
        for (const f of data) assert.equal(k2.kho.incoming?.orderAt(f.pfn), f.order);
      }
      try {
        allocateAndTouchAll(k2);
      } catch (err) {
        assert.fail(
          err instanceof GeneralProtectionFault
            ? `a preserved page was handed out: ${err.message}`
            : String(err),
        );
      }
    }),
    { numRuns: 300 },
  );
});
