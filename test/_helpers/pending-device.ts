/**
 * A device file whose generation committed a kexec that no successor booted
 * (a pending boot block), handing over PKRAM nodes "a" (an order-3 folio and
 * 5000 bytes) and "b" (70 bytes).
 */
import assert from 'node:assert/strict';
import { Kernel } from '../../src/kernel/kernel.js';
import type { LoadedImage } from '../../src/kexec/kexec.js';
import { formatDevice } from '../../src/memory/header.js';
import { MappedDevice } from '../../src/memory/mapped.js';
import { fillPattern, pattern } from '../pkram/_setup.js';

export function pendingPkramDevice(path: string, cmdline = ''): { path: string; aFolio: number } {
  const dev = MappedDevice.open(path, { create: true, exclusive: true, size: 16 * 1024 * 1024 });
  formatDevice(dev);
  let committed: LoadedImage | null = null;
  const k = Kernel.boot({
    device: dev,
    cmdline,
    platform: {
      execute(img) {
        committed = img;
        return null as unknown as Kernel; // the successor is never started here
      },
    },
  });
  const a = k.pkram.prepareSave('a');
  const oa = a.prepareSaveObj();
  const f = k.allocPages(3);
  assert.ok(f);
  fillPattern(k.folioBytes(f), 1);
  oa.saveFolio(f, 0);
  oa.write(pattern(5000, 2));
  oa.finishSaveObj();
  a.finishSave();
  const b = k.pkram.prepareSave('b');
  const ob = b.prepareSaveObj();
  ob.write(pattern(70, 3));
  ob.finishSaveObj();
  b.finishSave();
  k.kexec.load();
  k.kexec.exec();
  assert.ok(committed);
  dev.close();
  return { path, aFolio: f.pfn };
}
