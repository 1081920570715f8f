/**
 * Damaged handovers: random byte damage in the super block, the node,
 * object, link and data pages and the preserved-page table. A successor that
 * boots on it may refuse it, or load what validation let through, but only
 * ever raises PkramError (a DeviceError or fault would mean a read outside the
 * device or a guarded page) and never hangs.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { PAGE_SIZE } from '../../src/memory/device.js';
import { HeapDevice } from '../../src/memory/heap.js';
import { Pkram, PkramError } from '../../src/pkram/index.js';
import { bootId, machine, makeFolio, pattern, readAll, successor } from './_setup.js';

const NPAGES = 2048;

function predecessor(): { image: Uint8Array; superPfn: number; pages: number[] } {
  const m = machine(NPAGES, 4, 4);
  for (let n = 0; n < 3; n++) {
    const node = m.pkram.prepareSave(`node-${n}`);
    for (let k = 0; k < 2; k++) {
      const obj = node.prepareSaveObj();
      for (let i = 0; i < 3 + n * 40; i++) obj.saveFolio(makeFolio(m, i % 3, i), i);
      obj.write(pattern(5000 * n + 3, n));
      obj.finishSaveObj();
    }
    node.finishSave();
  }
  const superPfn = m.pkram.finalize();
  const pages: number[] = [];
  for (const r of Pkram.preservedRanges(m.device, superPfn, 4096)) {
    for (let p = r.base / PAGE_SIZE; p < (r.base + r.size) / PAGE_SIZE; p++) pages.push(p);
  }
  return { image: m.device.bytes(0, NPAGES * PAGE_SIZE).slice(), superPfn, pages };
}

describe('Pkram on damaged handovers (property)', () => {
  const pre = predecessor();
  // Metadata lives in the first 32 bytes of a page mostly; damage there more often.
  const damage = fc.record({
    page: fc.constantFrom(...pre.pages),
    offset: fc.oneof(fc.integer({ min: 0, max: 63 }), fc.integer({ min: 0, max: PAGE_SIZE - 1 })),
    value: fc.integer({ min: 0, max: 255 }),
  });

  it('only PkramError, never a read outside the device', () => {
    fc.assert(
      fc.property(
        fc.array(damage, { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        (hits, superHit) => {
          const device = new HeapDevice(NPAGES * PAGE_SIZE);
          device.bytes(0, NPAGES * PAGE_SIZE).set(pre.image);
          for (const h of hits) device.bytes(h.page * PAGE_SIZE + h.offset, 1)[0] = h.value;
          if (superHit) {
            // Also damage the super block past its crc'd header: must not matter.
            device.bytes(pre.superPfn * PAGE_SIZE + 2000, 1)[0] ^= 0x5a;
          }
          try {
            const s = successor(device, pre.superPfn, {
              generation: 4,
              predecessorBootId: bootId(4),
            });
            Pkram.inspect(device, pre.superPfn, undefined);
            for (const info of s.pkram.list()) {
              const node = s.pkram.prepareLoad(info.name);
              for (let obj = node.prepareLoadObj(); obj !== null; obj = node.prepareLoadObj()) {
                while (obj.loadFolio() !== null) {}
                readAll(obj, 3000);
                obj.finishLoadObj();
              }
              node.finishLoad();
            }
          } catch (err) {
            if (!(err instanceof PkramError)) throw err;
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it('an undamaged image still attaches (the harness is not vacuous)', () => {
    const device = new HeapDevice(NPAGES * PAGE_SIZE);
    device.bytes(0, NPAGES * PAGE_SIZE).set(pre.image);
    const s = successor(device, pre.superPfn, { generation: 4, predecessorBootId: bootId(4) });
    assert.deepEqual(
      s.pkram.list().map((n) => n.folios),
      [6, 86, 166],
    );
  });
});
