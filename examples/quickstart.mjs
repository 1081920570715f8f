// README "Using it", runnable after `npm ci`: node examples/quickstart.mjs DEVICE-FILE
// Generation 1 keeps a folio and a reserve_mem region and execs itself in
// place; generation 2 finds both at the same addresses, in the same PID.
import { boot, folioPhys } from 'livekexec';

const kernel = await boot({
  device: process.argv[2],
  size: '256M',
  cmdline: 'reserve_mem=1M:4K:journal',
});
const { bytes } = kernel.reserveMem('journal'); // same address and contents in every generation
const journal = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
console.log(`generation ${kernel.generation}, ${kernel.boot.kind} boot, PID ${process.pid}`);
if (kernel.boot.kind === 'kexec') {
  const savedPhys = journal.getFloat64(0, true);
  const folio = kernel.kho.restoreFolio(savedPhys); // same address, same bytes
  console.log(`restored: ${new TextDecoder().decode(kernel.folioBytes(folio).subarray(0, 5))}`);
} else {
  const folio = kernel.allocPages(4);
  kernel.folioBytes(folio).set(new TextEncoder().encode('hello'));
  kernel.kho.preserveFolio(folio);
  journal.setFloat64(0, folioPhys(folio), true);
  kernel.kexec.load(); // the same program and arguments; or { argv, program, cmdline, preload }
  kernel.kexec.exec(); // execve in place; returns only on failure, leaving this generation usable
}
