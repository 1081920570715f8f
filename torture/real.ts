/**
 * The families that run real processes: a damaged pending handover resumed
 * by `livekexec kexec`, and SIGKILL at a random moment of a workload. Each
 * ends with a boot of the device by fixtures/successor.js and its check.
 */
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { trialBase } from '../src/kernel/boot-block-read.js';
import { PAGE_SIZE } from '../src/memory/device.js';
import { decodeDeviceHeader } from '../src/memory/header.js';
import { MappedDevice } from '../src/memory/mapped.js';
import { damage } from './damage.js';
import { type CaseResult, describeError, type Outcome, unacceptable } from './outcome.js';
import { metadataRegions, REGION_FAMILIES } from './regions.js';
import { hash32, Rng } from './rng.js';
import { DEVICE_SIZE, emptyManifest, type Manifest, USER_SUBTREES } from './scenario.js';
import { heldRanges, SLOT_SIZE, SLOTS } from './slots.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const CLI = join(HERE, '..', 'src', 'cli', 'main.js');
const fixture = (name: string) => join(HERE, 'fixtures', `${name}.js`);
/** The kill workloads, each a family of its own. */
export const KILL_MODES = ['pool', 'pkram', 'load', 'exec'] as const;
export type KillMode = (typeof KILL_MODES)[number];

interface Event {
  event: string;
  pid: number;
  [k: string]: unknown;
}

interface Run {
  events: Event[];
  stderr: string;
  code: number | null;
  signal: string | null;
  timedOut: boolean;
}

/**
 * Runs node with `args`; `onEvent` may return a promise of when to SIGKILL it.
 * Every process it started is the same PID (exec in place), killed on timeout.
 */
function run(
  args: string[],
  timeoutMs: number,
  onEvent?: (e: Event) => Promise<void> | undefined,
): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Run = { events: [], stderr: '', code: null, signal: null, timedOut: false };
    let buf = '';
    let killing = false;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let e: Event;
        try {
          e = JSON.parse(line) as Event;
        } catch {
          e = { event: 'text', pid: 0, line };
        }
        out.events.push(e);
        const when = killing ? undefined : onEvent?.(e);
        if (when) {
          killing = true;
          void when.then(() => child.kill('SIGKILL'));
        }
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      if (out.stderr.length < 20_000) out.stderr += d;
    });
    const timer = setTimeout(() => {
      out.timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      out.code = code;
      out.signal = signal;
      resolve(out);
    });
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A LivekexecError as the CLI prints it: `livekexec: CODE: detail`. */
const TYPED_LINE = /^livekexec: (E[A-Z0-9]+|FDT_ERR_[A-Z]+): /m;

/** What fixtures/successor.js said, or why it said nothing. */
function verdictOf(r: Run, what: string): { outcome: Outcome; detail: string } {
  const result = r.events.find((e) => e.event === 'result');
  if (result) return { outcome: result.outcome as Outcome, detail: String(result.detail ?? '') };
  if (r.timedOut) return { outcome: 'hang', detail: `${what} did not end` };
  if (r.code !== 0 && TYPED_LINE.test(r.stderr) && !/\n\s+at /.test(r.stderr))
    return { outcome: 'refused', detail: r.stderr.trim().split('\n')[0] };
  return {
    outcome: 'untyped',
    detail: `${what} exited ${r.code ?? r.signal}: ${r.stderr.trim().slice(-600)}`,
  };
}

function tempDir(): string {
  return mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'livekexec-torture-'));
}

/**
 * Boots `device` in a fresh process and checks it: `livekexec kexec` resumes
 * a pending handover (the successor's command line is the boot block's), else
 * successor.js boots it cold.
 */
async function bootAndCheck(
  device: string,
  manifestPath: string,
  pending: boolean,
  timeoutMs: number,
): Promise<Run> {
  const check = [fixture('successor'), device, manifestPath];
  return run(pending ? [CLI, 'kexec', '--device', device, '--', ...check] : check, timeoutMs);
}

/**
 * One case of the process-damage family: a real predecessor commits a
 * handover and stops; one fault goes into a metadata region of any family
 * (or the device file is truncated); `livekexec kexec` resumes it.
 */
