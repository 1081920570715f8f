/**
 * `livekexec pkram ls|rm --device PATH`: look at and free PKRAM nodes on a
 * device without booting anything.
 *
 * The super block is reached through the device header's pending boot block
 * (written by `kexec exec`, not yet consumed by a successor): its setup_data
 * SETUP.PKRAM holds the super block pfn, and its generation and predecessor
 * boot id are what the super block must say. Once a successor has booted
 * there is no pending block and the nodes belong to that running generation:
 * use its `kernel.pkram` instead.
 *
 * `rm` takes the PKRAM over as the successor would (Pkram.attach), removes
 * the node and writes the super block back at the same pfn with the same
 * generation and boot id. Its pages come only from pages PKRAM freed (the old
 * table and region list), so everything it keeps lies inside the marks the
 * predecessor put in the handed-over map; the successor turns those marks
 * back into memory and reserves only what the new table lists.
 */
import type { Command } from 'commander';
import { hex } from '../base/hex.js';
import { SETUP } from '../boot/abi.js';
import { readPendingBootBlock } from '../kernel/boot-block-read.js';
import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import { readDeviceHeader } from '../memory/header.js';
import { MappedDevice } from '../memory/mapped.js';
import { ReadonlyDevice } from '../memory/readonly.js';
import { checkPkramHandover } from '../pkram/handover.js';
import { Pkram, type PkramPageSource } from '../pkram/index.js';
import { decodePkramSetup } from '../pkram/kernel-early.js';
import type { PkramExpect } from '../pkram/super.js';
import { CliError } from './cli-exit.js';

export function registerPkramCommands(program: Command): void {
  const pkram = program
    .command('pkram')
    .description('list and free PKRAM nodes handed over in a pending boot block');
  pkram
    .command('ls')
    .description('list nodes with their objects, folios and bytes')
    .requiredOption('-d, --device <path>', 'device file')
    .option('--json', 'print JSON')
    .action((opts: { device: string; json?: boolean }) => list(opts.device, opts.json === true));
  pkram
    .command('rm')
    .description('free a preserved node (its memory goes to the successor)')
    .argument('<name>', 'node name')
    .requiredOption('-d, --device <path>', 'device file')
    .action((name: string, opts: { device: string }) => remove(opts.device, name));
}

interface Located {
  superPfn: number;
  expect: PkramExpect;
}

/** @throws CliError ENOENT when there is no PKRAM handover to look at. */
function locate(dev: MemoryDevice): Located {
  const header = readDeviceHeader(dev);
  if (header.bootBlock === 0) {
    fail(
      `${dev.name}: no pending boot block, so no PKRAM handover (a running generation owns its nodes)`,
    );
  }
  const block = readPendingBootBlock(dev, header, header.bootBlock);
  const rec = block.setupData.find((s) => s.type === SETUP.PKRAM);
  if (!rec) fail(`${dev.name}: the pending boot block hands over no PKRAM`);
  const { superPfn } = decodePkramSetup(rec.data, dev);
  return {
    superPfn,
    expect: { generation: header.generation, predecessorBootId: block.predecessorBootId },
  };
}

function fail(message: string, code = 'ENOENT'): never {
  throw new CliError(code, message);
}

/** Reads the device in place (pread, no lock, no mapping), so it works while an owner runs. */
function list(path: string, json: boolean): void {
  const dev = ReadonlyDevice.open(path);
  try {
    const { superPfn, expect } = locate(dev);
    const info = Pkram.inspect(dev, superPfn, expect);
    if (json) {
      const out = {
        superPfn,
        generation: info.generation,
        orphanPages: info.orphanPages,
        nodes: info.nodes,
      };
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      return;
    }
    const lines = [`super block pfn ${hex(superPfn)}, generation ${info.generation}`];
    lines.push('NAME\tOBJECTS\tFOLIOS\tBYTES\tPAGES');
    for (const n of info.nodes) {
      const pages = n.metadataPages;
      lines.push(`${n.name}\t${n.objects.length}\t${n.folios}\t${n.bytes}\t${pages}`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    dev.close();
  }
}

/**
 * A page source that hands out only pages PKRAM itself gave back. During
 * attach it is primed with the old table pages (attach rebuilds the table
 * before it frees them, and nothing reads the old table after its check).
 */
function recyclingSource(prime: number[]): { source: PkramPageSource; attached(): void } {
  const pool = [...prime];
  const primed = new Set(prime);
  let attaching = true;
  return {
    source: {
      allocPages: (order) => (order === 0 ? (pool.pop() ?? null) : null),
      freePages: (pfn, order) => {
        if (attaching && primed.has(pfn)) return;
        for (let i = 0; i < 2 ** order; i++) pool.push(pfn + i);
      },
    },
    attached: () => {
      attaching = false;
    },
  };
}

function remove(path: string, name: string): void {
  // Read first: only a device whose pending handover carries PKRAM is opened for writing,
  // and even then a file with holes is refused, never filled.
  const reader = ReadonlyDevice.open(path);
  try {
    locate(reader);
  } finally {
    reader.close();
  }
  const dev = MappedDevice.open(path, { fillHoles: false });
  try {
    const { superPfn, expect } = locate(dev);
    const check = checkPkramHandover(dev, superPfn, expect);
    // Checked before attach: a failed rm must leave the handover as it was.
    if (!check.nodes.some((n) => n.name === name)) fail(`no saved node "${name}"`);
    const r = recyclingSource(check.tablePhys.map((p) => p / PAGE_SIZE));
    const pkram = Pkram.attach({
      device: dev,
      pages: r.source,
      superPfn,
      expect,
      generation: expect.generation,
      bootId: expect.predecessorBootId,
    });
    r.attached();
    const node = pkram.list().find((n) => n.name === name);
    const pages = node
      ? node.metadataPages + node.objects.reduce((s, o) => s + pagesOf(o.foliosByOrder), 0)
      : 0;
    pkram.remove(name);
    const again = pkram.finalize();
    if (again !== superPfn) fail(`internal: super block moved to pfn ${again}`, 'EIO');
    dev.flush(0, dev.size);
    process.stdout.write(`removed node "${name}": ${pages} pages freed for the successor\n`);
  } finally {
    dev.close();
  }
}

function pagesOf(byOrder: number[]): number {
  return byOrder.reduce((s, n, order) => s + n * 2 ** order, 0);
}
