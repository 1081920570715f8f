import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { Kernel, Machine } from '../../src/index.js';
import { readDeviceHeader } from '../../src/memory/header.js';
import { E820 } from '../../src/memory/memmap-types.js';
import type { Folio } from '../../src/mm/folio.js';
import { CENSUS_CELLS } from '../../src/mm/page-census.js';
import { readArea } from '../../src/status/area.js';
import { bytesByKind } from '../../src/status/layout.js';
import type { MemoryRun } from '../../src/status/model.js';
import { decodeStatusPayload } from '../../src/status/payload.js';

const MiB = 1024 * 1024;
const CMDLINE = 'kho=on pmpool=0x1000000,0x400000 reserve_mem=64K:4K:trace';

function bootWithEverything() {
  const m = Machine.create({ size: 32 * MiB, status: true });
  const k = m.boot(CMDLINE);
  const folio = k.allocPages(3);
  assert.ok(folio);
  k.kho.preserveFolio(folio);
  k.pmpool?.alloc(8);
  const node = k.pkram.prepareSave('index');
  const obj = node.prepareSaveObj();
  obj.write(new Uint8Array(20000).fill(7));
  obj.finishSaveObj();
  node.finishSave();
  return { m, k, folio };
}

function published(m: Machine) {
  const header = readDeviceHeader(m.device);
  const range = header.memmap.find((r) => r.type === E820.STATUS);
  assert.ok(range, 'the device header names the status area');
  const read = readArea(m.device, { base: range.base, size: range.size });
  assert.ok(read.ok);
  return decodeStatusPayload(read.payload);
}

function kindAt(runs: readonly MemoryRun[], addr: number): string | undefined {
  return runs.find((r) => r.base <= addr && addr < r.base + r.size)?.kind;
}

test('status: a generation publishes itself where a reader of the device header finds it', () => {
  const { m, k } = bootWithEverything();
  assert.ok(k.publishStatus());
  const s = published(m);
  assert.equal(s.generation, k.generation);
  assert.equal(s.bootKind, 'cold');
  assert.equal(s.ownerPid, process.pid);
  assert.deepEqual(s.pkram.nodes, ['index']);
  assert.equal(s.pmpools[0]?.base, 0x1000000);
  assert.equal(s.pmpools[0]?.usedPages, k.pmpool?.stats().usedPages);
  assert.deepEqual(
    s.reserveMem.map((r) => r.name),
    ['trace'],
  );
  assert.equal(
    s.kho.preservedBlocks,
    k.kho.preserved().byOrder.reduce((n, o) => n + o.blocks, 0),
  );
  assert.deepEqual(s.pages.freeByOrder, k.pages.stats().freeByOrder);
});

test('status: the memory layout covers the device and names each owner', () => {
  const { k, folio } = bootWithEverything();
  const layout = k.memoryLayout();
  let end = 0;
  for (const r of layout.runs) {
    assert.equal(r.base, end, 'runs are sorted and leave no gap');
    end = r.base + r.size;
  }
  assert.equal(end, k.device.size);
  const runs = layout.runs;
  assert.equal(kindAt(runs, 0), 'header');
  assert.equal(kindAt(runs, folio.pfn * 4096), 'kho');
  assert.equal(kindAt(runs, 0x1000000), 'pmpool');
  assert.equal(kindAt(runs, k.reserveMem('trace').base), 'reserve-mem');
  assert.equal(kindAt(runs, k.kho.scratch[0]?.base as number), 'scratch');
  assert.equal(kindAt(runs, k.status().statusArea?.base as number), 'status');
  const pkram = runs.filter((r) => r.kind === 'pkram').reduce((n, r) => n + r.size, 0);
  assert.ok(pkram >= 5 * 4096, `PKRAM's pages are attributed to it (${pkram} bytes)`);
  k.kexec.load();
  const seg = k.kexec.loaded?.segment;
  assert.ok(seg);
  assert.equal(kindAt(k.memoryLayout().runs, seg.base), 'boot-block');
});

