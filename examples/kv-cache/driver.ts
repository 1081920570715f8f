/**
 * The demo's driver: starts kv-cache as a child process on a fresh device,
 * fills it, keeps requests going against it from this process, upgrades it
 * in place a number of times and checks every upgrade (downtime seen by the
 * client, entries kept by checksum, PID unchanged, failed requests).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, unlinkSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32c } from 'livekexec/memory';

/** The compiled service, next to this file. */
export const SERVER_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'server.js');

export interface DemoOptions {
  /** In-place upgrades, to versions 2, 3, ... (default 3). */
  upgrades?: number;
  /** Keys filled before the first upgrade (default 5000). */
  keys?: number;
  /** Seed of the values (default 1). */
  seed?: number;
  /** Concurrent request loops during the upgrades (default 4). */
  workers?: number;
  /** Device size (default: sized from `keys`, see deviceSizeFor). */
  size?: string;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Aborting stops the run; the child and the device are cleaned up either way. */
  signal?: AbortSignal;
}

export interface UpgradeReport {
  from: number;
  to: number;
  /** The device generation that served after the upgrade. */
  generation: number;
  /** Last response from the old generation to the first from the new, as the client saw them. */
  downtimeMs: number;
  /** Keys filled before the upgrades, and those read back after it with the right checksum. */
  entries: number;
  entriesKept: number;
  /** Entries /stats counts: the filled keys and the loops' hot keys (checked by the loops as they go). */
  statsEntries: number;
  pid: number;
  pidUnchanged: boolean;
  /** Requests that failed (error or unexpected status) from the upgrade request to the end of the check. */
  failed: number;
  /** Responses with a value whose checksum was wrong, in the same window. */
  wrongValues: number;
  ok: boolean;
}

export interface DemoReport {
  ok: boolean;
  pid: number;
  port: number;
  device: string;
  keys: number;
  valueBytes: number;
  seed: number;
  upgrades: UpgradeReport[];
  requests: { total: number; failed: number; wrongValues: number };
  durationMs: number;
  /** Why the run is not ok, one line each. */
  problems: string[];
}

/** Fill keys per /kv-batch or /kv-mget request. */
const BATCH_KEYS = 1000;
/** Hot keys each load loop rewrites (fixed, so the entry count is known). */
const HOT_KEYS = 16;
const REQUEST_TIMEOUT_MS = 10_000;
const UPGRADE_TIMEOUT_MS = 15_000;

interface Reply {
  status: number;
  body: Buffer;
  version: number;
  generation: number;
  pid: number;
}

/** A small seeded generator (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** A value of 64 B..4 KiB from `rand`. */
export function makeValue(rand: () => number): Buffer {
  return fillValue((rand() * 2 ** 32) >>> 0, 0);
}

/**
 * The value of fill key `i` under `seed`, 64 B..4 KiB, made again on demand
 * (a million keys' values are never all held by the driver).
 */
export function fillValue(seed: number, i: number): Buffer {
  let x = mix(seed ^ Math.imul(i + 1, 0x9e3779b1)) | 1;
  const len = 64 + (mix(x) % (4096 - 64 + 1));
  const words = new Uint32Array(Math.ceil(len / 4));
  for (let w = 0; w < words.length; w++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[w] = x;
  }
  return Buffer.from(words.buffer, 0, len);
}

