/**
 * Handover rehearsals: whole handovers (a cold boot, KHO preservation, kexec
 * load and exec, the successor's boot and restores) run on a small device
 * before a real one, so that a downtime runs code V8 has compiled already.
 *
 * The device is a MappedDevice in a memfd, as a real boot's is: V8 optimizes
 * for the classes and array kinds it saw, and a rehearsal on a heap device
 * (other classes, unshared memmap arrays) left the real boot to throw that
 * code away and compile it again inside the downtime (4-9 ms of 9-14 ms
 * after "go" on one vCPU). Without a status area, as the emulator boots:
 * rehearsing the status writes too made the real boot slower, not faster.
 */
import { messageOf } from './base/errors.js';
import { FdtWriter } from './fdt/write.js';
import { Kernel, type KernelPlatform } from './kernel/kernel.js';
import type { LoadedImage } from './kexec/kexec.js';
import { type MemoryDevice, PAGE_SIZE } from './memory/device.js';
import { formatDevice } from './memory/header.js';
import { MappedDevice } from './memory/mapped.js';

/** The device handovers are rehearsed on: room for a folio of each order and the tree. */
const REHEARSAL_SIZE = 32 * 1024 * 1024;

/** The platform of a rehearsal: exec boots the successor on the same device, as the emulator does. */
class RehearsalPlatform implements KernelPlatform {
  constructor(readonly device: MemoryDevice) {}

  execute(image: LoadedImage): Kernel {
    return Kernel.boot({
      device: this.device,
      cmdline: image.cmdline,
      bootBlock: image.segment.base,
      platform: this,
    });
  }
}

/**
 * Rehearses `runs` handovers on a fresh device. Only a warm-up: when the
 * device cannot be had, the handover runs cold code, and says so once as a
 * process warning (LIVEKEXEC_REHEARSAL); that neither refuses a load nor
 * stops a takeover. A rehearsal that fails on the device it got still
 * throws: a fault in the handover's own code shows here, before a real one.
 */
export function rehearseHandovers(runs: number): void {
  let device: MappedDevice;
  try {
    device = MappedDevice.anonymous(REHEARSAL_SIZE, 'livekexec-rehearsal');
  } catch (err) {
    warnNoRehearsal(err);
    return;
  }
  try {
    for (let i = 0; i < runs; i++) {
      formatDevice(device);
      rehearseHandover(device);
    }
  } finally {
    device.close();
  }
}

function warnNoRehearsal(err: unknown): void {
  if (rehearsalWarned) return;
  rehearsalWarned = true;
  process.emitWarning(
    `handover rehearsal: no device to rehearse on (${messageOf(err)}); the handover runs cold code`,
    { type: 'LivekexecWarning', code: 'LIVEKEXEC_REHEARSAL' },
  );
}
let rehearsalWarned = false;

/**
 * Cold boot, KHO preservation (a page range, folios of orders 0 to 10 so the
 * tree has a leaf per order, a page list, a subtree), kexec load and exec,
 * the successor's boot and restores: the takeover's code path, and this
 * process's own exec later.
 */
function rehearseHandover(device: MemoryDevice): void {
  const platform = new RehearsalPlatform(device);
  const k = Kernel.boot({ device, platform });
  const alloc = (order: number) => {
    const f = k.allocPages(order);
    if (f === null) throw new Error(`rehearsal: no free block of order ${order}`);
    return f;
  };
  const pages = alloc(2);
  k.kho.preservePages(pages.pfn, 4);
  const folios = [];
  for (let order = 0; order <= 10; order++) {
    const f = alloc(order);
    k.kho.preserveFolio(f);
    folios.push(f);
  }
  // A page list of order-0 folios, the shape of a program's many small allocations.
  const small = [];
  for (let i = 0; i < PAGE_LIST_FOLIOS; i++) small.push(alloc(0));
  const list = k.kho.preservePageList(small);
  const w = new FdtWriter();
  w.finishReservations();
  w.beginNode('');
  w.property('pfn', new Uint8Array(8));
  w.endNode();
  k.kho.addSubtree('rehearsal', w.finish());
  k.kexec.load();
  const next = k.kexec.exec();
  next.kho.retrieveSubtree('rehearsal').getProp(0, 'pfn');
  next.kho.restorePages(pages.pfn * PAGE_SIZE, 4);
  for (const f of folios) next.kho.restoreFolio(f.pfn * PAGE_SIZE);
  next.kho.restorePageListView(list);
}

/** Folios in the rehearsal's page list: a few chunks' worth, so the restore's loops run hot. */
const PAGE_LIST_FOLIOS = 2048;
