import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Fdt, FdtWriter, type FdtWriterOptions } from '../../src/fdt/index.js';
import { codeOf, dumpTree, FIXTURES, loadDtb } from './_support.js';

/** A tree as plain data: what the writer is told and what the reader must give back. */
interface TreeNode {
  name: string;
  props: [string, Uint8Array][];
  children: TreeNode[];
}

function writeNode(w: FdtWriter, n: TreeNode): void {
  w.beginNode(n.name);
  for (const [name, value] of n.props) w.property(name, value);
  for (const c of n.children) writeNode(w, c);
  w.endNode();
}

/** Writes a tree with the given reservations and returns the blob. */
function writeTree(
  root: TreeNode,
  rsv: [number | bigint, number | bigint][] = [],
  options?: FdtWriterOptions,
): Uint8Array {
  const w = new FdtWriter(options);
  for (const [a, s] of rsv) w.addReservation(a, s);
  w.finishReservations();
  writeNode(w, root);
  return w.finish();
}

/** Reads a node back into plain data. */
function readTree(fdt: Fdt, offset = 0): TreeNode {
  const props: [string, Uint8Array][] = [];
  for (const p of fdt.propertyOffsets(offset)) {
    const { name, value } = fdt.getPropertyByOffset(p);
    props.push([name, new Uint8Array(value)]);
  }
  const children: TreeNode[] = [];
  for (const c of fdt.subnodes(offset)) children.push(readTree(fdt, c));
  return { name: fdt.getName(offset), props, children };
}

function header(blob: Uint8Array): DataView {
  return new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
}

const bytes = (...b: number[]) => Uint8Array.from(b);
const leaf = (name: string, props: [string, Uint8Array][] = []): TreeNode => ({
  name,
  props,
  children: [],
});

describe('FdtWriter layout', () => {
  it('writes a v17 header with libfdt sw offsets and a tree that reads back', () => {
    const w = new FdtWriter({ bootCpuidPhys: 3 });
    w.addReservation(0x1000, 0x2000);
    w.finishReservations();
    w.beginNode('');
    w.propertyString('compatible', 'livekexec,kho-v1');
    w.beginNode('cpu@0');
    w.propertyU32('reg', 0);
    w.endNode();
    w.endNode();
    const blob = w.finish();
    const h = header(blob);
    assert.equal(h.getUint32(0), 0xd00dfeed);
    assert.equal(h.getUint32(4), blob.length);
    assert.equal(h.getUint32(16), 48, 'off_mem_rsvmap: libfdt sw puts the map at 48');
    assert.equal(h.getUint32(8), 48 + 32, 'off_dt_struct after one entry and the terminator');
    assert.equal(h.getUint32(20), 17);
    assert.equal(h.getUint32(24), 16);
    assert.equal(h.getUint32(28), 3);
    assert.equal(h.getUint32(12), h.getUint32(8) + h.getUint32(36), 'strings follow struct');
    assert.equal(h.getUint32(4), h.getUint32(12) + h.getUint32(32), 'no slack at the end');
    const fdt = Fdt.from(blob);
    fdt.checkFull();
    assert.deepEqual(fdt.reservations(), [{ address: 0x1000, size: 0x2000 }]);
    assert.equal(fdt.getString(0, 'compatible'), 'livekexec,kho-v1');
    assert.equal(fdt.getU32(fdt.pathOffset('/cpu@0'), 'reg'), 0);
    assert.equal(w.phase, 'done');
  });

  it('stores typed values as the reader decodes them', () => {
    const w = new FdtWriter();
    w.addReservation(2n ** 63n, 1);
    w.finishReservations();
    w.beginNode('');
    w.propertyU32('a', 0xffffffff);
    w.propertyU64('b', 2 ** 53 - 1);
    w.propertyU64('c', 2n ** 64n - 1n);
    w.propertyCells('d', [1, 2, 3]);
    w.propertyString('e', 'héllo');
    w.propertyStringList('f', ['x', '', 'yz']);
    w.propertyEmpty('g');
    w.property('h', bytes(1, 2, 3));
    w.endNode();
    const fdt = Fdt.from(w.finish());
    fdt.checkFull();
    assert.deepEqual(fdt.reservations(), [{ address: 2n ** 63n, size: 1 }]);
    assert.equal(fdt.getU32(0, 'a'), 0xffffffff);
    assert.equal(fdt.getU64(0, 'b'), 2 ** 53 - 1);
    assert.equal(fdt.getU64(0, 'c'), 2n ** 64n - 1n);
    assert.deepEqual(fdt.getCells(0, 'd'), [1, 2, 3]);
    assert.equal(fdt.getString(0, 'e'), 'héllo');
    assert.deepEqual(fdt.getStringList(0, 'f'), ['x', '', 'yz']);
    assert.equal(fdt.getProp(0, 'g').length, 0);
    assert.deepEqual([...fdt.getProp(0, 'h')], [1, 2, 3]);
  });

  it('zeroes the padding after names and values', () => {
    const blob = writeTree({
      name: '',
      props: [['p', bytes(0xff)]],
      children: [leaf('ab')],
    });
    const h = header(blob);
    const s = h.getUint32(8);
    // BEGIN_NODE "" pad | PROP len=1 nameoff ff 00 00 00 | BEGIN_NODE "ab\0" pad
    assert.deepEqual([...blob.subarray(s + 4, s + 8)], [0, 0, 0, 0]);
    assert.deepEqual([...blob.subarray(s + 20, s + 24)], [0xff, 0, 0, 0]);
    assert.deepEqual([...blob.subarray(s + 28, s + 32)], [0x61, 0x62, 0, 0]);
  });
});