function mix(v: number): number {
  let h = Math.imul(v ^ (v >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Average bytes a fill key costs the device (value, key, record, table), with room to spare. */
const BYTES_PER_KEY = 2600;

/** The device size for `keys` fill keys: 64 MiB plus BYTES_PER_KEY each, in whole MiB. */
export function deviceSizeFor(keys: number): string {
  return `${64 + Math.ceil((keys * BYTES_PER_KEY) / 2 ** 20)}M`;
}

/** The running service as the client sees it, with counters over every request. */
class Client {
  total = 0;
  failed = 0;
  wrong = 0;
  readonly problems: string[] = [];
  /** Receipt times of the first and last response of each generation. */
  readonly firstAt = new Map<number, number>();
  readonly lastAt = new Map<number, number>();
  readonly pids = new Set<number>();
  #versionWaiters: { version: number; resolve: () => void }[] = [];
  #seen = new Set<number>();

  constructor(readonly port: number) {}

  /** One request on a new connection; null when it failed (counted). */
  async request(
    method: string,
    path: string,
    body?: Buffer,
    expect = [200],
  ): Promise<Reply | null> {
    this.total++;
    try {
      const r = await send(this.port, method, path, body);
      this.#record(r);
      if (!expect.includes(r.status)) {
        this.#fail(`${method} ${path}: status ${r.status}`);
        return null;
      }
      return r;
    } catch (err) {
      this.#fail(`${method} ${path}: ${err instanceof Error ? err.message : String(err)}`);
      return null;
    }
  }

  /** A value read back: true when its checksum is the expected one (a mismatch is counted). */
  check(key: string, r: Reply | null, crc: number, len: number): boolean {
    if (r === null) return false;
    if (r.body.length === len && crc32c(r.body) === crc) return true;
    this.#wrongValue(key, r.generation);
    return false;
  }

  /** Checks a /kv-mget answer for fill keys [from, to). @returns how many were right (the rest counted). */
  checkBatch(r: Reply, from: number, to: number, crc: Uint32Array, len: Uint16Array): number {
    let ok = 0;
    let p = 0;
    const body = r.body;
    for (let i = from; i < to; i++) {
      const n = p + 4 <= body.length ? body.readUInt32LE(p) : -1;
      p += 4;
      if (n === 0xffffffff || n < 0 || p + n > body.length) {
        this.#wrongValue(`key-${i}`, r.generation);
        continue;
      }
      if (n === len[i] && crc32c(body.subarray(p, p + n)) === crc[i]) ok++;
      else this.#wrongValue(`key-${i}`, r.generation);
      p += n;
    }
    return ok;
  }

  #wrongValue(key: string, generation: number): void {
    this.wrong++;
    if (this.problems.length < 20)
      this.problems.push(`${key}: wrong value from generation ${generation}`);
  }

  /** Resolves at the first response of `version`. */
  versionSeen(version: number): Promise<void> {
    if (this.#seen.has(version)) return Promise.resolve();
    return new Promise((resolve) => this.#versionWaiters.push({ version, resolve }));
  }

  #record(r: Reply): void {
    const t = performance.now();
    if (!this.firstAt.has(r.generation)) this.firstAt.set(r.generation, t);
    this.lastAt.set(r.generation, t);
    this.pids.add(r.pid);
    if (!this.#seen.has(r.version)) {
      this.#seen.add(r.version);
      this.#versionWaiters = this.#versionWaiters.filter((w) => {
        if (w.version === r.version) w.resolve();
        return w.version !== r.version;
      });
    }
  }

  #fail(line: string): void {
    this.failed++;
    if (this.problems.length < 20) this.problems.push(line);
  }
}

function send(port: number, method: string, path: string, body?: Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent: false,
        headers: body ? { 'content-length': body.length } : {},
        timeout: REQUEST_TIMEOUT_MS,
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('error', reject);
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(parts),
            version: Number(res.headers['x-version']),
            generation: Number(res.headers['x-generation']),
            pid: Number(res.headers['x-pid']),
          }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

/** A /kv-batch body with fill keys [from, to). */
function putBatch(seed: number, from: number, to: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = from; i < to; i++) {
    const key = Buffer.from(`key-${i}`);
    const v = fillValue(seed, i);
    const head = Buffer.alloc(6);
    head.writeUInt16LE(key.length, 0);
    head.writeUInt32LE(v.length, 2);
    parts.push(head, key, v);
  }
  return Buffer.concat(parts);
}

