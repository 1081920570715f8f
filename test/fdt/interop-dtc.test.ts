/**
 * Interop with the real tools: dtc 1.6.1, fdtget and libfdt's fdt_check_full.
 * Skipped with a reason when they are missing, unless LIVEKEXEC_INTEROP=1.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { toDts } from '../../src/fdt/dts.js';
import { FdtEditor } from '../../src/fdt/edit.js';
import { Fdt } from '../../src/fdt/read.js';
import { FdtWriter } from '../../src/fdt/write.js';
import { runCli } from '../_helpers/cli.js';
import { fixture } from '../_helpers/paths.js';
import {
  dtcToDtb,
  dtcToDts,
  fdtget,
  libfdtCheckFull,
  requireTools,
  scratchDir,
  skipUnless,
} from './_libfdt.js';

const DTC = ['dtc'];
const ALL = ['dtc', 'fdtget', 'libfdt'];
const FIXTURE_DIR = fixture('fdt');
const sources = readdirSync(FIXTURE_DIR)
  .filter((f) => f.endsWith('.dts'))
  .sort();
const blobs = readdirSync(FIXTURE_DIR)
  .filter((f) => f.endsWith('.dtb'))
  .sort();

function load(name: string): Uint8Array {
  return new Uint8Array(readFileSync(join(FIXTURE_DIR, name)));
}

/** Our printer, on a fresh 8-aligned copy. */
function ourDts(blob: Uint8Array): string {
  return toDts(Fdt.from(new Uint8Array(blob)));
}

describe('fixtures: dtc, our reader and our printer agree', { skip: skipUnless(ALL) }, () => {
  test('there are fixtures', () => {
    assert.ok(sources.length >= 4, `only ${sources.length} .dts fixtures`);
    assert.ok(blobs.length >= sources.length);
  });

  for (const src of sources) {
    test(`${src}: compiles, reads, prints as dtc, recompiles to the same tree`, () => {
      requireTools(ALL);
      const dtb = dtcToDtb(readFileSync(join(FIXTURE_DIR, src), 'utf8'));
      assert.deepEqual(libfdtCheckFull(dtb), ['OK']);
      const fdt = Fdt.from(new Uint8Array(dtb));
      fdt.checkFull();
      const ours = toDts(fdt);
      assert.equal(ours, dtcToDts(dtb));
      // Our DTS through dtc again: dtc lays it out as it laid out the original.
      const again = dtcToDtb(ours);
      assert.deepEqual(again, dtb, `${src}: recompiled DTB differs`);
    });
  }

  for (const name of blobs) {
    test(`${name} (committed): our DTS equals dtc's, byte for byte`, () => {
      requireTools(ALL);
      const blob = load(name);
      assert.deepEqual(libfdtCheckFull(blob), ['OK']);
      const ours = ourDts(blob);
      assert.equal(ours, dtcToDts(blob));
      // Old versions come back as v17, so compare trees: the DTS of dtc's recompilation.
      assert.equal(ourDts(dtcToDtb(ours)), ours);
    });
  }
});

/** A few blobs built by our writer, as a user of the codec would. */
function writerBlobs(): [string, Uint8Array][] {
  const out: [string, Uint8Array][] = [];

  const kho = new FdtWriter();
  kho.addReservation(0x1000, 0x2000);
  kho.addReservation(0xfffffffff0000000n, 0x10000000);
  kho.finishReservations();
  kho.beginNode('');
  kho.propertyString('compatible', 'livekexec,kho-v1');
  kho.propertyU64('preserved-memory-map', 0x123456789abcn);
  kho.beginNode('pmpool');
  kho.propertyStringList('compatible', ['livekexec,pmpool-v2', 'livekexec,pmpool-v1']);
  kho.propertyU64('fdt', 0x4000);
  kho.propertyCells('reg', [0, 0x100000, 0, 0x200000]);
  kho.propertyEmpty('dma-coherent');
  kho.property('bytes', new Uint8Array([1, 2, 3]));
  kho.endNode();
  kho.beginNode('luo@1');
  kho.propertyU32('phandle', 1);
  kho.propertyString('linux,phandle-note', 'tail reuse of phandle');
  kho.endNode();
  kho.endNode();
  out.push(['writer: kho-like tree', kho.finish()]);

  const bench = new FdtWriter({ capacity: 64 });
  bench.finishReservations();
  bench.beginNode('');
  for (let g = 0; g < 8; g++) {
    bench.beginNode(`bus@${g.toString(16)}`);
    bench.propertyString('compatible', 'livekexec,bench-dev');
    bench.propertyCells('reg', [g, 0x1000]);
    for (let d = 0; d < 8; d++) {
      bench.beginNode(`dev@${d.toString(16)}`);
      bench.propertyU32('value', d * 7);
      bench.endNode();
    }
    bench.endNode();
  }
  bench.endNode();
  out.push(['writer: grown from 64 bytes, 73 nodes', bench.finish()]);

  const bare = new FdtWriter({ dedupeNames: false });
  bare.finishReservations();
  bare.beginNode('');
  bare.propertyU32('a', 1);
  bare.propertyU32('a-too', 2);
  bare.endNode();
  out.push(['writer: no name dedup', bare.finish()]);
  return out;
}

