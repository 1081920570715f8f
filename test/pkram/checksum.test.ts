/**
 * Every PKRAM metadata page a successor reads is checked against a crc
 * before use: a flipped bit that still decodes to something plausible (an
 * index, a byte length, a name, a table bit, a region) is a refusal, never a
 * wrong value handed back as valid.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import { getU64, setU64 } from '../../src/base/u64.js';
import { KhoRadixTree } from '../../src/kho/radix.js';
import { PAGE_SIZE } from '../../src/memory/device.js';
import {
  LINK_ENTRY_OFF_INDEX,
  LINK_ENTRY_SIZE,
  LINK_OFF_COUNT,
  LINK_OFF_CRC,
  LINK_OFF_ENTRIES,
  NODE_OFF_CRC,
  NODE_OFF_NAME,
  NODE_OFF_OBJ,
  OBJ_OFF_BYTE_LEN,
  OBJ_OFF_CRC,
  OBJ_OFF_FOLIO_HEAD,
  REGION_ENTRY_SIZE,
  REGION_OFF_SIZE,
  SB_OFF_NODE_PFN,
  SB_OFF_NR_REGIONS,
  SB_OFF_REGION_CRC,
  SB_OFF_REGION_PFN,
  SB_OFF_TABLE_CRC,
  SB_OFF_TABLE_ROOT,
} from '../../src/pkram/abi.js';
import { Pkram, PkramError } from '../../src/pkram/index.js';
import { bootId, type Machine, machine, makeFolio, pattern, readAll, successor } from './_setup.js';

const EXPECT = { generation: 3, predecessorBootId: bootId(3) };

/** One node "db": one object of three order-0 folios at indexes 0, 8, 16 and 10,000 bytes. */
function saved(): { m: Machine; superPfn: number; image: Uint8Array } {
  const m = machine(2048, 3, 3);
  const node = m.pkram.prepareSave('db');
  const obj = node.prepareSaveObj();
  for (let i = 0; i < 3; i++) obj.saveFolio(makeFolio(m, 0, i), i * 8);
  obj.write(pattern(10_000, 1));
  obj.finishSaveObj();
  node.finishSave();
  const superPfn = m.pkram.finalize();
  return { m, superPfn, image: m.device.bytes(0, m.device.size).slice() };
}

function pointers(m: Machine, superPfn: number) {
  const sb = m.device.view(superPfn * PAGE_SIZE, PAGE_SIZE);
  const node = getU64(sb, SB_OFF_NODE_PFN);
  const obj = getU64(m.device.view(node * PAGE_SIZE, PAGE_SIZE), NODE_OFF_OBJ);
  const link = getU64(m.device.view(obj * PAGE_SIZE, PAGE_SIZE), OBJ_OFF_FOLIO_HEAD);
  return {
    node,
    obj,
    link,
    region: getU64(sb, SB_OFF_REGION_PFN),
    root: getU64(sb, SB_OFF_TABLE_ROOT),
  };
}

function crcRefusal(e: unknown): boolean {
  assert.ok(e instanceof PkramError, `expected a PkramError, got ${e}`);
  assert.equal(e.code, 'EFAULT');
  assert.equal(e.reason, 'crc');
  return true;
}

