/**
 * A device file truncated under its owner by another process: a page of the
 * owner's mapping past the new end raises SIGBUS. Another process of the same
 * user cannot do it (the file is 0400 while owned); when it happens anyway
 * (root, or a user who chmods first) the owner puts the size back and says
 * so, and if it dies of it first, a sentinel says why on its stderr.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { removeDevice, tempDevice } from './_fixture.js';

const PROCESS_JS = fileURLToPath(new URL('../../src/process.js', import.meta.url));
const SIZE = 1024 * 1024;
const ROOT = process.getuid?.() === 0;
/** Another user for the owner and its neighbour when the test runs as root (modes do not stop root). */
const USER = ROOT ? { uid: 65534, gid: 65534 } : {};

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups) c();
});

let nodeForUser: string | null = null;
/**
 * The node the owner runs as `options`' user: this one, or a copy where that
 * user may run it (scripts/node-major.sh keeps the other Node.js lines under
 * root's home, which is 0700).
 */
function nodeFor(options: object): string {
  if (!ROOT || Object.keys(options).length === 0) return process.execPath;
  if (nodeForUser !== null) return nodeForUser;
  if (spawnSync(process.execPath, ['-e', ''], USER).error === undefined) {
    nodeForUser = process.execPath;
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'livekexec-node-'));
    chmodSync(dir, 0o755);
    const copy = join(dir, 'node');
    copyFileSync(process.execPath, copy);
    chmodSync(copy, 0o755);
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    nodeForUser = copy;
  }
  return nodeForUser;
}

interface Owner {
  child: ChildProcess;
  out: string[];
  err: () => string;
  /** Sends a line and waits for the owner's answer line. */
  ask(line: string, answer: RegExp): Promise<void>;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** A real process that boots the device and answers "ping"; "touch" reads its last page for 3 s without yielding. */
function owner(path: string, options: { uid?: number; gid?: number } = {}): Promise<Owner> {
  const src = `
    const { boot } = await import(${JSON.stringify(PROCESS_JS)});
    const k = await boot({ device: ${JSON.stringify(path)}, size: ${SIZE} });
    const dev = k.device;
    process.stdin.setEncoding('utf8');
    let buf = '';
    process.stdin.on('data', (d) => {
      buf += d;
      for (let i = buf.indexOf('\\n'); i >= 0; i = buf.indexOf('\\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line === 'ping') process.stdout.write('pong ' + dev.bytes(${SIZE - 4096}, 1)[0] + '\\n');
        if (line === 'touch') {
          process.stdout.write('touching\\n');
          const end = Date.now() + 3000;
          let sum = 0;
          while (Date.now() < end) sum += dev.bytes(${SIZE - 4096}, 1)[0];
          process.stdout.write('survived ' + sum + '\\n');
        }
      }
    });
    process.stdin.on('end', () => { dev.close(); process.exit(0); });
    // Past the sentinel's start, 200 ms after boot.
    setTimeout(() => process.stdout.write('ready\\n'), 500);`;
  const child = spawn(nodeFor(options), ['--input-type=module', '-e', src], {
    stdio: ['pipe', 'pipe', 'pipe'],
    ...options,
  });
  // A failed assertion must not leave an owner waiting on its stdin (the run would never end).
  cleanups.push(() => child.kill('SIGKILL'));
  const out: string[] = [];
  let err = '';
  let waiting: { re: RegExp; resolve: () => void } | null = null;
  let pending = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    pending += d;
    for (let i = pending.indexOf('\n'); i >= 0; i = pending.indexOf('\n')) {
      out.push(pending.slice(0, i));
      pending = pending.slice(i + 1);
      if (waiting?.re.test(out[out.length - 1])) {
        const w = waiting;
        waiting = null;
        w.resolve();
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  const wait = (re: RegExp): Promise<void> =>
    out.some((l) => re.test(l))
      ? Promise.resolve()
      : new Promise<void>((resolve, reject) => {
          waiting = { re, resolve };
          void done.then(() => reject(new Error(`owner ended before ${re}: ${err}`)));
        });
  const o: Owner = {
    child,
    out,
    err: () => err,
    done,
    ask: async (line, answer) => {
      child.stdin!.write(`${line}\n`);
      await wait(answer);
    },
  };
  return wait(/^ready$/).then(() => o);
}

test('another process of the same user cannot truncate an owned device: it is read-only while owned', async () => {
  const path = tempDevice('trunc-perm');
  cleanups.push(() => removeDevice(path));
  const o = await owner(path, USER);
  assert.equal(statSync(path).mode & 0o777, 0o400);
  const t = spawnSync('truncate', ['-s', '0', path], { encoding: 'utf8', ...USER });
  assert.notEqual(t.status, 0, 'truncate was refused');
  assert.match(t.stderr, /Permission denied/);
  assert.equal(statSync(path).size, SIZE);
  await o.ask('ping', /^pong /);
  o.child.stdin!.end();
  assert.deepEqual(await o.done, { code: 0, signal: null });
  assert.equal(statSync(path).mode & 0o777, 0o600, 'writable again once nobody owns it');
});

test('a device truncated anyway is put back to its size, and the owner says so and keeps serving', async () => {
  const path = tempDevice('trunc-restore');
  cleanups.push(() => removeDevice(path));
  const o = await owner(path);
  if (!ROOT) chmodSync(path, 0o600); // a user who means it
  truncateSync(path, 0);
  for (let i = 0; i < 100 && !/was truncated/.test(o.err()); i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.match(
    o.err(),
    new RegExp(
      `livekexec: ${path} was truncated from ${SIZE} to 0 bytes by another process while this process owns it; its size is restored`,
    ),
  );
  assert.equal(statSync(path).size, SIZE);
  await o.ask('ping', /^pong 0$/);
  o.child.stdin!.end();
  assert.deepEqual(await o.done, { code: 0, signal: null });
});

test('an owner killed by SIGBUS before it could put the size back is explained by its sentinel', async () => {
  const path = tempDevice('trunc-sigbus');
  cleanups.push(() => removeDevice(path));
  const o = await owner(path);
  await o.ask('touch', /^touching$/);
  if (!ROOT) chmodSync(path, 0o600);
  truncateSync(path, 4096);
  const end = await o.done;
  assert.equal(end.signal, 'SIGBUS');
  assert.match(
    o.err(),
    new RegExp(
      `livekexec: the owner of ${path} \\(PID ${o.child.pid}\\) is gone and ${path} is 4096 bytes, not the ${SIZE} it mapped: .*SIGBUS`,
    ),
  );
});
