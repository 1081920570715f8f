/**
 * Raw subtrees (blobs that are not FDTs, versioned by compatible strings and
 * checksummed) and allocPreserve past 4 MiB, on the emulated machine.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { toDts } from '../../src/fdt/dts.js';
import { Fdt } from '../../src/fdt/read.js';
import { KHO_FDT_COMPATIBLE } from '../../src/kho/abi.js';
import { buildBlobDescriptor, parseBlobDescriptor } from '../../src/kho/blob.js';
import { KhoError } from '../../src/kho/errors.js';
import { parseRootFdt } from '../../src/kho/root-fdt.js';
import { Machine } from '../../src/machine.js';
import { PAGE_SIZE } from '../../src/memory/device.js';
import { code, MiB, smallFdt } from './_helpers.js';

/** A struct the way kexec_metadata.h lays one out: u32 version, a string, a u32 count. */
function metadataStruct(release: string, count: number): Uint8Array {
  const out = new Uint8Array(4 + 65 + 4);
  const v = new DataView(out.buffer);
  v.setUint32(0, 1, true);
  out.set(new TextEncoder().encode(release), 4);
  v.setUint32(69, count, true);
  return out;
}

test('a raw blob crosses kexec under its name, compatible and checksum, and is taken once', () => {
  const m = Machine.create({ size: 32 * MiB });
  const k1 = m.boot();
  const blob = metadataStruct('app-2.3.1', 7);
  k1.kho.addSubtree('kexec-metadata', blob, { compatible: ['app,meta-v2', 'app,meta-v1'] });
  const root = k1.kho.finalize();
  // The root is the same ABI as before: older successors revive it and see a descriptor.
  assert.ok(Fdt.from(root).getStringList(0, 'compatible').includes(KHO_FDT_COMPATIBLE));
  k1.kho.abort();
  k1.kexec.load();
  const k2 = k1.kexec.exec();
  const peeked = k2.kho.peekBlob('kexec-metadata');
  assert.deepEqual(peeked?.bytes, blob);
  // The descriptor is an ordinary FDT: status and dtc print it, older builds list it.
  const descriptor = k2.kho.peekSubtree('kexec-metadata')!;
  assert.deepEqual(descriptor.getStringList(0, 'compatible'), ['app,meta-v2', 'app,meta-v1']);
  assert.match(toDts(descriptor), /blob-size = <0x0+ 0x49>;/);
  const free = k2.pages.stats().freePages;
  const got = k2.kho.retrieveBlob('kexec-metadata', ['app,meta-v1']);
  assert.equal(got.compatible, 'app,meta-v1');
  assert.deepEqual(got.compatibles, ['app,meta-v2', 'app,meta-v1']);
  assert.deepEqual(got.bytes, blob);
  assert.equal(new DataView(got.bytes.buffer).getUint32(69, true), 7);
  assert.equal(k2.pages.stats().freePages, free + 2, 'descriptor and data pages are freed');
  assert.throws(() => k2.kho.retrieveBlob('kexec-metadata'), code('ENOENT'));
  assert.deepEqual(k2.kho.unclaimed(), { subtrees: [], blocks: 0, bytes: 0 });
});

test('a blob of a version the successor does not read is refused with EPROTO and stays', () => {
  const m = Machine.create({ size: 16 * MiB });
  const k1 = m.boot();
  k1.kho.addSubtree('store', new Uint8Array([1, 2, 3]), { compatible: 'app,store-v3' });
  k1.kexec.load();
  const k2 = k1.kexec.exec();
  assert.throws(
    () => k2.kho.retrieveBlob('store', ['app,store-v2', 'app,store-v1']),
    code('EPROTO'),
  );
  assert.deepEqual(k2.kho.unclaimed().subtrees, ['store']);
  assert.equal(k2.kho.unclaimed().blocks, 2);
  // Unclaimed, it is carried to the next generation whole, which reads v3.
  k2.kexec.load();
  const k3 = k2.kexec.exec();
  assert.deepEqual(k3.kho.retrieveBlob('store', ['app,store-v3']).bytes, Uint8Array.of(1, 2, 3));
  assert.equal(k3.kho.unclaimed().blocks, 0);
});

