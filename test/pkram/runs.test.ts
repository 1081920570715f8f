/** RunList: a node's blocks as runs, and compacted(), the order the table holds them in. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { RunList } from '../../src/pkram/runs.js';

/** Blocks as "pfn/order" strings, sorted: what a list holds, whatever its runs. */
function blocks(l: RunList): string[] {
  const pairs = l.blockPairs();
  const out: string[] = [];
  for (let i = 0; i < pairs.length; i += 2) out.push(`${pairs[i]}/${pairs[i + 1]}`);
  return out.sort();
}

/** Distinct aligned blocks in slots of 2^9 pages, shuffled: folios as an allocator hands them out. */
const scattered = fc
  .uniqueArray(fc.nat(4095), { minLength: 1, maxLength: 300 })
  .chain((slots) =>
    fc.tuple(
      fc.constant(slots),
      fc.array(fc.constantFrom(0, 3, 9), { minLength: slots.length, maxLength: slots.length }),
    ),
  );

describe('RunList.compacted', () => {
  it('keeps every block, in ascending runs, neighbours of one order merged', () => {
    fc.assert(
      fc.property(scattered, ([slots, orders]) => {
        const l = new RunList();
        slots.forEach((s, i) => {
          l.add(s * 512, orders[i]);
        });
        const c = l.compacted();
        assert.deepEqual(blocks(c), blocks(l));
        for (let r = 1; r < c.length; r++) {
          assert.ok(c.pfns[r] > c.pfns[r - 1], 'runs ascend');
          const prevEnd = c.pfns[r - 1] + c.blocks[r - 1] * 2 ** c.orders[r - 1];
          assert.ok(
            prevEnd !== c.pfns[r] || c.orders[r] !== c.orders[r - 1],
            'contiguous runs of one order are one run',
          );
        }
      }),
    );
  });

  it('makes 512 order-9 folios saved in a scattered order one run', () => {
    const l = new RunList();
    for (let i = 0; i < 512; i++) l.add(((i * 37) % 512) * 512, 9);
    assert.equal(l.length, 512);
    const c = l.compacted();
    assert.equal(c.length, 1);
    assert.deepEqual([c.pfns[0], c.blocks[0], c.orders[0]], [0, 512, 9]);
  });

  it('returns the list itself when it ascends already, or when runs cannot be told apart', () => {
    const ascending = new RunList();
    for (let i = 0; i < 10; i++) ascending.add(i * 4, 1);
    assert.equal(ascending.compacted(), ascending);
    // Two runs from one pfn: preserving refuses them, so they are left for it to refuse.
    const twice = new RunList();
    twice.add(8, 0);
    twice.add(0, 0);
    twice.add(8, 3);
    assert.equal(twice.compacted(), twice);
    const far = new RunList();
    far.add(2 ** 33, 0);
    far.add(0, 0);
    assert.equal(far.compacted(), far);
  });
});
