import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { alignUp } from '../../src/fdt/format.js';
import { Fdt, FdtEditor, FdtWriter } from '../../src/fdt/index.js';
import { ALL_ORDERS, codeOf, dumpTree, loadDtb, MODERN_FIXTURES, relayout } from './_support.js';

interface TreeNode {
  name: string;
  props: [string, Uint8Array][];
  children: TreeNode[];
}

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

const bytes = (...b: number[]) => Uint8Array.from(b);

/** / { compatible; a { reg; }; b@1 { }; } with one reservation, no slack. */
function small(): Uint8Array {
  const w = new FdtWriter();
  w.addReservation(0x1000, 0x1000);
  w.finishReservations();
  w.beginNode('');
  w.propertyString('compatible', 'test');
  w.beginNode('a');
  w.propertyU32('reg', 1);
  w.endNode();
  w.beginNode('b@1');
  w.endNode();
  w.endNode();
  return w.finish();
}

function names(fdt: Fdt, node: number): { props: string[]; children: string[] } {
  const t = readTree(fdt, node);
  return { props: t.props.map(([n]) => n), children: t.children.map((c) => c.name) };
}

describe('FdtEditor open', () => {
  it('openInto copies into a bigger buffer: v17, totalsize = buffer size', () => {
    const blob = small();
    const ed = FdtEditor.openInto(blob, blob.length + 100);
    assert.equal(ed.blob.length, blob.length + 100);
    assert.equal(ed.fdt.version, 17);
    assert.equal(ed.freeSpace, 100);
    ed.fdt.checkFull();
    assert.deepEqual(dumpTree(ed.fdt), dumpTree(Fdt.from(blob)));
  });

  it('open needs v17 (BADVERSION) and the rw block order (BADLAYOUT); openInto fixes both', () => {
    const v16 = loadDtb('basic-v16');
    assert.equal(
      codeOf(() => FdtEditor.open(v16)),
      'BADVERSION',
    );
    const ed16 = FdtEditor.openInto(v16, v16.length + 64);
    ed16.fdt.checkFull();
    assert.deepEqual(dumpTree(ed16.fdt), dumpTree(Fdt.from(v16)));
    for (const order of ALL_ORDERS.slice(1)) {
      const moved = relayout(loadDtb('basic'), { order, version: 17, nopEvery: 0 });
      assert.equal(
        codeOf(() => FdtEditor.open(moved)),
        'BADLAYOUT',
        order.join(','),
      );
      const ed = FdtEditor.openInto(moved, moved.length + 64);
      ed.setPropU32('/', 'added', 5);
      ed.fdt.checkFull();
      assert.equal(ed.fdt.getU32(0, 'added'), 5);
    }
  });

  it('openInto throws NOSPACE when the buffer is too small, BADVALUE for a bad size', () => {
    const blob = small();
    assert.equal(
      codeOf(() => FdtEditor.openInto(blob, blob.length - 1)),
      'NOSPACE',
    );
    assert.equal(
      codeOf(() => FdtEditor.openInto(blob, -1)),
      'BADVALUE',
    );
    assert.equal(
      codeOf(() => FdtEditor.openInto(new Uint8Array(64), 128)),
      'BADMAGIC',
    );
  });

  it('open edits the caller bytes in place', () => {
    const buf = FdtEditor.openInto(small(), 400).buffer;
    const ed = FdtEditor.open(buf);
    ed.setPropU32('/a', 'reg', 9);
    assert.equal(Fdt.from(buf).getU32(Fdt.from(buf).pathOffset('/a'), 'reg'), 9);
  });
});

