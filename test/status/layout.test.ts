/**
 * Shrinking a memory layout for the status area: at most the runs asked
 * for, every byte of every kind kept, and the few runs of rare kinds (the
 * header, the status area, a pool...) kept exactly, so a picture of a big
 * device still shows them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Machine } from '../../src/index.js';
import type { Folio } from '../../src/mm/folio.js';
import { MAX_LAYOUT_RUNS } from '../../src/status/abi.js';
import { bytesByKind, coarsenRuns } from '../../src/status/layout.js';
import type { MemoryLayout, MemoryRun, RunKind } from '../../src/status/model.js';

const PAGE = 4096;
const MiB = 1024 * 1024;

function checkCovers(layout: MemoryLayout): void {
  let end = 0;
  for (const r of layout.runs) {
    assert.equal(r.base, end, 'sorted, no gap');
    assert.ok(r.size > 0 && r.size % PAGE === 0);
    end = r.base + r.size;
  }
  assert.equal(end, layout.size);
}

const BULK: RunKind[] = ['free', 'allocated', 'kho', 'pkram'];
const RARE: [RunKind, string | undefined][] = [
  ['header', undefined],
  ['status', undefined],
  ['reserve-mem', 'trace'],
  ['pmpool', 'default'],
];

test('coarsenRuns keeps every byte of every kind and the rare kinds’ runs exactly', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 1, max: 40 }), fc.nat({ max: 3 })), {
        minLength: 1,
        maxLength: 600,
      }),
      fc.uniqueArray(fc.nat({ max: 599 }), { maxLength: RARE.length }),
      fc.integer({ min: 4 * RARE.length, max: 128 }),
      (pieces, rareAt, max) => {
        const runs: MemoryRun[] = [];
        let at = 0;
        pieces.forEach(([pages, k], i) => {
          const r = rareAt.indexOf(i);
          const [kind, owner] =
            r >= 0 ? (RARE[r] as [RunKind, string | undefined]) : [BULK[k] as RunKind, undefined];
          const size = pages * PAGE;
          const last = runs[runs.length - 1];
          if (r < 0 && last?.kind === kind)
            runs[runs.length - 1] = { ...last, size: last.size + size };
          else
            runs.push(
              owner === undefined ? { base: at, size, kind } : { base: at, size, kind, owner },
            );
          at += size;
        });
        const layout: MemoryLayout = { size: at, nodes: [{ base: 0, size: at }], runs };
        const small = coarsenRuns(layout, max);
        checkCovers(small);
        assert.ok(small.runs.length <= max, `${small.runs.length} runs for ${max}`);
        assert.deepEqual(bytesByKind(small), bytesByKind(layout));
        for (const r of runs.filter((x) => RARE.some(([k]) => k === x.kind))) {
          assert.ok(
            small.runs.some(
              (s) =>
                s.base === r.base && s.size === r.size && s.kind === r.kind && s.owner === r.owner,
            ),
            `${r.kind} [${r.base}, +${r.size}) kept`,
          );
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('the published layout of a fragmented device has every kind and byte of the live one', () => {
  const m = Machine.create({ size: 128 * MiB, status: true });
  const k = m.boot('kho=on pmpool=0x4000000,0x400000 reserve_mem=64K:4K:trace');
  const folios: Folio[] = [];
  for (let i = 0; i < 8192; i++) folios.push(k.allocPages(0) as Folio);
  for (let i = 0; i < folios.length; i += 2) k.freePages(folios[i] as Folio);
  for (let i = 1; i < folios.length; i += 16) k.kho.preserveFolio(folios[i] as Folio);
  const live = k.memoryLayout();
  assert.ok(live.runs.length > MAX_LAYOUT_RUNS, `${live.runs.length} runs live`);
  const published = k.publishedStatus();
  assert.equal(published.truncated, true);
  assert.ok(published.layout.runs.length <= MAX_LAYOUT_RUNS);
  assert.deepEqual(bytesByKind(published.layout), bytesByKind(live));
  for (const kind of ['header', 'status', 'reserve-mem', 'pmpool', 'scratch'] as RunKind[]) {
    const want = live.runs.filter((r) => r.kind === kind);
    const got = published.layout.runs.filter((r) => r.kind === kind);
    assert.deepEqual(got, want, `${kind}: the same runs, owners included`);
  }
});