/** Blobs edited in place by our editor, starting from dtc's and from our writer's. */
function editorBlobs(): [string, Uint8Array][] {
  const out: [string, Uint8Array][] = [];
  const basic = load('basic.dtb');

  const ed = FdtEditor.openInto(basic, basic.length + 4096);
  ed.setPropString('/', 'model', 'a longer model string than before');
  ed.setPropU32('/soc@0/serial@10000', 'new-prop', 42);
  ed.delProp('/soc@0/serial@20000', 'status');
  ed.addSubnode('/soc@0', 'added@40000');
  ed.setPropCells('/soc@0/added@40000', 'reg', [0x40000, 0x100]);
  ed.delNode('/flash');
  ed.addReservation(0x30000000, 0x1000);
  ed.delReservation(0);
  out.push(['editor: edits on basic.dtb (with slack)', new Uint8Array(ed.blob)]);
  ed.pack();
  out.push(['editor: the same, packed', new Uint8Array(ed.blob)]);

  const [, kho] = writerBlobs()[0] as [string, Uint8Array];
  const ed2 = FdtEditor.openInto(kho, kho.length + 512);
  ed2.appendPropString('/pmpool', 'compatible', 'livekexec,pmpool-v0');
  ed2.setName('/luo@1', 'luo@2');
  ed2.setPropEmpty('/', 'empty');
  ed2.pack();
  out.push(['editor: edits on a writer blob, packed', new Uint8Array(ed2.blob)]);
  return out;
}

describe('blobs our writer and editor produce', { skip: skipUnless(['dtc', 'libfdt']) }, () => {
  test('pass fdt_check_full and dtc prints them as our printer does', () => {
    requireTools(['dtc', 'libfdt']);
    const all = [...writerBlobs(), ...editorBlobs()];
    const verdicts = libfdtCheckFull(...all.map(([, b]) => b));
    for (const [i, [what, blob]] of all.entries()) {
      assert.equal(verdicts[i], 'OK', `${what}: libfdt says ${verdicts[i]}`);
      assert.equal(ourDts(blob), dtcToDts(blob), `${what}: DTS differs from dtc's`);
    }
  });
});

describe('random property values print as dtc prints them', { skip: skipUnless(DTC) }, () => {
  // Values biased towards the edge cases of dtc's type guess: strings, NULs,
  // escapes, lengths near multiples of 4.
  const stringish = fc
    .array(
      fc.constantFrom(0, 0, 0x61, 0x62, 0x20, 0x22, 0x5c, 7, 9, 10, 13, 0x7f, 0x80, 0xff, 1, 0x27),
      {
        maxLength: 12,
      },
    )
    .map((a) => new Uint8Array(a));
  const value = fc.oneof(
    stringish,
    fc.uint8Array({ maxLength: 12 }),
    stringish.map((v) => new Uint8Array([...v, 0])),
  );

  test('200 blobs of 40 properties each', () => {
    requireTools(DTC);
    fc.assert(
      fc.property(fc.array(value, { minLength: 1, maxLength: 40 }), (values) => {
        const w = new FdtWriter();
        w.finishReservations();
        w.beginNode('');
        for (const [i, v] of values.entries()) w.property(`p${i}`, v);
        w.endNode();
        const blob = w.finish();
        assert.equal(ourDts(blob), dtcToDts(blob));
      }),
      { numRuns: 200 },
    );
  });
});

