import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Kernel } from '../../src/kernel/kernel.js';
import { Machine } from '../../src/machine.js';
import type { Folio } from '../../src/mm/folio.js';
import { fillFolio, restoreAndCheck, testFdt } from './_kho-test.js';

const MiB = 1024 * 1024;

test('the kernel KHO test through 100 consecutive kexecs, with frees and new preservations between', () => {
  const rnd = fc.sample(fc.integer({ min: 0, max: 2 ** 31 - 1 }), { numRuns: 1, seed: 424242 })[0];
  let x = rnd;
  const next = (n: number) => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x % n;
  };
  const m = Machine.create({ size: 64 * MiB });
  let k: Kernel = m.boot('reserve_mem=64K:4K:log');
  let folios: Folio[] = [];
  const preserveNew = (count: number) => {
    for (let i = 0; i < count; i++) {
      const f = k.allocPages(next(6));
      if (!f) break;
      fillFolio(k, f, next(2 ** 31));
      folios.push(f);
    }
  };
  preserveNew(40);
  const log = k.reserveMem('log');
  for (let gen = 0; gen < 100; gen++) {
    for (const f of folios) k.kho.preserveFolio(f);
    if (k.kho.subtreeNames().includes('kho-test')) k.kho.removeSubtree('kho-test');
    k.kho.addSubtree('kho-test', testFdt(k, folios));
    new DataView(k.reserveMem('log').bytes.buffer, k.reserveMem('log').bytes.byteOffset).setUint32(
      0,
      gen,
      true,
    );
    k.kexec.load();
    const prev = k;
    k = k.kexec.exec();
    assert.equal(k.boot.kind, 'kexec', `generation ${k.generation}: ${k.log.join('; ')}`);
    assert.equal(prev.alive, false);
    folios = restoreAndCheck(k, k.kho.retrieveSubtree('kho-test'));
    const r = k.reserveMem('log');
    assert.equal(r.base, log.base, 'reserve_mem at the same address');
    assert.equal(
      new DataView(r.bytes.buffer, r.bytes.byteOffset).getUint32(0, true),
      gen,
      'with its bytes',
    );
    assert.equal(k.kho.unclaimed().blocks, 0, 'everything was claimed');
    // Random frees, then new folios.
    const keep: Folio[] = [];
    for (const f of folios) {
      if (next(4) === 0) k.freePages(f);
      else keep.push(f);
    }
    folios = keep;
    preserveNew(next(8));
  }
  assert.equal(k.generation, 101);
});