describe('FdtEditor properties', () => {
  it('inserts a new property first in its node and replaces values in place', () => {
    const ed = FdtEditor.openInto(small(), 512);
    ed.setPropU32('/a', 'new', 7);
    assert.deepEqual(names(ed.fdt, ed.fdt.pathOffset('/a')).props, ['new', 'reg']);
    ed.setProp('/a', 'reg', bytes(1, 2, 3, 4, 5, 6, 7, 8, 9));
    ed.setPropString('/', 'compatible', 'x');
    const a = ed.fdt.pathOffset('/a');
    assert.deepEqual([...ed.fdt.getProp(a, 'reg')], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(ed.fdt.getString(0, 'compatible'), 'x');
    assert.equal(ed.fdt.getU32(a, 'new'), 7);
    ed.fdt.checkFull();
  });

  it('typed setters and appenders', () => {
    const ed = FdtEditor.openInto(small(), 1024);
    ed.setPropU64('/', 'u64', 2n ** 64n - 1n);
    ed.setPropCells('/', 'cells', [1, 2]);
    ed.setPropStringList('/', 'list', ['a', 'b']);
    ed.setPropEmpty('/', 'empty');
    ed.appendPropU32('/', 'cells', 3);
    ed.appendPropCells('/', 'cells', [4]);
    ed.appendPropU64('/', 'cells', 5);
    ed.appendPropString('/', 'list', 'c');
    ed.appendPropString('/', 'fresh', 'z');
    const f = ed.fdt;
    assert.equal(f.getU64(0, 'u64'), 2n ** 64n - 1n);
    assert.deepEqual(f.getCells(0, 'cells'), [1, 2, 3, 4, 0, 5]);
    assert.deepEqual(f.getStringList(0, 'list'), ['a', 'b', 'c']);
    assert.equal(f.getProp(0, 'empty').length, 0);
    assert.equal(f.getString(0, 'fresh'), 'z');
    assert.equal(
      codeOf(() => ed.setPropU32('/', 'x', -1)),
      'BADVALUE',
    );
    assert.equal(
      codeOf(() => ed.setPropString('/', 'x', 'a\0')),
      'BADVALUE',
    );
    assert.equal(
      codeOf(() => ed.setPropEmpty('/', 'bad name')),
      'BADVALUE',
    );
  });

  it('deletes properties; deleting never shrinks the strings block', () => {
    const ed = FdtEditor.openInto(small(), 512);
    const strings = ed.fdt.sizeDtStrings;
    ed.delProp('/a', 'reg');
    assert.equal(ed.fdt.sizeDtStrings, strings);
    assert.equal(
      codeOf(() => ed.delProp('/a', 'reg')),
      'NOTFOUND',
    );
    assert.equal(
      codeOf(() => ed.fdt.getProp(ed.fdt.pathOffset('/a'), 'reg')),
      'NOTFOUND',
    );
    // Setting it again reuses the name already in the block.
    ed.setPropU32('/a', 'reg', 2);
    assert.equal(ed.fdt.sizeDtStrings, strings);
  });

  it('reuses a tail of a stored name, else appends the name', () => {
    const ed = FdtEditor.openInto(small(), 512);
    const strings = ed.fdt.sizeDtStrings;
    ed.setPropU32('/', 'linux,phandle', 1);
    assert.equal(ed.fdt.sizeDtStrings, strings + 'linux,phandle'.length + 1);
    ed.setPropU32('/a', 'phandle', 1);
    assert.equal(ed.fdt.sizeDtStrings, strings + 'linux,phandle'.length + 1);
    assert.equal(ed.fdt.getU32(ed.fdt.pathOffset('/a'), 'phandle'), 1);
  });
});

describe('FdtEditor values near 2^31 bytes', () => {
  // Virtual memory only: the zero pages of these buffers are never touched.
  const huge = new Uint8Array(2 ** 31 - 1);

  it('a value no blob can hold is NOSPACE and changes nothing (its aligned size once wrapped negative)', () => {
    for (const edit of [
      (ed: FdtEditor) => ed.setProp('/a', 'new', huge),
      (ed: FdtEditor) => ed.setProp('/a', 'reg', huge),
      (ed: FdtEditor) => ed.appendProp('/a', 'reg', huge),
      (ed: FdtEditor) => ed.appendProp('/', 'new', huge),
    ]) {
      const ed = FdtEditor.openInto(small(), 512);
      const before = dumpTree(ed.fdt);
      const free = ed.freeSpace;
      const header = ed.buffer.slice(0, 40);
      assert.equal(
        codeOf(() => edit(ed)),
        'NOSPACE',
      );
      assert.deepEqual(ed.buffer.subarray(0, 40), header);
      assert.equal(ed.freeSpace, free);
      assert.deepEqual(dumpTree(ed.fdt), before);
      ed.fdt.checkFull();
    }
  });

  it('alignUp is exact for every safe length', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER - 8 }),
        fc.constantFrom(4, 8),
        (n, a) => {
          const r = alignUp(n, a);
          assert.ok(r >= n && r < n + a && r % a === 0, `alignUp(${n}, ${a}) = ${r}`);
        },
      ),
    );
    assert.equal(alignUp(2 ** 31 - 1, 4), 2 ** 31);
  });
});