test('status: the layout of a fragmented device is bounded by the census, and counts pages exactly', () => {
  // 256 MiB, every other page of half of it allocated: 32k alternating runs page by page.
  const m = Machine.create({ size: 256 * MiB, status: true });
  const k = m.boot('kho=on');
  const folios = [];
  for (let i = 0; i < 32768; i++) folios.push(k.allocPages(0) as Folio);
  for (let i = 0; i < folios.length; i += 2) k.freePages(folios[i] as Folio);
  for (let i = 1; i < folios.length; i += 64) k.kho.preserveFolio(folios[i] as Folio);
  const layout = k.memoryLayout();
  // Six kinds per census cell at most, plus two cuts per painted extent.
  assert.ok(
    layout.runs.length <= 6 * CENSUS_CELLS + 64,
    `${layout.runs.length} runs for ${k.pages.census.cells} cells`,
  );
  const bytes = bytesByKind(layout);
  const stats = k.pages.stats();
  assert.equal(bytes.get('free'), stats.freePages * 4096);
  assert.equal(bytes.get('kho'), stats.preservedPages * 4096);
  assert.equal(bytes.get('allocated'), stats.allocatedPages * 4096);
  let end = 0;
  for (const r of layout.runs) {
    assert.equal(r.base, end);
    end = r.base + r.size;
  }
  assert.equal(end, k.device.size);
});

test('status: the successor counts the handover, its downtime and way, and keeps the history', () => {
  const { m, k } = bootWithEverything();
  k.kexec.load();
  const k2 = k.kexec.exec();
  const h2 = k2.status().handover;
  assert.equal(h2.handovers, 1);
  assert.equal(h2.last?.outcome, 'ok');
  assert.equal(h2.last?.way, 'in-place');
  assert.equal(h2.last?.fromGeneration, 1);
  assert.equal(h2.last?.toGeneration, 2);
  assert.ok((h2.last?.downtimeUs ?? -1) >= 0);
  assert.equal(
    h2.downtime.counts.reduce((a, b) => a + b, 0),
    1,
  );
  // The next generation carries the history on, from the area.
  k2.kexec.load();
  const k3 = k2.kexec.exec();
  assert.equal(k3.status().handover.handovers, 2);
  assert.equal(published(m).handover.handovers, 2);
  assert.equal(published(m).generation, 3);
  // A cold boot (a reset) keeps it too: the area stays at its address.
  const again = m.boot(CMDLINE);
  assert.equal(again.status().statusArea?.base, k.status().statusArea?.base);
  assert.equal(again.status().handover.handovers, 2);
});

test('status: a failed exec is counted, with its reason, and published at once', () => {
  const { m, k } = bootWithEverything();
  k.addSubsystem({
    name: 'refuser',
    freeze: () => {
      throw new Error('not now');
    },
  });
  k.kexec.load();
  assert.throws(() => k.kexec.exec(), /refuser could not freeze: not now/);
  const s = published(m);
  assert.equal(s.handover.failed, 1);
  assert.equal(s.handover.last?.outcome, 'failed');
  assert.match(s.handover.last?.reason ?? '', /not now/);
  assert.equal(s.handover.handovers, 0);
});

test('status: a refused handover is counted as such', () => {
  const { m, k } = bootWithEverything();
  k.kexec.load();
  const k2 = k.kexec.exec();
  assert.equal(k2.status().handover.refused, 0);
  // The boot block k2 consumed is stale now: a boot offered it refuses it and boots cold.
  const cold = Kernel.boot({
    device: m.device,
    bootBlock: k2.boot.bootBlock as number,
    platform: m,
    status: true,
  });
  assert.equal(cold.boot.kind, 'cold');
  const h = cold.status().handover;
  assert.equal(h.refused, 1);
  assert.equal(h.handovers, 1);
  assert.equal(h.last?.outcome, 'refused');
  assert.equal(h.last?.reason, cold.boot.coldReason);
});