describe('the CLI against dtc, fdtget and libfdt', { skip: skipUnless(ALL) }, () => {
  const dir = scratchDir('cli-interop');

  test('fdt dump equals dtc -I dtb -O dts for every committed blob', () => {
    requireTools(ALL);
    for (const name of blobs) {
      const r = runCli(['fdt', 'dump', join(FIXTURE_DIR, name)]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, dtcToDts(load(name)), name);
    }
  });

  test('fdt check agrees with fdt_check_full on truncations and a bad magic', () => {
    requireTools(ALL);
    const blob = load('basic.dtb');
    const cases: [string, Uint8Array][] = [
      ['whole', blob],
      ['cut to 100', blob.subarray(0, 100)],
      ['cut by 1', blob.subarray(0, blob.length - 1)],
      ['bad magic', Uint8Array.from(blob, (b, i) => (i === 0 ? b ^ 1 : b))],
    ];
    const verdicts = libfdtCheckFull(...cases.map(([, b]) => b));
    assert.deepEqual(verdicts, [
      'OK',
      'FDT_ERR_TRUNCATED',
      'FDT_ERR_TRUNCATED',
      'FDT_ERR_BADMAGIC',
    ]);
    for (const [i, [what, b]] of cases.entries()) {
      const p = join(dir, `check-${i}.dtb`);
      writeFileSync(p, b);
      const r = runCli(['fdt', 'check', p]);
      if (verdicts[i] === 'OK') {
        assert.equal(r.status, 0, `${what}: ${r.stderr}`);
        assert.match(r.stdout, /^OK: /);
      } else {
        assert.equal(r.status, 1, what);
        assert.match(r.stderr, new RegExp(`^${verdicts[i]}: `, 'm'), what);
      }
    }
  });

  test('fdt get prints what fdtget prints', () => {
    requireTools(ALL);
    const queries: [string, string, string[]][] = [
      ['basic.dtb', '/', ['model']],
      ['basic.dtb', '/', ['compatible']],
      ['basic.dtb', '/', ['cells-prop']],
      ['basic.dtb', '/', ['u64-big']],
      ['basic.dtb', '/', ['bytes-prop']],
      ['basic.dtb', '/', ['mixed']],
      ['basic.dtb', '/', ['string-list']],
      ['basic.dtb', '/', ['utf8-string']],
      ['basic.dtb', '/', ['empty-prop']],
      ['basic.dtb', '/memory@80000000', ['reg']],
      ['basic.dtb', '/soc/ethernet', ['local-mac-address']],
      ['basic.dtb', 'serial0', ['compatible']],
      ['basic.dtb', '/chosen', ['bootargs']],
      ['board.dtb', '/cpus/cpu@0', ['reg']],
      ['board.dtb', '/chosen', ['stdout-path']],
    ];
    for (const [file, path, prop] of queries) {
      const f = join(FIXTURE_DIR, file);
      const want = fdtget(f, [path, ...prop]);
      assert.equal(want.status, 0, `fdtget ${path} ${prop}: ${want.stderr}`);
      const got = runCli(['fdt', 'get', f, path, ...prop]);
      assert.equal(got.status, 0, got.stderr);
      assert.equal(got.stdout, want.stdout, `${file} ${path} ${prop}`);
    }
  });

  test('fdt get on a node lists what fdtget -p and fdtget -l list', () => {
    requireTools(ALL);
    for (const [file, path] of [
      ['basic.dtb', '/'],
      ['basic.dtb', '/soc@0'],
      ['board.dtb', '/cpus'],
    ] as const) {
      const f = join(FIXTURE_DIR, file);
      const props = fdtget(f, ['-p', path]).stdout;
      const subnodes = fdtget(f, ['-l', path]).stdout;
      assert.equal(runCli(['fdt', 'get', f, path]).stdout, props + subnodes);
      assert.equal(runCli(['fdt', 'get', f, path, '-p']).stdout, props);
      assert.equal(runCli(['fdt', 'get', f, path, '-l']).stdout, subnodes);
    }
  });

  test('a missing node: fdtget says FDT_ERR_NOTFOUND, so do we', () => {
    requireTools(ALL);
    const f = join(FIXTURE_DIR, 'basic.dtb');
    assert.match(fdtget(f, ['/nope', 'x']).stderr, /FDT_ERR_NOTFOUND/);
    const r = runCli(['fdt', 'get', f, '/nope', 'x']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^FDT_ERR_NOTFOUND: /m);
  });
});