describe('PKRAM metadata checksums', () => {
  it("node, object and link pages carry zlib's CRC-32 of their used bytes (since v3)", () => {
    const { m, superPfn } = saved();
    const { node, obj, link } = pointers(m, superPfn);
    const page = (pfn: number) => m.device.bytes(pfn * PAGE_SIZE, PAGE_SIZE);
    const stored = (pfn: number, off: number) =>
      m.device.view(pfn * PAGE_SIZE, PAGE_SIZE).getUint32(off, true);
    assert.equal(stored(node, NODE_OFF_CRC), crc32(page(node).subarray(0, NODE_OFF_CRC)));
    assert.equal(stored(obj, OBJ_OFF_CRC), crc32(page(obj).subarray(0, OBJ_OFF_CRC)));
    const used = stored(link, LINK_OFF_COUNT) * LINK_ENTRY_SIZE;
    assert.equal(used, 3 * LINK_ENTRY_SIZE);
    const entries = page(link).subarray(LINK_OFF_ENTRIES, LINK_OFF_ENTRIES + used);
    assert.equal(
      stored(link, LINK_OFF_CRC),
      crc32(entries, crc32(page(link).subarray(0, LINK_OFF_CRC))),
    );
  });

  it("the super block's table and region crcs are zlib's CRC-32 too (the v4 format)", () => {
    const { m, superPfn } = saved();
    const { root, region } = pointers(m, superPfn);
    const sb = m.device.view(superPfn * PAGE_SIZE, PAGE_SIZE);
    // The table: its pages ascending, each one's u64 LE address, then its bytes.
    let table = 0;
    const addr = new Uint8Array(8);
    for (const phys of KhoRadixTree.walk(m.device, root, () => {}).nodePhys.sort((a, b) => a - b)) {
      setU64(new DataView(addr.buffer), 0, phys);
      table = crc32(m.device.bytes(phys, PAGE_SIZE), crc32(addr, table));
    }
    assert.equal(sb.getUint32(SB_OFF_TABLE_CRC, true), table);
    const regions = sb.getUint32(SB_OFF_NR_REGIONS, true);
    assert.ok(regions >= 1);
    assert.equal(
      sb.getUint32(SB_OFF_REGION_CRC, true),
      crc32(m.device.bytes(region * PAGE_SIZE, regions * REGION_ENTRY_SIZE)),
    );
  });

  it("a flipped bit in a folio entry's index is refused, not loaded as another index", () => {
    const { m, superPfn } = saved();
    const { link } = pointers(m, superPfn);
    const at = link * PAGE_SIZE + LINK_OFF_ENTRIES + LINK_ENTRY_SIZE + LINK_ENTRY_OFF_INDEX;
    m.device.bytes(at, 1)[0] ^= 1 << 5; // index 8 -> 40
    assert.throws(() => successor(m.device, superPfn, EXPECT), crcRefusal);
    assert.throws(() => Pkram.inspect(m.device, superPfn, EXPECT), crcRefusal);
  });

  it('a changed byte length in an object page is refused, not read as more bytes', () => {
    const { m, superPfn } = saved();
    const { obj } = pointers(m, superPfn);
    const view = m.device.view(obj * PAGE_SIZE, PAGE_SIZE);
    setU64(view, OBJ_OFF_BYTE_LEN, 10_001); // still three data pages
    assert.throws(() => successor(m.device, superPfn, EXPECT), crcRefusal);
  });

  it('a changed node name is refused, not listed under the new name', () => {
    const { m, superPfn } = saved();
    const { node } = pointers(m, superPfn);
    m.device.bytes(node * PAGE_SIZE + NODE_OFF_NAME + 1, 1)[0] ^= 1; // "db" -> "dc"
    assert.throws(() => Pkram.inspect(m.device, superPfn, EXPECT), crcRefusal);
  });

  it('a bit set in any page of the preserved-page table is refused', () => {
    const { m, superPfn, image } = saved();
    const { root } = pointers(m, superPfn);
    const tree = KhoRadixTree.walk(m.device, root, () => {});
    assert.ok(tree.nodePhys.length >= 2);
    for (const phys of tree.nodePhys) {
      m.device.bytes(0, image.length).set(image);
      // Byte 200 of a leaf covers pfns 1600..1607 at order 0: free pages of this machine.
      m.device.bytes(phys + 200, 1)[0] ^= 1;
      assert.throws(
        () => Pkram.inspect(m.device, superPfn, EXPECT),
        (e: unknown) => e instanceof PkramError && e.code === 'EFAULT',
        `table page ${phys / PAGE_SIZE}`,
      );
    }
  });

  it('a changed region list is refused', () => {
    const { m, superPfn } = saved();
    const { region } = pointers(m, superPfn);
    const view = m.device.view(region * PAGE_SIZE, PAGE_SIZE);
    setU64(view, REGION_OFF_SIZE, getU64(view, REGION_OFF_SIZE) + PAGE_SIZE);
    assert.throws(() => Pkram.regionList(m.device, superPfn, EXPECT), crcRefusal);
    assert.throws(() => Pkram.inspect(m.device, superPfn, EXPECT), crcRefusal);
  });

  it('an undamaged handover loads every index and byte (the checks are not vacuous)', () => {
    const { m, superPfn } = saved();
    const s = successor(m.device, superPfn, EXPECT);
    const node = s.pkram.prepareLoad('db');
    const obj = node.prepareLoadObj()!;
    const indexes: number[] = [];
    for (let f = obj.loadFolio(); f !== null; f = obj.loadFolio()) indexes.push(f.index);
    assert.deepEqual(indexes, [0, 8, 16]);
    assert.deepEqual(readAll(obj, 4096), pattern(10_000, 1));
    obj.finishLoadObj();
    node.finishLoad();
  });

  it('a node saved by a successor (inherited pages resealed) hands over again', () => {
    const { m, superPfn } = saved();
    const s = successor(m.device, superPfn, EXPECT, 4);
    const node = s.pkram.prepareSave('second');
    const obj = node.prepareSaveObj();
    for (let i = 0; i < 600; i++) obj.saveFolio(makeFolio(s, 0, i), i); // three link pages
    obj.finishSaveObj();
    node.finishSave();
    const again = s.pkram.finalize();
    const t = successor(m.device, again, { generation: 4, predecessorBootId: bootId(4) });
    assert.deepEqual(
      t.pkram.list().map((n) => [n.name, n.folios]),
      [
        ['db', 3],
        ['second', 600],
      ],
    );
  });
});