/** A /kv-mget body naming fill keys [from, to). */
function getBatch(from: number, to: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = from; i < to; i++) {
    const key = Buffer.from(`key-${i}`);
    const head = Buffer.alloc(2);
    head.writeUInt16LE(key.length, 0);
    parts.push(head, key);
  }
  return Buffer.concat(parts);
}

/** Runs `fn` over 0..n-1 with `width` loops at once. */
async function forEach(n: number, width: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const loop = async (): Promise<void> => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(width, n) }, loop));
}

/** The child: its ready lines and stderr. */
class Service {
  readonly child: ChildProcess;
  readonly ready: Record<string, unknown>[] = [];
  stderr = '';
  #waiters: (() => void)[] = [];
  exited = false;

  constructor(device: string, size: string) {
    this.child = spawn(
      process.execPath,
      [
        SERVER_SCRIPT,
        '--version',
        '1',
        '--device',
        device,
        '--size',
        size,
        '--port',
        '0',
        '--exit-with-stdin',
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let buf = '';
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (d: string) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const msg = JSON.parse(line) as Record<string, unknown>;
          if (msg.ready === true) this.ready.push(msg);
        } catch {
          // not ours
        }
        this.#wake();
      }
    });
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (d: string) => {
      this.stderr = (this.stderr + d).slice(-4000);
    });
    this.child.on('exit', () => {
      this.exited = true;
      this.#wake();
    });
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** The n-th ready line (1-based). @throws when the child exits or takes too long. */
  async readyLine(n: number, timeoutMs: number): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    while (this.ready.length < n) {
      if (this.exited) throw new Error(`kv-cache exited before serving: ${this.stderr.trim()}`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`kv-cache did not get ready in ${timeoutMs} ms: ${this.stderr.trim()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.ready[n - 1];
  }

  /** Stops the child: stdin closes (it exits), then SIGKILL if it lingers. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin?.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    await gone;
    clearTimeout(timer);
  }
}

/** A fresh device path on tmpfs (or in the temp directory). */
export function demoDevicePath(): string {
  const dir = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  return join(dir, `livekexec-demo-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
}

/**
 * Runs the demo and reports; never throws for a failed check (ok is false
 * and problems says why), only when the service cannot start.
 * @throws Error when kv-cache exits or does not get ready; AbortError when aborted.
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoReport> {
  const upgrades = options.upgrades ?? 3;
  const nKeys = options.keys ?? 5000;
  const seed = options.seed ?? 1;
  const workers = options.workers ?? 4;
  const log = options.log ?? (() => {});
  const signal = options.signal;
  const device = demoDevicePath();
  const started = performance.now();
  const service = new Service(device, options.size ?? deviceSizeFor(nKeys));
  let onAbort = (): void => {};
  // Rejects when the run is aborted (never settles otherwise).
  const aborted = new Promise<never>((_, reject) => {
    onAbort = (): void => {
      service.child.kill('SIGKILL');
      reject(signal?.reason);
    };
  });
  aborted.catch(() => {});
  signal?.addEventListener('abort', onAbort);
  try {
    signal?.throwIfAborted();
    const first = await service.readyLine(1, 15_000);
    const pid = Number(first.pid);
    const client = new Client(Number(first.port));
    log(`kv-cache version 1 serving on port ${client.port}, PID ${pid}, device ${device}`);

    // Fill: fixed keys never rewritten (checked after each upgrade) and hot keys the loops rewrite.
    // Fixed keys go in batches; their values are made again from the seed when checked.
    const expected = new Map<string, { crc: number; len: number }>();
    const fillCrc = new Uint32Array(nKeys);
    const fillLen = new Uint16Array(nKeys);
    let valueBytes = 0;
    for (let i = 0; i < nKeys; i++) {
      const v = fillValue(seed, i);
      fillCrc[i] = crc32c(v);
      fillLen[i] = v.length;
      valueBytes += v.length;
    }
    const hot: [string, Buffer][] = [];
    const rand = prng(seed);
    for (let w = 0; w < workers; w++) {
      for (let h = 0; h < HOT_KEYS; h++) hot.push([`hot-${w}-${h}`, makeValue(rand)]);
    }
    log(`filling ${nKeys} keys (${(valueBytes / 1e6).toFixed(1)} MB) and ${hot.length} hot keys`);
    const batches = Math.ceil(nKeys / BATCH_KEYS);
    let filled = 0;
    await forEach(batches, 4, async (b) => {
      const from = b * BATCH_KEYS;
      const to = Math.min(nKeys, from + BATCH_KEYS);
      if (await client.request('POST', '/kv-batch', putBatch(seed, from, to), [204]))
        filled += to - from;
    });
    if (filled !== nKeys) client.problems.push(`fill: ${nKeys - filled} keys not stored`);
    await forEach(hot.length, 8, async (i) => {
      const [key, v] = hot[i];
      if (await client.request('PUT', `/kv/${key}`, v, [204])) {
        expected.set(key, { crc: crc32c(v), len: v.length });
      }
    });
    signal?.throwIfAborted();

    // Load: each loop reads fixed keys and rewrites and reads its own hot keys.
    let stop = false;
    const loop = async (w: number): Promise<void> => {
      const r = prng(seed * 7919 + w + 1);
      while (!stop) {
        const x = r();
        if (x < 0.15) {
          const key = `hot-${w}-${Math.floor(r() * HOT_KEYS)}`;
          const v = makeValue(r);
          const ok = await client.request('PUT', `/kv/${key}`, v, [204]);
          // A failed write leaves the value unknown: it is no longer checked.
          if (ok) expected.set(key, { crc: crc32c(v), len: v.length });
          else expected.delete(key);
        } else {
          if (x < 0.3) {
            const key = `hot-${w}-${Math.floor(r() * HOT_KEYS)}`;
            const want = expected.get(key);
            const got = await client.request('GET', `/kv/${key}`);
            if (want) client.check(key, got, want.crc, want.len);
          } else {
            const i = Math.floor(r() * nKeys);
            const got = await client.request('GET', `/kv/key-${i}`);
            client.check(`key-${i}`, got, fillCrc[i], fillLen[i]);
          }
        }
      }
    };
    const loops = Array.from({ length: workers }, (_, w) => loop(w));

    const reports: UpgradeReport[] = [];
    try {
      for (let i = 0; i < upgrades; i++) {
        signal?.throwIfAborted();
        const from = i + 1;
        const to = i + 2;
        const failedBefore = client.failed;
        const wrongBefore = client.wrong;
        const accepted = await client.request(
          'POST',
          `/admin/upgrade?version=${to}`,
          undefined,
          [202],
        );
        let served = accepted !== null;
        if (served) {
          const timeout = new Promise<false>((resolve) => {
            const t = setTimeout(() => resolve(false), UPGRADE_TIMEOUT_MS);
            client.versionSeen(to).then(() => clearTimeout(t));
          });
          served = await Promise.race([client.versionSeen(to).then(() => true), timeout, aborted]);
        }
        if (!served) {
          client.problems.push(`upgrade ${from} -> ${to}: version ${to} never answered`);
          reports.push(failedUpgrade(from, to, nKeys, pid, client, failedBefore, wrongBefore));
          break;
        }
        // Every fixed key, read back from the new version (in batches).
        let kept = 0;
        await forEach(batches, 4, async (b) => {
          const from = b * BATCH_KEYS;
          const to = Math.min(nKeys, from + BATCH_KEYS);
          const got = await client.request('POST', '/kv-mget', getBatch(from, to));
          if (got !== null) kept += client.checkBatch(got, from, to, fillCrc, fillLen);
        });
        const stats = await client.request('GET', '/stats');
        const s = stats ? parseStats(stats.body) : {};
        const generation = Number(s.generation ?? 0);
        const lastOld = client.lastAt.get(generation - 1) ?? Number.NaN;
        const firstNew = client.firstAt.get(generation) ?? Number.NaN;
        const fixedKept = kept === nKeys;
        const report: UpgradeReport = {
          from,
          to,
          generation,
          downtimeMs: Math.max(0, round(firstNew - lastOld)),
          entries: nKeys,
          entriesKept: kept,
          statsEntries: Number(s.entries ?? 0),
          pid: Number(s.pid ?? 0),
          pidUnchanged: Number(s.pid) === pid && client.pids.size === 1 && client.pids.has(pid),
          failed: client.failed - failedBefore,
          wrongValues: client.wrong - wrongBefore,
          ok: false,
        };
        report.ok =
          fixedKept &&
          report.statsEntries === nKeys + workers * HOT_KEYS &&
          report.pidUnchanged &&
          Number(s.version) === to &&
          report.failed === 0 &&
          report.wrongValues === 0;
        reports.push(report);
        if (report.statsEntries !== nKeys + workers * HOT_KEYS) {
          client.problems.push(
            `upgrade ${from} -> ${to}: /stats counts ${report.statsEntries} entries, expected ${nKeys + workers * HOT_KEYS}`,
          );
        }
        log(
          `upgrade ${from} -> ${to}: downtime ${report.downtimeMs} ms, ${report.entriesKept}/${report.entries} entries kept, PID ${report.pid}, ${report.failed} failed`,
        );
        if (!report.ok) break;
      }
    } finally {
      stop = true;
      await Promise.all(loops);
    }

    // An interrupted run has nothing to report.
    signal?.throwIfAborted();
    const problems = [...client.problems];
    if (reports.length < upgrades) problems.push(`${reports.length} of ${upgrades} upgrades done`);
    for (const r of reports) {
      if (!r.ok && !problems.some((p) => p.startsWith(`upgrade ${r.from} -> ${r.to}`))) {
        problems.push(`upgrade ${r.from} -> ${r.to}: ${describeFailure(r)}`);
      }
    }
    const readyPids = service.ready.map((r) => Number(r.pid));
    if (readyPids.some((p) => p !== pid))
      problems.push(`a generation served from another PID: ${readyPids.join(', ')}`);
    if (client.failed > 0) problems.push(`${client.failed} failed requests`);
    if (client.wrong > 0) problems.push(`${client.wrong} wrong values`);
    return {
      ok: problems.length === 0 && reports.length === upgrades && reports.every((r) => r.ok),
      pid,
      port: client.port,
      device,
      keys: nKeys,
      valueBytes,
      seed,
      upgrades: reports,
      requests: { total: client.total, failed: client.failed, wrongValues: client.wrong },
      durationMs: round(performance.now() - started),
      problems,
    };
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await service.stop();
    try {
      unlinkSync(device);
    } catch {
      // never created
    }
  }
}

function failedUpgrade(
  from: number,
  to: number,
  entries: number,
  pid: number,
  client: Client,
  failedBefore: number,
  wrongBefore: number,
): UpgradeReport {
  return {
    from,
    to,
    generation: 0,
    downtimeMs: Number.NaN,
    entries,
    entriesKept: 0,
    statsEntries: 0,
    pid,
    pidUnchanged: false,
    failed: client.failed - failedBefore,
    wrongValues: client.wrong - wrongBefore,
    ok: false,
  };
}

function describeFailure(r: UpgradeReport): string {
  const why: string[] = [];
  if (r.entriesKept !== r.entries) why.push(`${r.entriesKept}/${r.entries} entries kept`);
  if (!r.pidUnchanged) why.push('the PID changed');
  if (r.failed > 0) why.push(`${r.failed} failed requests`);
  if (r.wrongValues > 0) why.push(`${r.wrongValues} wrong values`);
  return why.join(', ') || `version ${r.to} not reported by /stats`;
}

function parseStats(body: Buffer): Record<string, number> {
  try {
    return JSON.parse(body.toString('utf8')) as Record<string, number>;
  } catch {
    return {};
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