describe('FdtEditor nodes', () => {
  it('adds a subnode after the properties, before existing subnodes', () => {
    const ed = FdtEditor.openInto(small(), 512);
    const off = ed.addSubnode('/', 'c');
    assert.deepEqual(names(ed.fdt, 0), { props: ['compatible'], children: ['c', 'a', 'b@1'] });
    assert.equal(ed.fdt.getName(off), 'c');
    ed.setPropU32(off, 'reg', 3);
    assert.equal(ed.fdt.getU32(ed.fdt.pathOffset('/c'), 'reg'), 3);
    ed.fdt.checkFull();
  });

  it('EXISTS for a present child, "b" matching "b@1" as in libfdt; NOTFOUND for a missing parent', () => {
    const ed = FdtEditor.openInto(small(), 512);
    assert.equal(
      codeOf(() => ed.addSubnode('/', 'a')),
      'EXISTS',
    );
    assert.equal(
      codeOf(() => ed.addSubnode('/', 'b')),
      'EXISTS',
    );
    assert.equal(
      codeOf(() => ed.addSubnode('/nope', 'x')),
      'NOTFOUND',
    );
    assert.equal(
      codeOf(() => ed.addSubnode(3, 'x')),
      'BADOFFSET',
    );
    assert.equal(
      codeOf(() => ed.addSubnode('/', 'bad/name')),
      'BADVALUE',
    );
    ed.addSubnode('/', 'b@2');
  });

  it('deletes a node with its children', () => {
    const ed = FdtEditor.openInto(small(), 512);
    ed.addSubnode('/a', 'x');
    ed.addSubnode('/a/x', 'y');
    ed.setPropU32('/a/x/y', 'deep', 1);
    ed.delNode('/a');
    assert.equal(
      codeOf(() => ed.fdt.pathOffset('/a')),
      'NOTFOUND',
    );
    assert.equal(
      codeOf(() => ed.fdt.pathOffset('/a/x/y')),
      'NOTFOUND',
    );
    assert.deepEqual(names(ed.fdt, 0).children, ['b@1']);
    ed.fdt.checkFull();
    assert.equal(
      codeOf(() => ed.delNode('/')),
      'BADOFFSET',
    );
    assert.equal(
      codeOf(() => ed.delNode('/a')),
      'NOTFOUND',
    );
  });

  it('renames a node, growing or shrinking its name', () => {
    const ed = FdtEditor.openInto(small(), 512);
    ed.setName('/a', 'a-much-longer-name@1234');
    assert.equal(ed.fdt.getU32(ed.fdt.pathOffset('/a-much-longer-name@1234'), 'reg'), 1);
    ed.setName('/a-much-longer-name', 'z');
    assert.equal(ed.fdt.getU32(ed.fdt.pathOffset('/z'), 'reg'), 1);
    ed.fdt.checkFull();
    assert.equal(
      codeOf(() => ed.setName('/', 'root')),
      'BADVALUE',
    );
    assert.equal(
      codeOf(() => ed.setName('/z', '')),
      'BADVALUE',
    );
  });
});

