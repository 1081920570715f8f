/**
 * `livekexec status`, `iomem` and `metrics` on a device a real process
 * runs on (read in place, without its lock), after an in-place upgrade,
 * after a failed one, and at rest.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runCli } from '../_helpers/cli.js';
import { fixture } from '../_helpers/paths.js';
import { lines } from '../luo/_lines.js';

const dir = mkdtempSync(join(tmpdir(), 'livekexec-status-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Served {
  child: ChildProcess;
  next(): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

async function serve(device: string, mode = ''): Promise<Served> {
  const child = spawn(process.execPath, [fixture('process', 'status-serve.mjs'), device, mode], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const out = lines(child.stdout as NonNullable<typeof child.stdout>);
  const next = async () => JSON.parse(await out.next()) as Record<string, unknown>;
  return {
    child,
    next,
    stop: async () => {
      child.stdin?.end();
      if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
    },
  };
}

// biome-ignore lint/suspicious/noExplicitAny: the CLI's JSON, checked field by field below
function statusJson(args: string[]): Record<string, any> {
  const r = runCli(['status', ...args, '--json']);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test('status: a running generation, read without its lock: subsystems, sessions, uptime, owner', async () => {
  const device = join(dir, 'live');
  const s = await serve(device);
  try {
    const ready = await s.next();
    const j = statusJson(['--device', device]);
    assert.equal(j.live, true);
    assert.equal(j.owner, ready.pid);
    assert.equal(j.generation, 1);
    assert.ok(j.uptimeMs >= 0 && j.uptimeMs < 60_000);
    const st = j.status;
    assert.equal(st.bootKind, 'cold');
    assert.deepEqual(st.pkram.nodes, ['index']);
    assert.equal(st.pmpools[0].base, 0x2000000);
    assert.equal(st.pmpools[0].usedPages > 0, true);
    assert.deepEqual(
      st.reserveMem.map((r: { name: string }) => r.name),
      ['trace'],
    );
    assert.equal(st.kho.preservedBlocks >= 1, true);
    assert.equal(st.luo.sessions[0].name, 'web');
    assert.match(st.luo.sessions[0].files[0].description, /^tcp 127\.0\.0\.1:\d+$/);
    assert.equal(j.layoutSource, 'published');
    // --pid finds the same device through the process's descriptors.
    assert.equal(statusJson(['--pid', String(ready.pid)]).path, device);
    const text = runCli(['status', '--device', device]);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /^generation +1 \(cold boot\), PID \d+, up /m);
    assert.match(text.stdout, /^luo +session web \(outgoing\), 1 descriptors$/m);
    assert.match(text.stdout, /^pmpool +default \[0x2000000, \+4 MiB\] \d+ of 1024 pages used$/m);
    // --watch prints again, --count bounds it.
    const watch = runCli([
      'status',
      '--device',
      device,
      '--watch',
      '--interval',
      '50',
      '--count',
      '2',
    ]);
    assert.equal(watch.status, 0, watch.stderr);
    assert.equal(watch.stdout.match(/^device /gm)?.length, 2);
    // iomem: the map's ranges with their users nested, as /proc/iomem.
    const iomem = runCli(['iomem', '--device', device]);
    assert.equal(iomem.status, 0, iomem.stderr);
    assert.match(
      iomem.stdout,
      /^00000000-00000fff : reserved\n {2}00000000-00000fff : device header$/m,
    );
    assert.match(
      iomem.stdout,
      /^02000000-023fffff : reserved by kernel\n {2}02000000-023fffff : pmpool default$/m,
    );
    assert.match(iomem.stdout, /^ {2}[0-9a-f]{8}-[0-9a-f]{8} : livekexec status$/m);
    assert.match(iomem.stdout, /^ {2}[0-9a-f]{8}-[0-9a-f]{8} : reserve_mem trace$/m);
    assert.match(iomem.stdout, /^ {2}[0-9a-f]{8}-[0-9a-f]{8} : PKRAM$/m);
    const metrics = runCli(['metrics', '--device', device]);
    assert.equal(metrics.status, 0, metrics.stderr);
    assert.match(
      metrics.stdout,
      /^livekexec_luo_descriptors\{session="web",direction="outgoing"\} 1$/m,
    );
  } finally {
    await s.stop();
  }
});

test('status: after an in-place upgrade it shows the handover, its downtime, and the new generation', async () => {
  const device = join(dir, 'upgraded');
  const s = await serve(device);
  try {
    const first = await s.next();
    s.child.stdin?.write('upgrade\n');
    const second = await s.next();
    assert.equal(second.pid, first.pid);
    assert.equal(second.kind, 'kexec');
    const j = statusJson(['--device', device]);
    assert.equal(j.live, true);
    assert.equal(j.generation, 2);
    const h = j.status.handover;
    assert.equal(h.handovers, 1);
    assert.equal(h.last.outcome, 'ok');
    assert.equal(h.last.way, 'in-place');
    // From the exec to the successor's boot: node's start is in it, so more than a millisecond.
    assert.ok(h.last.downtimeUs > 1000 && h.last.downtimeUs < 60e6, String(h.last.downtimeUs));
    assert.equal(j.status.luo.sessions[0].direction, 'incoming');
    const text = runCli(['status', '--device', device]).stdout;
    assert.match(text, /^handover +last: ok, in-place, generation 1 -> 2, downtime [\d.]+ ms, /m);
  } finally {
    await s.stop();
  }
  // At rest: no owner; the last status is shown as the last run's.
  const rest = statusJson(['--device', device]);
  assert.equal(rest.live, false);
  assert.equal(rest.owner, null);
  assert.equal(rest.status.generation, 2);
  assert.equal(rest.layoutSource, 'device map');
  assert.match(runCli(['status', '--device', device]).stdout, /^generation +2, not running$/m);
});

test('status: a failed exec is counted and its reason shown, and the generation goes on', async () => {
  const device = join(dir, 'failed');
  const s = await serve(device, 'fail');
  try {
    await s.next();
    s.child.stdin?.write('upgrade\n');
    const failed = await s.next();
    assert.equal(failed.event, 'exec-failed');
    const j = statusJson(['--device', device]);
    assert.equal(j.live, true);
    assert.equal(j.generation, 1);
    assert.equal(j.status.handover.failed, 1);
    assert.equal(j.status.handover.last.outcome, 'failed');
    assert.match(j.status.handover.last.reason, /nonexistent/);
    assert.match(
      runCli(['metrics', '--device', device]).stdout,
      /^livekexec_handovers_failed_total 1$/m,
    );
  } finally {
    await s.stop();
  }
});

test('status: usage errors and a file that is no device', () => {
  const none = runCli(['status']);
  assert.equal(none.status, 2);
  assert.match(none.stderr, /exactly one of --device PATH and --pid PID/);
  const bad = runCli(['status', '--pid', 'x']);
  assert.equal(bad.status, 2);
  const missing = runCli(['status', '--device', join(dir, 'nothing')]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /^livekexec: .*nothing: no such device file/m);
  const noproc = runCli(['iomem', '--pid', '999999999']);
  assert.equal(noproc.status, 1);
  assert.match(noproc.stderr, /no process 999999999/);
});
