/**
 * KHO preserved-memory tracker: preservation rate (order 0 and order 9) and
 * the successor's walk with 1, 4 and 16 GiB preserved, with the metadata bytes.
 * Peer: a JS Set of preserved pfns (what a naive tracker would keep, and it
 * would still have to be serialized at kexec). Kernel reference: 512 KiB of
 * order-0 bitmaps per 16 GiB.
 */
import { KhoRadixTree } from '../src/kho/radix.js';
import { PAGE_SIZE } from '../src/memory/device.js';
import { HeapDevice } from '../src/memory/heap.js';
import { bestMs, table } from './_harness.js';

const GiB = 2 ** 30;
const META = 8 * 2 ** 20;

function pageSource(device: HeapDevice) {
  const free: number[] = [];
  for (let p = device.size - PAGE_SIZE; p >= device.size - META; p -= PAGE_SIZE) free.push(p);
  return { allocPage: () => free.pop() ?? 0, freePage: (p: number) => void free.push(p) };
}

function perSecond(count: number, ms: number): number {
  return count / (ms / 1000);
}

/** The options run() reads (`--NAME` or `--NAME=VALUE`); main.ts refuses others. */
export const options: readonly string[] = [];

export async function run(_args: string[]): Promise<void> {
  const device = new HeapDevice(16 * GiB + META);
  const pages = (16 * GiB) / PAGE_SIZE;

  const rows: (string | number)[][] = [];
  {
    const n = 4 * 2 ** 20;
    const ms = bestMs(() => {
      const tree = new KhoRadixTree(device, pageSource(device));
      for (let pfn = 0; pfn < n; pfn++) tree.preserve(pfn, 0);
      tree.clear();
    });
    rows.push(['radix preserve, order 0, sequential', perSecond(n, ms), perSecond(n, ms)]);
    const order9 = n / 512;
    const ms9 = bestMs(() => {
      const tree = new KhoRadixTree(device, pageSource(device));
      for (let i = 0; i < order9; i++) tree.preserve(i * 512, 9);
      tree.clear();
    });
    rows.push(['radix preserve, order 9, sequential', perSecond(order9, ms9), perSecond(n, ms9)]);
    const random = new Float64Array(2 ** 20).map(() => Math.floor(Math.random() * pages));
    const msR = bestMs(() => {
      const tree = new KhoRadixTree(device, pageSource(device));
      for (const pfn of random) if (!tree.isPreserved(pfn, 0)) tree.preserve(pfn, 0);
      tree.clear();
    });
    rows.push([
      'radix preserve, order 0, random',
      perSecond(random.length, msR),
      perSecond(random.length, msR),
    ]);
    const msSet = bestMs(() => {
      const set = new Set<number>();
      for (let pfn = 0; pfn < n; pfn++) set.add(pfn);
    });
    rows.push(['peer: Set<pfn>.add, sequential', perSecond(n, msSet), perSecond(n, msSet)]);
  }
  table(['preservation', 'blocks/s', 'pages/s'], rows);

  process.stdout.write('\n');
  const walkRows: (string | number)[][] = [];
  for (const gib of [1, 4, 16]) {
    const tree = new KhoRadixTree(device, pageSource(device));
    const n = (gib * GiB) / PAGE_SIZE;
    for (let pfn = 0; pfn < n; pfn++) tree.preserve(pfn, 0);
    let blocks = 0;
    const ms = bestMs(() => {
      blocks = 0;
      KhoRadixTree.walk(device, tree.rootPhys, () => {
        blocks++;
      });
    });
    const metaBytes = tree.metadataPageCount * PAGE_SIZE;
    walkRows.push([`${gib} GiB order 0`, blocks, metaBytes, (metaBytes / gib) * 16, ms]);
    tree.clear();
  }
  {
    const tree = new KhoRadixTree(device, pageSource(device));
    for (let pfn = 0; pfn < pages; pfn += 512) tree.preserve(pfn, 9);
    const ms = bestMs(() => KhoRadixTree.walk(device, tree.rootPhys, () => {}));
    const metaBytes = tree.metadataPageCount * PAGE_SIZE;
    walkRows.push(['16 GiB order 9', pages / 512, metaBytes, metaBytes, ms]);
    tree.clear();
  }
  walkRows.push(['kernel (order 0, bitmaps only)', '', '', 512 * 1024, '']);
  table(['walk', 'blocks', 'metadata bytes', 'bytes per 16 GiB', 'walk ms'], walkRows);
}
