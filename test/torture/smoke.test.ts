/**
 * The fault suite itself must not rot: a few cases of every family run here
 * and end acceptably, a case is the same case when run again, and the
 * checks are not vacuous (damaged data, not metadata, is caught as a wrong
 * value; a page handed out twice is caught). `npm run torture` runs the
 * families at length.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PAGE_SIZE } from '../../src/memory/device.js';
import { bootFaulted, runEmulatedCase } from '../../torture/emulated.js';
import { ACCEPTABLE, type Outcome } from '../../torture/outcome.js';
import { runKill, runProcessDamage } from '../../torture/real.js';
import { REGION_FAMILIES } from '../../torture/regions.js';

const SEED = 20261207;
const ok = (o: Outcome) => (ACCEPTABLE as readonly string[]).includes(o);

describe('the fault suite (smoke)', () => {
  it('every corruption family: three cases end acceptably, and each case reproduces', () => {
    for (const family of REGION_FAMILIES) {
      for (let i = 0; i < 3; i++) {
        const r = runEmulatedCase(family, SEED, i);
        assert.ok(ok(r.outcome), `${family} case ${i}: ${r.outcome}: ${r.fault}: ${r.detail}`);
        assert.equal(runEmulatedCase(family, SEED, i).fault, r.fault, 'same seed, same fault');
      }
    }
  });

  it('an undamaged handover restores in full; a changed preserved byte is a wrong value', () => {
    assert.equal(bootFaulted(SEED, () => 'nothing').outcome, 'full');
    const r = bootFaulted(SEED, (device, snap) => {
      const f = snap.manifest.khoFolios[0];
      device.bytes(f.phys + 100, 1)[0] ^= 0x40;
      return 'a data byte of a preserved folio';
    });
    assert.equal(r.outcome, 'wrong');
    assert.match(r.detail, /kho folio 0x[0-9a-f]+: byte 100 is not what was preserved/);
  });

  it('a page the pool or the page allocator hands out while held or preserved is a page handed out twice', () => {
    // What the successor holds is what the manifest says was preserved: claim one page more in each.
    const pool = bootFaulted(SEED, (_device, snap) => {
      const last = snap.manifest.pool.at(-1)!;
      snap.manifest.pool.push({ pfn: last.pfn + last.count + 64, count: 1, seed: 0 });
      return 'a free pool page expected held';
    });
    assert.equal(pool.outcome, 'double');
    assert.match(pool.detail, /pool page \d+, held, reads as free/);
    const buddy = bootFaulted(SEED, (_device, snap) => {
      const f = snap.manifest.khoFolios[0];
      snap.manifest.khoFolios.push({ phys: f.phys + 64 * PAGE_SIZE, order: 0, seed: 0 });
      return 'a free page expected preserved';
    });
    assert.equal(buddy.outcome, 'double');
    assert.match(buddy.detail, /handed out pfn \d+ while it is still preserved/);
  });

  it('real processes: a damaged pending handover, and SIGKILL in a pool loop and an exec chain', {
    timeout: 180_000,
  }, async () => {
    for (const r of [
      await runProcessDamage(SEED, 0, 60_000),
      await runKill('pool', SEED, 0, 60_000),
      await runKill('exec', SEED, 0, 60_000),
    ]) {
      assert.ok(ok(r.outcome), `${r.outcome}: ${r.fault}: ${r.detail}`);
    }
  });
});
