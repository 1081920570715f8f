/**
 * `livekexec map`: the picture of a live device, checked in a real
 * headless Chromium (Debian's chromium, driven by playwright-core) from
 * the rendered DOM, and its size bound at 64 GiB.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { COLUMNS, KIND_COLOR, MIN_SEGMENT_PX, renderSvg } from '../../src/cli/map-picture.js';
import type { MemoryRun, RunKind } from '../../src/status/model.js';
import { runCli } from '../_helpers/cli.js';
import { fixture, REPO_ROOT } from '../_helpers/paths.js';
import { lines } from '../luo/_lines.js';

const CHROMIUM = '/usr/bin/chromium';
/** An SVG element in the page (the test compiles without the DOM library). */
interface Measured {
  getBBox(): { width: number };
}
/** Where the test leaves its screenshot (the README's picture is a copy of it). */
const OUTPUT = join(REPO_ROOT, 'dist', 'test-output');

const dir = mkdtempSync(join(tmpdir(), 'livekexec-map-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function serving(device: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [fixture('process', 'status-serve.mjs'), device], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  await lines(child.stdout as NonNullable<typeof child.stdout>).next();
  return child;
}

test('map --html: Chromium renders the legend and the ranges of a live device', async () => {
  assert.ok(
    existsSync(CHROMIUM),
    `${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`,
  );
  const device = join(dir, 'live');
  const child = await serving(device);
  const html = join(dir, 'map.html');
  const svg = join(dir, 'map.svg');
  try {
    const r = runCli(['map', '--device', device, '--html', html, '--svg', svg]);
    assert.equal(r.status, 0, r.stderr);
  } finally {
    child.stdin?.end();
    await new Promise((r) => child.once('exit', r));
  }
  assert.match(readFileSync(svg, 'utf8'), /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 420 } });
    await page.goto(pathToFileURL(html).href);
    const legend = await page.$$eval('.legend-item', (items) =>
      items.map((i) => ({
        kind: i.getAttribute('data-kind'),
        bytes: Number(i.getAttribute('data-bytes')),
        text: i.textContent,
        visible: (i as unknown as Measured).getBBox().width > 0,
      })),
    );
    const kinds = legend.map((l) => l.kind);
    for (const k of [
      'header',
      'free',
      'allocated',
      'kho',
      'pkram',
      'pmpool',
      'scratch',
      'status',
      'reserve-mem',
    ]) {
      assert.ok(kinds.includes(k), `legend lacks ${k}: ${kinds.join(', ')}`);
    }
    assert.equal(
      legend.reduce((n, l) => n + l.bytes, 0),
      64 * 1024 * 1024,
      'the legend accounts for every byte',
    );
    assert.ok(legend.every((l) => l.visible));
    assert.match(legend.find((l) => l.kind === 'pmpool')?.text ?? '', /pmpool: 4 MiB/);
    const segs = await page.$$eval('.seg', (gs) =>
      gs.map((g) => ({
        start: Number(g.getAttribute('data-start')),
        end: Number(g.getAttribute('data-end')),
        kinds: g.getAttribute('data-kinds'),
        title: g.querySelector('title')?.textContent ?? '',
        width: (g as unknown as Measured).getBBox().width,
      })),
    );
    let end = 0;
    for (const s of segs) {
      assert.equal(s.start, end, 'segments tile the strip');
      assert.ok(s.width > 0);
      end = s.end;
    }
    assert.equal(end, 64 * 1024 * 1024);
    const pool = segs.find((s) => s.start === 0x2000000);
    assert.ok(pool, 'the pool starts a segment');
    assert.equal(pool.kinds, 'pmpool');
    assert.equal(pool.end, 0x2400000);
    assert.match(pool.title, /^\[0x2000000-0x23fffff\] 4 MiB: pmpool \(default\)$/);
    // Hover details: the detail line shows the segment under the pointer.
    await page.hover(`.seg[data-start="${0x2000000}"]`);
    assert.match((await page.textContent('#detail')) ?? '', /pmpool \(default\)/);
    // Every kind in the legend is drawn where it can be seen and hovered, a 4 KiB header too.
    for (const l of legend) {
      const seg = segs
        .filter((s) => s.kinds?.split(' ').includes(l.kind as string))
        .sort((a, b) => b.width - a.width)[0];
      assert.ok(seg, `no segment draws ${l.kind}`);
      if (l.kind === 'free') continue;
      assert.ok(seg.width >= MIN_SEGMENT_PX - 0.01, `${l.kind} is ${seg.width} px wide`);
      await page.hover(`.seg[data-start="${seg.start}"]`);
      const label = l.text?.trim().replace(/:.*/, '') ?? '';
      const shown = (await page.textContent('#detail')) ?? '';
      assert.ok(shown.includes(label), `hover ${l.kind}: ${shown} (${JSON.stringify(seg)})`);
    }
    const header = segs.find((s) => s.start === 0);
    assert.equal(header?.kinds, 'header', 'the header is a segment of its own');
    assert.match(
      (await page.textContent('.scale-note')) ?? '',
      new RegExp(
        `Not to scale: .* narrower than ${MIN_SEGMENT_PX} px is drawn ${MIN_SEGMENT_PX} px wide`,
      ),
    );
    mkdirSync(OUTPUT, { recursive: true });
    await page.screenshot({ path: join(OUTPUT, 'memory-map.png'), fullPage: true });
  } finally {
    await browser.close();
  }
});

test('map: a 64 GiB device with a million runs on 4 nodes is drawn with a bounded number of elements', () => {
  const GiB = 1024 ** 3;
  const size = 64 * GiB;
  const kinds: RunKind[] = ['free', 'allocated', 'kho', 'pkram'];
  const runs: MemoryRun[] = [];
  const step = size / 1_000_000;
  for (let i = 0; i < 1_000_000; i++) {
    runs.push({ base: i * step, size: step, kind: kinds[(i * 7) % 4] as RunKind });
  }
  runs[0] = { base: 0, size: step, kind: 'header' };
  runs[777_777] = { base: 777_777 * step, size: step, kind: 'status' };
  const nodes = [0, 1, 2, 3].map((n) => ({ base: n * 16 * GiB, size: 16 * GiB }));
  const svg = renderSvg({ size, nodes, runs }, { title: 't', subtitle: 's' });
  const rects = svg.match(/<rect /g)?.length ?? 0;
  // Per node: at most two segments per column, a rect per kind in each, plus the frame; a legend entry per kind.
  assert.ok(rects <= 4 * (2 * COLUMNS * kinds.length + 1) + 16, `${rects} rects`);
  assert.equal(svg.match(/class="node"/g)?.length, 4);
  // Gathered with hundreds of runs, the header and the status area still show in their columns, 4 px high or more.
  for (const kind of ['header', 'status'] as RunKind[]) {
    const seg = svg
      .split('<g class="seg" ')
      .find((g) => new RegExp(`data-kinds="[^"]*\\b${kind}\\b`).test(g));
    assert.ok(seg, `a segment holds ${kind}`);
    const height = Number(
      new RegExp(`height="([\\d.]+)" fill="${KIND_COLOR[kind]}"`).exec(seg)?.[1],
    );
    assert.ok(height >= 4, `${kind} drawn ${height} px high`);
  }
  // Mixed columns show their shares.
  assert.match(
    svg,
    /<title>\[0x[0-9a-f]+-0x[0-9a-f]+\] [\d.]+ MiB: allocated 25%, KHO preserved 25%, PKRAM 25%, free 25%<\/title>|<title>[^<]*25%/,
  );
});