export async function runProcessDamage(
  runSeed: number,
  index: number,
  timeoutMs: number,
): Promise<CaseResult> {
  const rng = new Rng(hash32(runSeed, 'process-damage', index));
  const dir = tempDir();
  const device = join(dir, 'device');
  const manifest = join(dir, 'manifest.json');
  try {
    const pre = await run([fixture('predecessor'), device, manifest, String(rng.u32())], timeoutMs);
    if (!pre.events.some((e) => e.event === 'pending') || !handoverPending(device))
      return {
        outcome: 'untyped',
        fault: 'none (the predecessor left no pending handover)',
        detail: verdictOf(pre, 'the predecessor').detail,
      };
    let fault: string;
    if (rng.chance(0.1)) {
      const pages = rng.int(1, DEVICE_SIZE / PAGE_SIZE - 1);
      truncateSync(device, pages * PAGE_SIZE);
      fault = `device file truncated to ${pages} pages`;
    } else {
      const dev = MappedDevice.open(device, { fillHoles: false });
      try {
        const regions = metadataRegions(dev, USER_SUBTREES);
        const families = REGION_FAMILIES.filter((f) => regions.some((r) => r.family === f));
        const family = rng.pick(families);
        fault = `${family}: ${damage(dev, rng.pick(regions.filter((r) => r.family === family)), rng)}`;
      } finally {
        dev.close();
      }
    }
    const r = await bootAndCheck(device, manifest, true, timeoutMs);
    return { ...verdictOf(r, 'livekexec kexec'), fault };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One case of a kill family: the workload runs, SIGKILL lands, the device is booted and checked. */
export async function runKill(
  mode: KillMode,
  runSeed: number,
  index: number,
  timeoutMs: number,
): Promise<CaseResult> {
  const rng = new Rng(hash32(runSeed, `kill-${mode}`, index));
  const dir = tempDir();
  const device = join(dir, 'device');
  writeFileSync(join(dir, 'slots'), Buffer.alloc(SLOTS * SLOT_SIZE));
  const chain = mode === 'exec' || mode === 'pkram';
  // A chain is killed from its first boot on; a loop once it loops.
  const delay = chain ? rng.int(0, 2500) : rng.int(0, 600);
  const startAt = chain ? 'boot' : 'looping';
  try {
    const work = await run(
      [fixture('workload'), device, dir, mode, String(rng.u32())],
      timeoutMs,
      (e) => (e.event === startAt ? sleep(delay) : undefined),
    );
    const last = work.events.at(-1);
    const fault = `kill -9 ${delay} ms after '${startAt}', last event '${last?.event ?? 'none'}'${
      last?.generation ? ` of generation ${last.generation}` : ''
    }`;
    for (const e of work.events) {
      if (e.event === 'checked' && unacceptable(e.outcome as Outcome))
        return {
          outcome: e.outcome as Outcome,
          fault,
          detail: `generation ${e.generation}: ${String(e.detail)}`,
        };
    }
    if (work.signal !== 'SIGKILL')
      return {
        outcome: work.timedOut ? 'hang' : 'untyped',
        fault,
        detail: verdictOf(work, 'the workload').detail,
      };
    const { path, pending } = checkManifest(device, dir, mode);
    const r = await bootAndCheck(device, path, pending, timeoutMs);
    return { ...verdictOf(r, 'the boot after the kill'), fault };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Whether `device` holds a committed handover no boot has taken yet. */
function handoverPending(device: string): boolean {
  const peek = MappedDevice.peek(device);
  return decodeDeviceHeader(peek.page0, peek.size, device).bootBlock !== 0;
}

/**
 * What the boot after a kill must find: a pending handover's manifest when
 * one was committed, else (a cold boot) only the pool's held ranges.
 */
function checkManifest(
  device: string,
  dir: string,
  mode: KillMode,
): { path: string; pending: boolean } {
  let generation = 0;
  let pending = false;
  try {
    const peek = MappedDevice.peek(device);
    const header = decodeDeviceHeader(peek.page0, peek.size, device);
    pending = header.bootBlock !== 0;
    // A generation killed on trial names itself in the header, but the pending block is its predecessor's.
    generation = pending ? trialBase(header, header.bootBlock).generation : header.generation;
  } catch (err) {
    // Killed before the device was whole: the boot will say what it makes of it.
    void describeError(err);
  }
  const manifests = readdirSync(dir)
    .map((f) => /^manifest-(\d+)\.json$/.exec(f))
    .filter((m) => m !== null)
    .map((m) => Number(m[1]));
  if (pending && manifests.includes(generation))
    return { path: join(dir, `manifest-${generation}.json`), pending };
  const base: Manifest =
    manifests.length > 0
      ? (JSON.parse(
          readFileSync(join(dir, `manifest-${Math.max(...manifests)}.json`), 'utf8'),
        ) as Manifest)
      : emptyManifest();
  const cold: Manifest = {
    ...emptyManifest(),
    pool: mode === 'pool' ? heldRanges(join(dir, 'slots')) : base.pool,
  };
  const path = join(dir, 'cold.json');
  writeFileSync(path, JSON.stringify(cold));
  return { path, pending };
}