describe('FdtWriter state machine', () => {
  const inStruct = (): FdtWriter => {
    const w = new FdtWriter();
    w.finishReservations();
    return w;
  };
  const inRoot = (): FdtWriter => {
    const w = inStruct();
    w.beginNode('');
    return w;
  };
  const done = (): FdtWriter => {
    const w = inRoot();
    w.endNode();
    w.finish();
    return w;
  };
  const cases: [string, () => void][] = [
    ['beginNode before finishReservations', () => new FdtWriter().beginNode('')],
    ['property before finishReservations', () => new FdtWriter().propertyU32('a', 1)],
    ['endNode before finishReservations', () => new FdtWriter().endNode()],
    ['finish before finishReservations', () => new FdtWriter().finish()],
    ['addReservation in struct', () => inStruct().addReservation(1, 1)],
    ['finishReservations twice', () => inStruct().finishReservations()],
    ['property outside every node', () => inStruct().propertyEmpty('a')],
    ['endNode with no open node', () => inStruct().endNode()],
    ['finish without a root', () => inStruct().finish()],
    ['finish with an open node', () => inRoot().finish()],
    [
      'a second root',
      () => {
        const w = inRoot();
        w.endNode();
        w.beginNode('');
      },
    ],
    [
      'a property after the root ended',
      () => {
        const w = inRoot();
        w.endNode();
        w.propertyEmpty('a');
      },
    ],
    ['addReservation when done', () => done().addReservation(1, 1)],
    ['beginNode when done', () => done().beginNode('x')],
    ['property when done', () => done().propertyEmpty('x')],
    ['finish twice', () => done().finish()],
  ];
  for (const [what, fn] of cases) {
    it(`${what} is BADSTATE`, () => assert.equal(codeOf(fn), 'BADSTATE'));
  }

  it('accepts a property after a subnode, as libfdt does', () => {
    const w = inRoot();
    w.beginNode('a');
    w.endNode();
    w.propertyU32('late', 7);
    w.endNode();
    const blob = w.finish();
    const fdt = Fdt.from(blob);
    fdt.checkFull();
    // libfdt's property lookup stops at the first subnode, so only the bytes show it.
    assert.equal(
      codeOf(() => fdt.getProp(0, 'late')),
      'NOTFOUND',
    );
    assert.ok(Buffer.from(blob).includes(Buffer.from('late\0')));
  });

  it('tracks phase and depth', () => {
    const w = new FdtWriter();
    assert.equal(w.phase, 'rsvmap');
    w.finishReservations();
    assert.equal(w.phase, 'struct');
    w.beginNode('');
    w.beginNode('a');
    assert.equal(w.depth, 2);
  });
});

