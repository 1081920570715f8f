import assert from 'node:assert/strict';
import type { Fdt } from '../../src/fdt/read.js';
import { FdtWriter } from '../../src/fdt/write.js';
import type { Kernel } from '../../src/kernel/kernel.js';
import { crc32c } from '../../src/memory/crc32c.js';
import { PAGE_SIZE } from '../../src/memory/device.js';
import type { Folio } from '../../src/mm/folio.js';

/**
 * The kernel's KHO test (lib/test_kho.c), translated: folios of random
 * orders filled with random bytes, checksummed, and described in a
 * sub-FDT { compatible, magic, nr_folios, folios_info, csum }.
 */
export const KHO_TEST_COMPATIBLE = 'kho-test-v1';
export const KHO_TEST_MAGIC = 0x4b484f21; // "KHO!"

export function fillFolio(k: Kernel, f: Folio, seed: number): void {
  const b = k.folioBytes(f);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < b.length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x;
    b[i + 1] = x >>> 8;
    b[i + 2] = x >>> 16;
    b[i + 3] = x >>> 24;
  }
}

export function checksum(k: Kernel, folios: readonly Folio[]): number {
  let crc = 0;
  for (const f of folios) crc = crc32c(k.folioBytes(f), crc);
  return crc;
}

/** The sub-FDT describing the folios. */
export function testFdt(k: Kernel, folios: readonly Folio[]): Uint8Array {
  const info = new Uint8Array(folios.length * 8);
  const v = new DataView(info.buffer);
  folios.forEach((f, i) => {
    v.setBigUint64(i * 8, BigInt(f.pfn * PAGE_SIZE + f.order), false);
  });
  const w = new FdtWriter();
  w.finishReservations();
  w.beginNode('');
  w.propertyString('compatible', KHO_TEST_COMPATIBLE);
  w.propertyU32('magic', KHO_TEST_MAGIC);
  w.propertyU32('nr_folios', folios.length);
  w.property('folios_info', info);
  w.propertyU32('csum', checksum(k, folios));
  w.endNode();
  return w.finish();
}

/** Restores every folio the sub-FDT lists and checks orders and the checksum ("KHO restore succeeded"). */
export function restoreAndCheck(k: Kernel, fdt: Fdt): Folio[] {
  assert.equal(fdt.getString(0, 'compatible'), KHO_TEST_COMPATIBLE);
  assert.equal(fdt.getU32(0, 'magic'), KHO_TEST_MAGIC);
  const n = fdt.getU32(0, 'nr_folios');
  const info = fdt.getProp(0, 'folios_info');
  assert.equal(info.length, n * 8);
  const v = new DataView(info.buffer, info.byteOffset, info.byteLength);
  const folios: Folio[] = [];
  for (let i = 0; i < n; i++) {
    const raw = Number(v.getBigUint64(i * 8, false));
    const order = raw % PAGE_SIZE;
    const f = k.kho.restoreFolio(raw - order);
    assert.equal(f.order, order, 'restored with its order');
    folios.push(f);
  }
  assert.equal(checksum(k, folios), fdt.getU32(0, 'csum'), 'checksum of the restored folios');
  return folios;
}