test('a damaged blob is EFAULT and nothing is claimed; FDT and raw subtrees are told apart', () => {
  const m = Machine.create({ size: 16 * MiB });
  const k1 = m.boot();
  const data = new Uint8Array(3 * PAGE_SIZE + 5).fill(0x5a);
  k1.kho.addSubtree('raw', data, { compatible: 'app,raw-v1' });
  k1.kho.addSubtree('tree', smallFdt('app,tree-v1'));
  k1.kexec.load();
  const k2 = k1.kexec.exec();
  assert.throws(() => k2.kho.retrieveBlob('tree'), code('EINVAL'));
  const d = parseBlobDescriptor(k2.kho.peekSubtree('raw')!, 'raw', k2.device.size);
  k2.device.bytes(d.phys + 2 * PAGE_SIZE, 1)[0] ^= 1;
  assert.throws(() => k2.kho.retrieveBlob('raw'), code('EFAULT'));
  assert.deepEqual(k2.kho.unclaimed().subtrees, ['raw', 'tree']);
  k2.device.bytes(d.phys + 2 * PAGE_SIZE, 1)[0] ^= 1;
  assert.deepEqual(k2.kho.retrieveBlob('raw').bytes, data);
});

test('a damaged descriptor never frees a block that is not its blob', () => {
  const m = Machine.create({ size: 16 * MiB });
  const k1 = m.boot();
  k1.kho.addSubtree('raw', new Uint8Array(100).fill(7), { compatible: 'app,raw-v1' });
  const other = k1.allocPages(0)!;
  k1.folioBytes(other).fill(9);
  k1.kho.preserveFolio(other);
  k1.kexec.load();
  const k2 = k1.kexec.exec();
  // Point the descriptor's data at the other preserved folio, in place.
  const root = parseRootFdt(k2.kho.incoming!.rootFdt, k2.device.size);
  const descriptor = Fdt.from(k2.device.bytes(root.subtrees.get('raw')!, PAGE_SIZE));
  const value = descriptor.getProp(0, 'preserved-data');
  new DataView(value.buffer, value.byteOffset, 8).setBigUint64(0, BigInt(other.pfn * PAGE_SIZE));
  assert.throws(() => k2.kho.retrieveBlob('raw'), code('EFAULT'));
  assert.equal(k2.kho.retrieveSubtree('raw').getString(0, 'compatible'), 'app,raw-v1');
  const back = k2.kho.restoreFolio(other.pfn * PAGE_SIZE);
  assert.ok(k2.folioBytes(back).every((b) => b === 9));
});

test('a blob past 4 MiB and allocPreserve past order 10 are preserved as pages', () => {
  const m = Machine.create({ size: 64 * MiB });
  const k1 = m.boot();
  const big = new Uint8Array(5 * MiB + 3);
  for (let i = 0; i < big.length; i += 4093) big[i] = (i / 4093) & 0xff;
  k1.kho.addSubtree('big', big, { compatible: 'app,big-v1' });
  const ap = k1.kho.allocPreserve(6 * MiB);
  assert.equal(ap.order, 11);
  assert.equal(ap.pfn % 2048, 0);
  const apBytes = k1.folioBytes(ap);
  assert.ok(apBytes.every((b) => b === 0));
  apBytes[apBytes.length - 1] = 0x42;
  // Unpreserved and freed in the same generation: the pages go back.
  const spare = k1.kho.allocPreserve(4 * MiB + 1);
  const free = k1.pages.stats().freePages;
  k1.kho.unpreserveFree(spare);
  assert.equal(k1.pages.stats().freePages, free + 2048);
  assert.throws(() => k1.kho.unpreserveFree(spare), code('ENOENT'));
  k1.kexec.load();
  const k2 = k1.kexec.exec();
  assert.deepEqual(k2.kho.retrieveBlob('big').bytes, big);
  assert.equal(k2.device.bytes(ap.pfn * PAGE_SIZE + 8 * MiB - 1, 1)[0], 0x42);
  assert.throws(() => k2.kho.restoreFolio(ap.pfn * PAGE_SIZE), code('EINVAL'), 'not a folio');
  const before = k2.pages.stats().freePages;
  k2.kho.restoreFree(ap.pfn * PAGE_SIZE);
  assert.equal(k2.pages.stats().freePages, before + 2048);
  assert.equal(k2.kho.unclaimed().blocks, 0);
  // More than any free run holds is ENOMEM, and nothing is taken.
  const left = k2.pages.stats().freePages;
  assert.throws(() => k2.kho.allocPreserve(64 * MiB), code('ENOMEM'));
  assert.equal(k2.pages.stats().freePages, left);
});