describe('FdtWriter names and values', () => {
  const inRoot = (options?: FdtWriterOptions): FdtWriter => {
    const w = new FdtWriter(options);
    w.finishReservations();
    w.beginNode('');
    return w;
  };
  it('refuses bad node and property names with BADVALUE', () => {
    for (const name of ['', 'a/b', 'a b', 'x'.repeat(32), '@1', 'a@', 'a@1@2', 'é']) {
      assert.equal(
        codeOf(() => inRoot().beginNode(name)),
        'BADVALUE',
        name,
      );
    }
    for (const name of ['', 'a@b', 'x'.repeat(32), 'a\0b', 'é']) {
      assert.equal(
        codeOf(() => inRoot().propertyEmpty(name)),
        'BADVALUE',
        name,
      );
    }
    const w = new FdtWriter();
    w.finishReservations();
    assert.equal(
      codeOf(() => w.beginNode('root')),
      'BADVALUE',
      'a named root',
    );
  });

  it('accepts dtc-valid names, with a unit address longer than 31', () => {
    const w = inRoot();
    w.beginNode(`${'n'.repeat(31)}@${'f'.repeat(40)}`);
    w.propertyEmpty('#address-cells');
    w.propertyEmpty('linux,usable-memory?');
    w.endNode();
    w.endNode();
    Fdt.from(w.finish()).checkFull();
  });

  it('with checkNames false refuses only a NUL', () => {
    const w = inRoot({ checkNames: false });
    w.beginNode('any name/at all');
    w.propertyEmpty('é ');
    assert.equal(
      codeOf(() => w.propertyEmpty('a\0')),
      'BADVALUE',
    );
    assert.equal(
      codeOf(() => w.beginNode('a\0')),
      'BADVALUE',
    );
    w.endNode();
    w.endNode();
    const fdt = Fdt.from(w.finish());
    const node = fdt.firstSubnode(0);
    assert.equal(fdt.getName(node), 'any name/at all');
    assert.equal(fdt.getPropertyByOffset(fdt.firstPropertyOffset(node)).name, '\xe9 ');
  });

  it('refuses out-of-range values with BADVALUE and writes nothing', () => {
    const w = inRoot();
    for (const fn of [
      () => w.propertyU32('a', -1),
      () => w.propertyU32('a', 2 ** 32),
      () => w.propertyU32('a', 1.5),
      () => w.propertyU64('a', -1n),
      () => w.propertyU64('a', 2n ** 64n),
      () => w.propertyU64('a', 2 ** 53),
      () => w.propertyCells('a', [1, -1]),
      () => w.propertyString('a', 'x\0y'),
      () => w.propertyStringList('a', ['x', 'y\0']),
    ]) {
      assert.equal(codeOf(fn), 'BADVALUE');
    }
    w.endNode();
    const fdt = Fdt.from(w.finish());
    assert.equal(fdt.firstPropertyOffset(0), -1, 'no property was written');
    assert.equal(fdt.sizeDtStrings, 0, 'no name was stored');
  });

  it('refuses bad reservations and capacities', () => {
    const w = new FdtWriter();
    assert.equal(
      codeOf(() => w.addReservation(1, 0)),
      'BADVALUE',
    );
    assert.equal(
      codeOf(() => w.addReservation(1, 0n)),
      'BADVALUE',
    );
    assert.equal(
      codeOf(() => w.addReservation(-1, 1)),
      'BADVALUE',
    );
    assert.equal(
      codeOf(() => w.addReservation(1, 2n ** 64n)),
      'BADVALUE',
    );
    assert.equal(
      codeOf(() => new FdtWriter({ capacity: -1 })),
      'BADVALUE',
    );
    assert.equal(
      codeOf(() => new FdtWriter({ capacity: 47, fixed: true })),
      'NOSPACE',
    );
    assert.equal(
      codeOf(() => new FdtWriter({ bootCpuidPhys: 2 ** 32 })),
      'BADVALUE',
    );
  });
});