test('metrics: the Prometheus text has the downtime histogram, preserved bytes by subsystem and free blocks by order', () => {
  const { k } = bootWithEverything();
  k.kexec.load();
  const k2 = k.kexec.exec();
  const text = k2.metrics();
  assert.match(text, /^# TYPE livekexec_handover_downtime_seconds histogram$/m);
  assert.match(text, /^livekexec_handover_downtime_seconds_bucket\{le="\+Inf"\} 1$/m);
  assert.match(text, /^livekexec_handover_downtime_seconds_count 1$/m);
  assert.match(text, /^livekexec_handovers_total 1$/m);
  assert.match(text, /^livekexec_handovers_failed_total 0$/m);
  assert.match(text, /^livekexec_handover_fallbacks_total 0$/m);
  assert.match(text, /^livekexec_preserved_bytes\{subsystem="pmpool"\} 4194304$/m);
  assert.match(text, /^livekexec_preserved_bytes\{subsystem="reserve_mem"\} 65536$/m);
  // Not yet restored by the successor: the predecessor's folio and PKRAM's pages.
  const incoming = Number(
    /^livekexec_preserved_bytes\{subsystem="incoming"\} (\d+)$/m.exec(text)?.[1],
  );
  assert.ok(incoming >= 8 * 4096, `incoming ${incoming}`);
  const free = k2.pages.stats().freeByOrder;
  free.forEach((n, order) => {
    assert.match(text, new RegExp(`^livekexec_free_blocks\\{order="${order}"\\} ${n}$`, 'm'));
  });
  // Buckets are cumulative and end with +Inf.
  const buckets = [
    ...text.matchAll(/^livekexec_handover_downtime_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm),
  ];
  assert.equal(buckets.at(-1)?.[1], '+Inf');
  for (let i = 1; i < buckets.length; i++)
    assert.ok(Number(buckets[i]?.[2]) >= Number(buckets[i - 1]?.[2]));
});

test('metrics: a prom-client Registry takes livekexec collectors and prints what kernel.metrics() prints', async () => {
  const { k } = bootWithEverything();
  const registry = new Registry();
  for (const m of k.metricCollectors()) registry.registerMetric(m as never);
  const fromRegistry = await registry.metrics();
  const samples = (text: string) =>
    text
      .split('\n')
      .filter((l) => l.startsWith('livekexec_') && !l.startsWith('livekexec_boot_time'))
      .sort();
  assert.deepEqual(samples(fromRegistry), samples(k.metrics()));
  assert.match(fromRegistry, /# TYPE livekexec_handover_downtime_seconds histogram/);
});

test('status: a booting generation reads its predecessor status when first needed, not in the boot; a damaged one is logged then and counted from nothing', () => {
  const { m, k } = bootWithEverything();
  k.kexec.load();
  const k2 = k.kexec.exec();
  assert.ok(k2.publishStatus());
  const area = k2.status().statusArea;
  assert.ok(area);
  // As a real process boots (its first publish deferred): a refused boot block records before the read.
  const boot = (bootBlock?: number) =>
    Kernel.boot({ device: m.device, bootBlock, platform: m, status: true, deferStatus: true });
  const refused = boot(k2.boot.bootBlock as number);
  assert.equal(refused.boot.kind, 'cold');
  const h = refused.status().handover;
  assert.equal(h.handovers, 1, 'the history read from the area');
  assert.equal(h.refused, 1, 'the refusal recorded in the boot, on top of it');
  assert.equal(h.last?.outcome, 'refused');
  assert.ok(refused.publishStatus());
  assert.equal(published(m).handover.refused, 1);
  // Damaged after the boot and before its first use: the read happens then, and says so.
  const next = boot();
  assert.ok(!next.log.some((l) => l.startsWith('status:')), next.log.join('\n'));
  m.device.bytes(area.base, area.size).fill(0xa5);
  assert.equal(next.status().handover.handovers, 0);
  assert.ok(
    next.log.some((l) => l.startsWith('status: the previous status cannot be read')),
    next.log.join('\n'),
  );
  assert.ok(next.publishStatus(), 'the area is written again');
  assert.equal(published(m).generation, next.generation);
});
