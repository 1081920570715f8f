/**
 * Handover rehearsals: whole handovers (a cold boot, KHO preservation, kexec
 * load and exec, the successor's boot and restores) run on a small device
 * before a real one, so that a downtime runs code V8 has compiled already;
 * and the control channel's exchange, on a socketpair of its own.
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
import { ControlChannel } from './kexec/control-channel.js';
import { KexecError } from './kexec/errors.js';
import type { LoadedImage } from './kexec/kexec.js';
import { type MemoryDevice, PAGE_SIZE } from './memory/device.js';
import { formatDevice, readDeviceHeader } from './memory/header.js';
import { MappedDevice } from './memory/mapped.js';
import { makePageArraysAhead } from './mm/page-array.js';
import { findStatusArea, readArea } from './status/area.js';
import { decodeStatusHistory } from './status/payload.js';

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
    warnNoRehearsal('device', err);
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

/** What a rehearsal could not have ('device', 'socketpair'), said once per process. */
function warnNoRehearsal(what: string, err: unknown): void {
  if (rehearsalWarned) return;
  rehearsalWarned = true;
  process.emitWarning(
    `handover rehearsal: no ${what} to rehearse on (${messageOf(err)}); the handover runs cold code`,
    { type: 'LivekexecWarning', code: 'LIVEKEXEC_REHEARSAL' },
  );
}
let rehearsalWarned = false;

/**
 * Cold boot, KHO preservation (a page range, folios of orders 0 to 10 so the
 * tree has a leaf per order, a page list, a subtree), kexec load (with boot
 * counting) and exec, the successor's boot on trial and restores: the
 * takeover's code path, and this process's own exec later.
 */
function rehearseHandover(device: MemoryDevice): void {
  const platform = new RehearsalPlatform(device);
  const k = Kernel.boot({ device, platform });
  const alloc = (order: number) => {
    const f = k.allocPages(order);
    if (f === null) throw new KexecError('EIO', `rehearsal: no free block of order ${order}`);
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
  // On trial, as a real successor boots by default (boot counting): its
  // boot's trial steps and this process's exec that records the trial.
  k.kexec.load({ trial: {} });
  // Its per-page arrays made ahead, as a preloaded successor's are: the boot's hand-out runs hot.
  makePageArraysAhead(device.pages);
  const next = k.kexec.exec();
  next.kho.retrieveSubtree('rehearsal').getProp(0, 'pfn');
  next.kho.restorePages(pages.pfn * PAGE_SIZE, 4);
  for (const f of folios) next.kho.restoreFolio(f.pfn * PAGE_SIZE);
  next.kho.restorePageListView(list);
}

/** Folios in the rehearsal's page list: a few chunks' worth, so the restore's loops run hot. */
const PAGE_LIST_FOLIOS = 2048;

/**
 * Reads, as a booting generation reads its predecessor's, the status the
 * device's owner has published (the area keeps its address for the life of
 * the device; the device header's map names it), and drops it: the handover
 * rehearsals have no status area. A generation reads it at its first use
 * (the first publish, just after boot() returns, or a program's own
 * `kernel.status()`); cold, that read took 0.6-0.8 ms on one vCPU, in the
 * downtime when it was part of the boot. Only a warm-up: the owner may be
 * writing, and nothing read here is kept.
 */
export function rehearseStatusRead(device: MemoryDevice): void {
  for (let i = 0; i < STATUS_READS; i++) {
    try {
      const area = findStatusArea(readDeviceHeader(device).memmap, device.size);
      if (area === null) return;
      const read = readArea(device, area);
      if (read.ok) decodeStatusHistory(read.payload);
    } catch {
      // A header or area caught mid-write: the boot reads it again anyway.
    }
  }
}

/** Reads a status rehearsal makes: V8 compiles a function at its first call. */
const STATUS_READS = 3;

/**
 * Rehearses the control channel's side of a handover on a socketpair of its
 * own: frames with and without a descriptor, received blocking, as both
 * sides receive them. Cold, a successor's handling of "prepare" and "go"
 * (the first recvmsg and poll bound, the frame code interpreted) took about
 * 1 ms of a 6 ms preloaded handover on one vCPU. Only a warm-up: when no
 * socketpair can be had, it says so once, as rehearseHandovers does.
 */
export async function rehearseControlChannel(): Promise<void> {
  let pair: { channel: ControlChannel; peerFd: number };
  try {
    pair = ControlChannel.pair();
  } catch (err) {
    warnNoRehearsal('socketpair', err);
    return;
  }
  const near = pair.channel;
  const far = new ControlChannel(pair.peerFd);
  try {
    for (let i = 0; i < CHANNEL_ROUNDS; i++) {
      far.send({ t: 'fds', numbers: [far.fd] }, [far.fd]);
      const got = near.receiveSync(CHANNEL_WAIT_MS);
      if (got === null || got.msg.t !== 'fds' || got.fds.length !== 1) {
        throw new KexecError(
          'EIO',
          `control channel rehearsal: the fds frame came back as ${frame(got)}`,
        );
      }
      ControlChannel.closeReceived(got.fds);
      far.send({ t: 'prepare' });
      const prepare = near.receiveSync(CHANNEL_WAIT_MS);
      near.send({ t: 'prepared' });
      const prepared = far.receiveSync(CHANNEL_WAIT_MS);
      far.send({ t: 'go', boot: 'rehearsal@0' });
      const go = near.receiveSync(CHANNEL_WAIT_MS);
      if (prepare?.msg.t !== 'prepare' || prepared?.msg.t !== 'prepared' || go?.msg.t !== 'go') {
        throw new KexecError(
          'EIO',
          `control channel rehearsal: got ${frame(prepare)}, ${frame(prepared)}, ${frame(go)}`,
        );
      }
    }
  } finally {
    near.close();
    far.close();
  }
}

/** Exchanges a channel rehearsal runs: V8 compiles a function at its first call. */
const CHANNEL_ROUNDS = 3;
/** A frame sent on a socketpair is there at once; this only bounds a fault. */
const CHANNEL_WAIT_MS = 1000;

function frame(got: { msg: { t: string } } | null): string {
  return got === null ? 'nothing' : `"${got.msg.t}"`;
}