describe('FdtWriter strings block', () => {
  function blobWithProps(names: string[], options?: FdtWriterOptions): Fdt {
    return Fdt.from(
      writeTree({ name: '', props: names.map((n) => [n, bytes(1)]), children: [] }, [], options),
    );
  }
  function nameoffs(fdt: Fdt): number[] {
    const out: number[] = [];
    const base = fdt.offDtStruct;
    const v = header(fdt.bytes);
    for (const p of fdt.propertyOffsets(0)) out.push(v.getUint32(base + p + 8));
    return out;
  }
  function strings(fdt: Fdt): string {
    return Buffer.from(
      fdt.bytes.subarray(fdt.offDtStrings, fdt.offDtStrings + fdt.sizeDtStrings),
    ).toString('latin1');
  }

  it('stores a repeated name once', () => {
    const fdt = blobWithProps(['reg', 'reg', 'reg']);
    assert.equal(fdt.sizeDtStrings, 4);
    assert.deepEqual(nameoffs(fdt), [0, 0, 0]);
  });

  it('reuses the tail of a longer name ("phandle" in "linux,phandle")', () => {
    const fdt = blobWithProps(['linux,phandle', 'phandle']);
    assert.equal(fdt.sizeDtStrings, 'linux,phandle'.length + 1);
    assert.deepEqual(nameoffs(fdt), [0, 6]);
    assert.deepEqual(
      readTree(fdt).props.map(([n]) => n),
      ['linux,phandle', 'phandle'],
    );
  });

  it('lays names out in reverse order of first use, as libfdt sw', () => {
    const fdt = blobWithProps(['phandle', 'compatible', 'linux,phandle', 'phandle']);
    assert.equal(strings(fdt), 'linux,phandle\0compatible\0phandle\0');
    // The last "phandle" takes the lowest match: the tail of "linux,phandle".
    assert.deepEqual(nameoffs(fdt), [25, 14, 0, 6]);
  });

  it('with dedupeNames false appends every name (FDT_CREATE_FLAG_NO_NAME_DEDUP)', () => {
    const fdt = blobWithProps(['reg', 'reg'], { dedupeNames: false });
    assert.equal(fdt.sizeDtStrings, 8);
    assert.deepEqual(nameoffs(fdt), [4, 0]);
    fdt.checkFull();
  });

  it('shares names with bytes above 0x7f by their tails too', () => {
    const fdt = blobWithProps(['a\xe9', '\xe9', 'a\xe9'], { checkNames: false });
    assert.equal(fdt.sizeDtStrings, 3);
    assert.deepEqual(nameoffs(fdt), [0, 1, 0]);
    assert.deepEqual(
      readTree(fdt).props.map(([n]) => n),
      ['a\xe9', '\xe9', 'a\xe9'],
    );
  });
});