describe('FdtEditor reservations and layout', () => {
  it('adds and deletes reservation map entries', () => {
    const ed = FdtEditor.openInto(small(), 512);
    ed.addReservation(0x2000, 0x10);
    ed.addReservation(2n ** 60n, 1);
    ed.delReservation(0);
    assert.deepEqual(ed.fdt.reservations(), [
      { address: 0x2000, size: 0x10 },
      { address: 2n ** 60n, size: 1 },
    ]);
    assert.equal(
      codeOf(() => ed.delReservation(2)),
      'NOTFOUND',
    );
    assert.equal(
      codeOf(() => ed.delReservation(-1)),
      'NOTFOUND',
    );
    assert.equal(
      codeOf(() => ed.addReservation(1, 0)),
      'BADVALUE',
    );
    ed.fdt.checkFull();
    assert.equal(ed.fdt.getString(0, 'compatible'), 'test');
  });

  it('NOSPACE changes nothing; openInto a larger buffer, then the edit succeeds', () => {
    const blob = small();
    const ed = FdtEditor.open(new Uint8Array(blob));
    const before = new Uint8Array(ed.blob);
    assert.equal(ed.freeSpace, 0);
    assert.equal(
      codeOf(() => ed.setPropU32('/', 'new-name', 1)),
      'NOSPACE',
    );
    assert.equal(
      codeOf(() => ed.addSubnode('/', 'n')),
      'NOSPACE',
    );
    assert.equal(
      codeOf(() => ed.addReservation(1, 1)),
      'NOSPACE',
    );
    assert.deepEqual(ed.blob, before);
    // Shrinking needs no room.
    ed.setProp('/', 'compatible', bytes(0x61, 0));
    ed.openInto(blob.length + 64);
    ed.setPropU32('/', 'new-name', 1);
    ed.addSubnode('/', 'n');
    ed.addReservation(1, 1);
    ed.fdt.checkFull();
    assert.equal(ed.fdt.getU32(0, 'new-name'), 1);
  });

  it('pack removes the slack: totalsize shrinks to the data', () => {
    const ed = FdtEditor.openInto(small(), 4096);
    ed.addSubnode('/', 'n');
    const tree = dumpTree(ed.fdt);
    ed.pack();
    const f = ed.fdt;
    assert.equal(ed.freeSpace, 0);
    assert.equal(f.totalSize, f.offDtStrings + f.sizeDtStrings);
    assert.equal(f.offMemRsvmap, 40);
    assert.equal(ed.blob.length, f.totalSize);
    f.checkFull();
    assert.deepEqual(dumpTree(f), tree);
    assert.equal(
      codeOf(() => ed.setPropU32('/', 'more', 1)),
      'NOSPACE',
    );
  });

  for (const name of MODERN_FIXTURES) {
    it(`edits fixture ${name} and keeps the rest of the tree`, () => {
      const blob = loadDtb(name);
      const ed = FdtEditor.openInto(blob, blob.length + 1024);
      ed.addSubnode('/', 'livekexec');
      ed.setPropString('/livekexec', 'compatible', 'livekexec,kho-v1');
      ed.delNode('/livekexec');
      ed.pack();
      ed.fdt.checkFull();
      assert.deepEqual(dumpTree(ed.fdt), dumpTree(Fdt.from(blob)));
    });
  }
});

// ---- a model: random edit sequences against plain data ----

type Op =
  | { op: 'set' | 'append'; path: string; name: string; value: Uint8Array }
  | { op: 'delprop'; path: string; name: string }
  | { op: 'addnode'; path: string; name: string }
  | { op: 'delnode'; path: string }
  | { op: 'setname'; path: string; name: string }
  | { op: 'pack' };