test('removing a raw subtree frees both its blocks, and so does taking it by name as an FDT', () => {
  const m = Machine.create({ size: 16 * MiB });
  const k1 = m.boot();
  const free = k1.pages.stats().freePages;
  k1.kho.addSubtree('a', new Uint8Array(10), { compatible: 'app,a-v1' });
  k1.kho.removeSubtree('a');
  assert.equal(k1.pages.stats().freePages, free);
  k1.kho.addSubtree('b', new Uint8Array(10), { compatible: 'app,b-v1' });
  k1.kexec.load();
  const k2 = k1.kexec.exec();
  assert.equal(k2.kho.unclaimed().blocks, 2);
  // What a reader that knows only FDT subtrees does: it gets the descriptor, both blocks go.
  assert.equal(k2.kho.retrieveSubtree('b').getString(0, 'compatible'), 'app,b-v1');
  assert.deepEqual(k2.kho.unclaimed(), { subtrees: [], blocks: 0, bytes: 0 });
});

test('raw subtrees refuse bad arguments with EINVAL and leave nothing behind', () => {
  const k = Machine.create({ size: 16 * MiB }).boot();
  const free = k.pages.stats().freePages;
  const one = new Uint8Array(1);
  assert.throws(
    () => k.kho.addSubtree('x', new Uint8Array(0), { compatible: 'a' }),
    code('EINVAL'),
  );
  assert.throws(() => k.kho.addSubtree('x', one, { compatible: [] }), code('EINVAL'));
  assert.throws(() => k.kho.addSubtree('x', one, { compatible: '' }), code('EINVAL'));
  assert.throws(() => k.kho.addSubtree('x', one, { compatible: 'a b' }), code('EINVAL'));
  assert.throws(() => k.kho.addSubtree('x', one, { compatible: 'a'.repeat(128) }), code('EINVAL'));
  assert.throws(() => k.kho.addSubtree('bad name', one, { compatible: 'a' }), code('EINVAL'));
  assert.equal(k.pages.stats().freePages, free);
  assert.deepEqual(k.kho.subtreeNames(), []);
  k.kho.addSubtree('x', one, { compatible: 'a' });
  assert.throws(() => k.kho.addSubtree('x', one, { compatible: 'a' }), code('EEXIST'));
  // What the successor will read, checked before the upgrade.
  const report = k.kho.checkSuccessor({ cmdline: '', compatibles: ['a', KHO_FDT_COMPATIBLE] });
  assert.deepEqual(report.subtrees, [{ name: 'x', compatible: ['a'], known: true }]);
  assert.ok(parseRootFdt(k.kho.finalize(), k.device.size).subtrees.has('x'));
});

test('property: a descriptor with any values parses within the device or is EFAULT', () => {
  const size = 16 * MiB;
  fc.assert(
    fc.property(
      fc.array(fc.stringMatching(/^[\x21-\x7e]{1,130}$/), { minLength: 0, maxLength: 18 }),
      fc.oneof(fc.nat(), fc.constantFrom(0, PAGE_SIZE, size, size - PAGE_SIZE)),
      fc.oneof(fc.nat(), fc.constant(0)),
      fc.integer({ min: 0, max: 0xffffffff }),
      (compatibles, phys, blobSize, csum) => {
        const fdt = Fdt.from(buildBlobDescriptor({ compatibles, phys, size: blobSize, csum }));
        try {
          const d = parseBlobDescriptor(fdt, 'p', size);
          assert.ok(d.phys > 0 && d.phys % PAGE_SIZE === 0 && d.phys + d.size <= size);
          assert.ok(d.size > 0 && d.compatibles.length > 0 && d.csum === csum);
        } catch (err) {
          assert.ok(err instanceof KhoError && err.code === 'EFAULT', String(err));
        }
      },
    ),
  );
});