describe('FdtWriter capacity', () => {
  const tree: TreeNode = {
    name: '',
    props: [['compatible', bytes(0x61, 0)]],
    children: [leaf('a', [['reg', bytes(0, 0, 0, 1)]]), leaf('b', [['status', bytes(0x6f, 0)]])],
  };
  const size = writeTree(tree).length;

  it('fits a blob in a fixed buffer of exactly its size', () => {
    const blob = writeTree(tree, [], { capacity: size, fixed: true });
    assert.equal(blob.length, size);
    assert.deepEqual(readTree(Fdt.from(blob)), tree);
  });

  it('throws NOSPACE one byte short, and a failed call leaves no trace', () => {
    assert.equal(
      codeOf(() => writeTree(tree, [], { capacity: size - 1, fixed: true })),
      'NOSPACE',
    );
    // A property that does not fit must not leave its name behind.
    const w = new FdtWriter({ capacity: size, fixed: true });
    w.finishReservations();
    w.beginNode('');
    assert.equal(
      codeOf(() => w.property('big-one', new Uint8Array(size))),
      'NOSPACE',
    );
    w.property('compatible', bytes(0x61, 0));
    for (const c of tree.children) writeNode(w, c);
    w.endNode();
    assert.deepEqual(w.finish(), writeTree(tree));
  });

  it('a value no blob can hold is NOSPACE and leaves no trace (its aligned size once wrapped negative)', () => {
    const huge = new Uint8Array(2 ** 31 - 1); // virtual memory only: never touched
    const w = new FdtWriter();
    w.finishReservations();
    w.beginNode('');
    assert.equal(
      codeOf(() => w.property('big-one', huge)),
      'NOSPACE',
    );
    w.property('compatible', bytes(0x61, 0));
    for (const c of tree.children) writeNode(w, c);
    w.endNode();
    assert.deepEqual(w.finish(), writeTree(tree));
  });

  it('a capacity above what the header check accepts (2^31-1) is refused', () => {
    assert.equal(
      codeOf(() => new FdtWriter({ capacity: 2 ** 31, fixed: true })),
      'BADVALUE',
    );
  });

  it('grows a small buffer as needed', () => {
    const w = new FdtWriter({ capacity: 0 });
    w.addReservation(1, 1);
    w.finishReservations();
    w.beginNode('');
    for (let i = 0; i < 2000; i++) {
      w.beginNode(`node@${i.toString(16)}`);
      w.propertyU32('reg', i);
      w.propertyString(`name-${i % 50}`, 'x'.repeat(i % 13));
      w.endNode();
    }
    w.endNode();
    const fdt = Fdt.from(w.finish());
    fdt.checkFull();
    assert.equal(fdt.getU32(fdt.pathOffset('/node@7cf'), 'reg'), 1999);
    assert.equal(fdt.getString(fdt.pathOffset('/node@7cf'), 'name-49'), 'x'.repeat(1999 % 13));
  });
});

describe('FdtWriter round trips', () => {
  for (const name of FIXTURES) {
    it(`rewrites fixture ${name} into a tree that walks the same`, () => {
      const fdt = Fdt.from(loadDtb(name));
      const rsv = fdt
        .reservations()
        .map((r): [number | bigint, number | bigint] => [r.address, r.size]);
      const blob = writeTree(readTree(fdt), rsv);
      const again = Fdt.from(blob);
      again.checkFull();
      assert.deepEqual(dumpTree(again), dumpTree(fdt));
    });
  }

  const nodeName = fc
    .tuple(
      fc.stringMatching(/^[a-z][a-z0-9,._+-]{0,6}$/),
      fc.option(fc.stringMatching(/^[0-9a-f]{1,4}$/), { nil: undefined }),
    )
    .map(([n, u]) => (u === undefined ? n : `${n}@${u}`));
  const propName = fc.constantFrom(
    'reg',
    'compatible',
    'phandle',
    'linux,phandle',
    '#size-cells',
    'a',
    'ba',
    'status',
  );
  const props = fc.array(fc.tuple(propName, fc.uint8Array({ maxLength: 12 })), { maxLength: 4 });
  const treeAt = (depth: number): fc.Arbitrary<TreeNode> =>
    fc
      .tuple(
        nodeName,
        props,
        depth === 0 ? fc.constant<TreeNode[]>([]) : fc.array(treeAt(depth - 1), { maxLength: 3 }),
      )
      .map(([name, p, children]): TreeNode => ({ name, props: p, children }));
  const tree = treeAt(3);

  it('reads back any tree exactly (property test)', () => {
    fc.assert(
      fc.property(
        props,
        fc.array(tree, { maxLength: 4 }),
        fc.array(fc.tuple(fc.bigInt(0n, 2n ** 64n - 1n), fc.bigInt(1n, 2n ** 64n - 1n)), {
          maxLength: 3,
        }),
        (rootProps, children, rsv) => {
          const root: TreeNode = { name: '', props: rootProps, children };
          const fdt = Fdt.from(writeTree(root, rsv));
          fdt.checkFull();
          assert.deepEqual(readTree(fdt), root);
          assert.deepEqual(
            fdt.reservations().map((r) => [BigInt(r.address), BigInt(r.size)]),
            rsv,
          );
        },
      ),
      { numRuns: 300 },
    );
  });
});
