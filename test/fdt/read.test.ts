/**
 * The reader on the dtc fixtures: what it sees equals what the DTS sources
 * say, in every version dtc writes and in every block layout.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Fdt, FdtError } from '../../src/fdt/index.js';
import {
  ALL_ORDERS,
  codeOf,
  dumpTree,
  FIXTURES,
  loadDtb,
  MODERN_FIXTURES,
  relayout,
} from './_support.js';

const bytes = (...b: number[]) => new Uint8Array(b);

// basic.dts in every version dtc writes: the same tree.
for (const name of ['basic', 'basic-v2', 'basic-v3', 'basic-v16']) {
  describe(`${name}.dtb reads as basic.dts says`, () => {
    const fdt = Fdt.from(loadDtb(name));
    const root = 0;

    it('reservation map', () => {
      assert.deepEqual(fdt.reservations(), [
        { address: 0x10000000, size: 0x4000 },
        { address: 0x20000000, size: 0x100000 },
        { address: 0xfffffffff0000000n, size: 0x10000000 },
      ]);
    });

    it('strings and string lists', () => {
      assert.equal(fdt.getString(root, 'model'), 'livekexec,basic');
      assert.deepEqual(fdt.getStringList(root, 'compatible'), ['livekexec,basic', 'simple-bus']);
      assert.deepEqual(fdt.getStringList(root, 'string-list'), ['first', 'second', '', 'fourth']);
      assert.equal(fdt.getString(root, 'string-list'), 'first');
      assert.equal(fdt.getString(root, 'utf8-string'), 'café');
      assert.deepEqual(fdt.getStringList(root, 'empty-prop'), []);
    });

    it('cells, u32 and u64 (number when exact, bigint above 2^53-1)', () => {
      assert.equal(fdt.getU32(root, 'u32-prop'), 0x12345678);
      assert.deepEqual(fdt.getCells(root, 'cells-prop'), [1, 2, 3, 0xffffffff]);
      assert.equal(fdt.getU64(root, 'u64-small'), 0x123456789abc);
      assert.equal(fdt.getU64(root, 'u64-big'), 0xfedcba9876543210n);
      assert.deepEqual(fdt.getCells(root, 'empty-prop'), []);
    });

    it('bytes, mixed values and empty properties', () => {
      assert.deepEqual(fdt.getProp(root, 'bytes-prop'), bytes(0, 1, 2, 0xfe, 0xff));
      assert.deepEqual(
        fdt.getProp(root, 'mixed'),
        bytes(0x61, 0x62, 0x63, 0, 0, 0, 0, 1, 0xab, 0xcd),
      );
      assert.equal(fdt.getProp(root, 'empty-prop').length, 0);
      assert.equal(fdt.hasProp(root, 'empty-prop'), true);
      assert.equal(fdt.hasProp(root, 'no-such-prop'), false);
    });

    it('getProp is zero-copy', () => {
      const v = fdt.getProp(root, 'u32-prop');
      assert.equal(v.buffer, fdt.bytes.buffer);
    });

    it('typed getters refuse values of the wrong shape with BADVALUE', () => {
      assert.equal(
        codeOf(() => fdt.getU32(root, 'u64-big')),
        'BADVALUE',
      );
      assert.equal(
        codeOf(() => fdt.getU64(root, 'u32-prop')),
        'BADVALUE',
      );
      assert.equal(
        codeOf(() => fdt.getCells(root, 'bytes-prop')),
        'BADVALUE',
      );
      assert.equal(
        codeOf(() => fdt.getString(root, 'bytes-prop')),
        'BADVALUE',
      );
      assert.equal(
        codeOf(() => fdt.getString(root, 'empty-prop')),
        'BADVALUE',
      );
      assert.equal(
        codeOf(() => fdt.getStringList(root, 'u32-prop')),
        'BADVALUE',
      );
      assert.equal(
        codeOf(() => fdt.getProp(root, 'nope')),
        'NOTFOUND',
      );
    });

    it('paths, unit addresses and names', () => {
      const serial = fdt.pathOffset('/soc@0/serial@10000');
      assert.equal(fdt.getName(serial), 'serial@10000');
      assert.equal(fdt.getName(root), '');
      assert.equal(fdt.getPath(serial), '/soc@0/serial@10000');
      assert.equal(fdt.getPath(root), '/');
      // Without the unit address the first match wins, as in libfdt.
      assert.equal(fdt.pathOffset('/soc/serial'), serial);
      assert.equal(fdt.pathOffset('//soc//serial@10000/'), serial);
      assert.equal(fdt.getPath(fdt.pathOffset('/soc/serial@20000')), '/soc@0/serial@20000');
      // An exact name without unit address is found even after name@unit siblings.
      assert.equal(fdt.getPath(fdt.pathOffset('/flash/partition')), '/flash/partition@0');
      assert.equal(fdt.getString(fdt.pathOffset('/flash/partition@1000'), 'label'), 'b');
      assert.equal(fdt.pathOffset('/'), root);
      assert.equal(
        codeOf(() => fdt.pathOffset('/soc/serial@30000')),
        'NOTFOUND',
      );
      assert.equal(
        codeOf(() => fdt.pathOffset('/so')),
        'NOTFOUND',
      );
      assert.equal(
        codeOf(() => fdt.pathOffset('')),
        'BADPATH',
      );
      assert.equal(
        codeOf(() => fdt.pathOffset('/soc@0/serial@10000@1')),
        'NOTFOUND',
      );
    });

    it('aliases', () => {
      const serial = fdt.pathOffset('/soc@0/serial@10000');
      assert.equal(fdt.getAlias('serial0'), '/soc@0/serial@10000');
      assert.equal(fdt.pathOffset('serial0'), serial);
      assert.equal(fdt.getPath(fdt.pathOffset('eth/mdio/phy')), '/soc@0/ethernet@30000/mdio/phy@1');
      assert.equal(
        codeOf(() => fdt.pathOffset('nosuch')),
        'BADPATH',
      );
      assert.equal(
        codeOf(() => fdt.pathOffset('bad-alias')),
        'BADPATH',
      );
      assert.equal(
        codeOf(() => fdt.getAlias('nosuch')),
        'NOTFOUND',
      );
      assert.equal(
        codeOf(() => fdt.getAlias('bad-alias')),
        'BADVALUE',
      );
    });

    it('subnodes, parents and depth', () => {
      const soc = fdt.pathOffset('/soc');
      const names = [...fdt.subnodes(soc)].map((o) => fdt.getName(o));
      assert.deepEqual(names, ['serial@10000', 'serial@20000', 'ethernet@30000']);
      const top = [...fdt.subnodes(root)].map((o) => fdt.getName(o));
      assert.deepEqual(top, [
        'aliases',
        'chosen',
        'memory@80000000',
        'interrupt-controller@1000',
        'soc@0',
        'flash',
      ]);
      const phy = fdt.pathOffset('/soc/ethernet@30000/mdio/phy@1');
      assert.equal(fdt.nodeDepth(phy), 4);
      assert.equal(fdt.getPath(fdt.parentOffset(phy)), '/soc@0/ethernet@30000/mdio');
      assert.equal(fdt.parentOffset(soc), root);
      assert.equal(
        codeOf(() => fdt.parentOffset(root)),
        'NOTFOUND',
      );
      assert.equal(fdt.firstSubnode(phy), -1);
      assert.equal(fdt.subnodeOffset(soc, 'ethernet'), fdt.pathOffset('/soc@0/ethernet@30000'));
      assert.equal(
        codeOf(() => fdt.subnodeOffset(soc, 'mdio')),
        'NOTFOUND',
      );
    });

    it('nextNode walks in document order with relative depth', () => {
      const seen: string[] = [];
      let at = fdt.nextNode(-1, 0);
      while (at.offset >= 0) {
        seen.push(`${at.depth}:${fdt.getName(at.offset)}`);
        at = fdt.nextNode(at.offset, at.depth);
      }
      assert.equal(seen.length, 15);
      assert.deepEqual(seen.slice(0, 3), ['1:', '2:aliases', '2:chosen']);
      assert.equal(seen[14], '3:partition');
    });

    it('reg decoded with the parent cells', () => {
      assert.deepEqual(fdt.getReg(fdt.pathOffset('/memory')), [
        { address: 0x80000000, size: 0x40000000 },
        { address: 0x100000000, size: 0x80000000 },
      ]);
      assert.deepEqual(fdt.getReg(fdt.pathOffset('/soc/serial@20000')), [
        { address: 0x20000, size: 0x100 },
      ]);
      assert.deepEqual(fdt.getReg(fdt.pathOffset('/soc/ethernet/mdio/phy')), [
        { address: 1, size: 0 },
      ]);
      assert.equal(
        codeOf(() => fdt.getReg(root)),
        'NOTFOUND',
      );
      assert.equal(fdt.addressCells(root), 2);
      assert.equal(fdt.sizeCells(fdt.pathOffset('/soc/ethernet/mdio')), 0);
      assert.equal(fdt.addressCells(fdt.pathOffset('/chosen')), 2, 'default');
      assert.equal(fdt.sizeCells(fdt.pathOffset('/chosen')), 1, 'default');
      assert.equal(
        codeOf(() => fdt.addressCells(fdt.pathOffset('/interrupt-controller'))),
        'BADNCELLS',
      );
    });

    it('phandles, including linux,phandle', () => {
      const intc = fdt.pathOffset('/interrupt-controller@1000');
      const ph = fdt.getPhandle(intc);
      assert.ok(ph > 0);
      assert.equal(fdt.getU32(fdt.pathOffset('/soc'), 'interrupt-parent'), ph);
      assert.equal(fdt.nodeOffsetByPhandle(ph), intc);
      const phy = fdt.pathOffset('/soc/ethernet/mdio/phy');
      assert.equal(fdt.getPhandle(phy), 0x77);
      assert.equal(fdt.nodeOffsetByPhandle(0x77), phy);
      assert.equal(fdt.getPhandle(root), 0);
      assert.equal(
        codeOf(() => fdt.nodeOffsetByPhandle(0)),
        'BADPHANDLE',
      );
      assert.equal(
        codeOf(() => fdt.nodeOffsetByPhandle(0xffffffff)),
        'BADPHANDLE',
      );
      assert.equal(
        codeOf(() => fdt.nodeOffsetByPhandle(0x1234)),
        'NOTFOUND',
      );
    });

    it('property iteration by offset', () => {
      const serial = fdt.pathOffset('/soc/serial@10000');
      const props = [...fdt.propertyOffsets(serial)]
        .map((p) => fdt.getPropertyByOffset(p))
        // dtc adds a `name` property to every node before v16.
        .filter((p) => fdt.version >= 16 || p.name !== 'name');
      assert.deepEqual(
        props.map((p) => p.name),
        ['compatible', 'reg', 'interrupts', 'clock-frequency'],
      );
      assert.deepEqual(props[3]!.value, bytes(0, 0x38, 0x40, 0));
    });

    it('bad offsets are BADOFFSET', () => {
      const serial = fdt.pathOffset('/soc/serial@10000');
      const prop = fdt.firstPropertyOffset(serial);
      for (const off of [-1, 1, 2, 3, prop, 1e9, 0.5, Number.NaN]) {
        assert.equal(
          codeOf(() => fdt.getName(off)),
          'BADOFFSET',
          `getName(${off})`,
        );
        assert.equal(
          codeOf(() => fdt.getProp(off, 'reg')),
          'BADOFFSET',
        );
        assert.equal(
          codeOf(() => fdt.firstSubnode(off)),
          'BADOFFSET',
        );
      }
      assert.equal(
        codeOf(() => fdt.getPropertyByOffset(serial)),
        'BADOFFSET',
      );
      assert.equal(
        codeOf(() => fdt.nextPropertyOffset(serial)),
        'BADOFFSET',
      );
      assert.equal(
        codeOf(() => fdt.getPath(prop)),
        'BADOFFSET',
      );
    });
  });
}

describe('board.dtb', () => {
  const fdt = Fdt.from(loadDtb('board'));
  it('reads as board.dts says', () => {
    assert.equal(fdt.getString(0, 'model'), 'Livekexec Example Board');
    assert.deepEqual(fdt.reservations(), [{ address: 0x48000000, size: 0x1000000 }]);
    const cpu1 = fdt.pathOffset('/cpus/cpu@1');
    assert.deepEqual(fdt.getReg(cpu1), [{ address: 1, size: 0 }]);
    const l2 = fdt.pathOffset('/cpus/l2-cache');
    assert.equal(fdt.getU32(cpu1, 'next-level-cache'), fdt.getPhandle(l2));
    assert.deepEqual(fdt.getReg(fdt.pathOffset('/memory')), [
      { address: 0x40000000, size: 0x80000000 },
    ]);
    assert.deepEqual(fdt.getReg(fdt.pathOffset('/soc/interrupt-controller')), [
      { address: 0x8000000, size: 0x10000 },
      { address: 0x80a0000, size: 0xf60000 },
    ]);
    assert.equal(
      fdt.getPath(fdt.pathOffset('ethernet0/mdio/ethernet-phy')),
      '/soc@0/ethernet@b000000/mdio/ethernet-phy@1',
    );
    assert.equal(fdt.getString(fdt.pathOffset('/chosen'), 'stdout-path'), 'serial0:115200n8');
    assert.deepEqual(fdt.getStringList(fdt.pathOffset('/clock-controller'), 'clock-output-names'), [
      'osc24m',
      'osc32k',
    ]);
    assert.deepEqual(fdt.getCells(fdt.pathOffset('/soc/mmc'), 'interrupts'), [0, 9, 4, 0, 10, 4]);
    assert.equal(fdt.hasProp(fdt.pathOffset('/reserved-memory/linux,cma'), 'reusable'), true);
  });
});

describe('deep.dtb and wide.dtb', () => {
  it('a 40-level chain', () => {
    const fdt = Fdt.from(loadDtb('deep'));
    const walk = [...fdt.walk()];
    assert.equal(walk.length, 41);
    walk.forEach((e, i) => {
      assert.equal(e.depth, i);
      assert.equal(e.name, i === 0 ? '' : `level${i}`);
      if (i > 0) assert.equal(fdt.getU32(e.offset, 'depth'), i);
    });
    const path = Array.from({ length: 40 }, (_, i) => `level${i + 1}`).join('/');
    const last = fdt.pathOffset(`/${path}`);
    assert.equal(fdt.getPath(last), `/${path}`);
    assert.equal(fdt.nodeDepth(last), 40);
    assert.equal(fdt.getName(fdt.parentOffset(last)), 'level39');
  });

  it('500 siblings with unit addresses', () => {
    const fdt = Fdt.from(loadDtb('wide'));
    const bus = fdt.pathOffset('/bus');
    const kids = [...fdt.subnodes(bus)];
    assert.equal(kids.length, 500);
    kids.forEach((k, i) => {
      assert.equal(fdt.getName(k), `dev@${(i * 0x100).toString(16)}`);
      assert.equal(fdt.getU32(k, 'index'), i);
      assert.equal(fdt.getString(k, 'label'), `dev${i}`);
      assert.deepEqual(fdt.getReg(k), [{ address: i * 0x100, size: 0x100 }]);
    });
    assert.equal(fdt.pathOffset('/bus/dev@1f300'), kids[499]);
    assert.equal(fdt.pathOffset('/bus/dev'), kids[0]);
  });
});

describe('layouts', () => {
  for (const name of MODERN_FIXTURES) {
    it(`${name} reads the same in all six block orders, as v16 and v17, with NOPs`, () => {
      const original = loadDtb(name);
      const expected = dumpTree(Fdt.from(original));
      for (const order of ALL_ORDERS) {
        for (const version of [16, 17] as const) {
          for (const nopEvery of [0, 1, 3]) {
            const blob = relayout(original, { order, version, nopEvery });
            const fdt = Fdt.from(blob);
            const what = `${order.join(',')} v${version} nop/${nopEvery}`;
            assert.equal(fdt.version, version);
            assert.equal(
              codeOf(() => fdt.checkFull()),
              'ok',
              what,
            );
            assert.deepEqual(dumpTree(fdt), expected, what);
            if (nopEvery === 1) assert.ok(blob.length > original.length, 'NOPs were added');
          }
        }
      }
    });
  }
});

describe('errors', () => {
  it('only FdtError, with the libfdt name first in the message', () => {
    const fdt = Fdt.from(loadDtb('basic'));
    assert.throws(
      () => fdt.getProp(0, 'nope'),
      (e: unknown) =>
        e instanceof FdtError &&
        e.code === 'NOTFOUND' &&
        e.message.startsWith('FDT_ERR_NOTFOUND: '),
    );
  });

  it('every fixture is readable end to end', () => {
    for (const name of FIXTURES) assert.ok(dumpTree(Fdt.from(loadDtb(name))).length > 2, name);
  });
});
