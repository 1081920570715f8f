// The build's warm-up (see loader.mjs): runs the code a handover runs, then
// writes V8's code cache of dist/pkg/livekexec.cjs. Generation 1 cold-boots a
// scratch device, preserves a folio (KHO), a subtree and a PKRAM node, and
// execs itself in place; generation 2 boots as the successor, restores them,
// runs an exec up to an execve that fails, does the same round on an emulated
// machine, writes the cache, and removes the device. Run by scripts/bundle.mjs: node warm.mjs <dist/pkg> <device>
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [pkgDir, device] = process.argv.slice(2);
const lk = await import(pathToFileURL(join(pkgDir, 'index.js')).href);
const { writeCodeCache, codeCacheState } = await import(
  pathToFileURL(join(pkgDir, 'livekexec.js')).href
);
const SUBTREE = 'warm-up';
const NODE = 'warm-up';

if (codeCacheState() === 'accepted') throw new Error('warm-up must start without a code cache');
const kernel = await lk.boot({ device, size: '32M', cmdline: '' });
if (kernel.boot.kind === 'cold') {
  preserve(kernel);
  kernel.kexec.load();
  kernel.kexec.exec();
  throw new Error('kexec exec returned');
}
restore(kernel);
// The old side of an in-place exec up to the execve, which fails here (no
// such program): this generation goes on, with that path compiled too.
preserve(kernel);
kernel.kexec.load({ program: join(pkgDir, 'no-such-program') });
try {
  kernel.kexec.exec();
  throw new Error('kexec exec of a missing program returned');
} catch (err) {
  if (err.code !== 'EIO') throw err;
}
// The same round on the emulated machine: finalize and the successor's boot in one process.
const machine = lk.Machine.create({ size: 32 * 2 ** 20 });
const first = machine.boot('');
preserve(first);
first.kexec.load();
restore(first.kexec.exec());
if (!writeCodeCache(true)) throw new Error('the warm-up could not write the code cache');
rmSync(device, { force: true });

function preserve(k) {
  const folio = k.allocPages(2);
  k.folioBytes(folio).fill(0xa5);
  k.kho.preserveFolio(folio);
  const w = new lk.fdt.FdtWriter();
  w.finishReservations();
  w.beginNode('');
  w.property('folio', new Uint8Array(new Float64Array([lk.folioPhys(folio)]).buffer));
  w.endNode();
  k.kho.addSubtree(SUBTREE, w.finish());
  const pages = k.allocPages(0);
  const node = k.pkram.prepareSave(NODE);
  const obj = node.prepareSaveObj();
  obj.saveFolio(pages, 0);
  obj.write(new Uint8Array(100).fill(7));
  obj.finishSaveObj();
  node.finishSave();
}

function restore(k) {
  const prop = k.kho.retrieveSubtree(SUBTREE).getProp(0, 'folio');
  const phys = new Float64Array(prop.slice().buffer)[0];
  const folio = k.kho.restoreFolio(phys);
  if (k.folioBytes(folio)[0] !== 0xa5) throw new Error('the warm-up lost its folio');
  const node = k.pkram.prepareLoad(NODE);
  const obj = node.prepareLoadObj();
  for (let f = obj.loadFolio(); f !== null; f = obj.loadFolio()) k.pkram.takeFolio(f.folio);
  const bytes = new Uint8Array(obj.byteLength);
  obj.read(bytes);
  obj.finishLoadObj();
  node.finishLoad();
}