/** libfdt's lookup of a child: the exact name, or `name@...` when `name` has no '@'. */
function findChild(n: TreeNode, name: string): TreeNode | undefined {
  return n.children.find(
    (c) => c.name === name || (!name.includes('@') && c.name.startsWith(`${name}@`)),
  );
}

function findPath(root: TreeNode, path: string): TreeNode | undefined {
  let n: TreeNode | undefined = root;
  for (const part of path.split('/').filter(Boolean)) {
    n = n && findChild(n, part);
  }
  return n;
}

/** Applies an op to the model; returns the error code the editor must give, or 'ok'. */
function applyModel(root: TreeNode, o: Op): string {
  if (o.op === 'pack') return 'ok';
  const node = findPath(root, o.path);
  if (!node) return 'NOTFOUND';
  switch (o.op) {
    case 'set':
    case 'append': {
      const p = node.props.find(([n]) => n === o.name);
      if (!p) node.props.unshift([o.name, o.value]);
      else p[1] = o.op === 'set' ? o.value : new Uint8Array([...p[1], ...o.value]);
      return 'ok';
    }
    case 'delprop': {
      const i = node.props.findIndex(([n]) => n === o.name);
      if (i < 0) return 'NOTFOUND';
      node.props.splice(i, 1);
      return 'ok';
    }
    case 'addnode':
      if (findChild(node, o.name)) return 'EXISTS';
      node.children.unshift({ name: o.name, props: [], children: [] });
      return 'ok';
    case 'delnode': {
      if (node === root) return 'BADOFFSET';
      const parent = findPath(root, o.path.slice(0, o.path.lastIndexOf('/')) || '/')!;
      parent.children.splice(parent.children.indexOf(node), 1);
      return 'ok';
    }
    case 'setname':
      if (node === root) return 'BADVALUE';
      node.name = o.name;
      return 'ok';
  }
}

function applyEditor(ed: FdtEditor, o: Op): string {
  try {
    switch (o.op) {
      case 'set':
        ed.setProp(o.path, o.name, o.value);
        break;
      case 'append':
        ed.appendProp(o.path, o.name, o.value);
        break;
      case 'delprop':
        ed.delProp(o.path, o.name);
        break;
      case 'addnode':
        ed.addSubnode(o.path, o.name);
        break;
      case 'delnode':
        ed.delNode(o.path);
        break;
      case 'setname':
        ed.setName(o.path, o.name);
        break;
      case 'pack':
        ed.pack();
        ed.openInto(ed.blob.length + 2048);
        break;
    }
    return 'ok';
  } catch (e) {
    return codeOf(() => {
      throw e;
    });
  }
}

describe('FdtEditor against a model (property test)', () => {
  const nodeName = fc.constantFrom('a', 'b@1', 'c', 'd@2');
  const propName = fc.constantFrom('reg', 'compatible', 'phandle', 'linux,phandle', 'p');
  const path = fc.constantFrom('/', '/a', '/b@1', '/b', '/a/c', '/c/d@2', '/c', '/zz');
  const value = fc.uint8Array({ maxLength: 9 });
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({
      op: fc.constantFrom('set' as const, 'append' as const),
      path,
      name: propName,
      value,
    }),
    fc.record({ op: fc.constant('delprop' as const), path, name: propName }),
    fc.record({ op: fc.constant('addnode' as const), path, name: nodeName }),
    fc.record({ op: fc.constant('delnode' as const), path }),
    fc.record({ op: fc.constant('setname' as const), path, name: nodeName }),
    fc.constant({ op: 'pack' as const }),
  );

  it('random edit sequences keep checkFull passing and match the model', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const ed = FdtEditor.openInto(small(), 8192);
        const model = readTree(ed.fdt);
        for (const o of ops) {
          assert.equal(applyEditor(ed, o), applyModel(model, o), JSON.stringify(o));
          ed.fdt.checkFull();
          assert.deepEqual(readTree(ed.fdt), model);
        }
      }),
      { numRuns: 200 },
    );
  });
});
