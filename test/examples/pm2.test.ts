/**
 * examples/ops under pm2 (the devDependency, pinned), as README "Operations"
 * says: started by `pm2 start`, upgraded in place by `pm2 sendSignal SIGHUP`
 * (same PID, pm2 counts no restart, the count and the socket kept), a broken
 * release falling back in place, and `pm2 reload` / `pm2 restart` carrying
 * the memory across a restart handover. The pm2 daemon runs in a private
 * PM2_HOME and is killed at the end.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../_helpers/paths.js';
import { removeDevice, running, tempDevice } from '../process/_fixture.js';
import { freePort, requestLoop } from '../process/_load.js';

const PM2 = join(REPO_ROOT, 'node_modules', 'pm2', 'bin', 'pm2');
const home = mkdtempSync(join(tmpdir(), 'livekexec-pm2-'));
const env: NodeJS.ProcessEnv = { ...process.env, PM2_HOME: join(home, 'pm2') };
delete env.NOTIFY_SOCKET;
const device = tempDevice('pm2');
const ops = join(home, 'ops');

after(() => {
  spawnSync(process.execPath, [PM2, 'kill'], { env, timeout: 60_000 });
  const pidFile = join(home, 'pm2', 'pm2.pid');
  const daemon = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : 0;
  if (daemon > 0 && running(daemon)) process.kill(daemon, 'SIGKILL');
  rmSync(home, { recursive: true, force: true });
  removeDevice(device);
});

/** Runs the pm2 CLI in the private PM2_HOME (asynchronously: the test's request loops run meanwhile). */
async function pm2(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [PM2, ...args], { env, timeout: 60_000 });
  return stdout;
}
const run = promisify(execFile);

/** What pm2 says of the app: its PID, restart count and status. */
async function described(): Promise<{ pid: number; restarts: number; status: string }> {
  const list = JSON.parse(await pm2('jlist')) as {
    name: string;
    pid: number;
    pm2_env: { restart_time: number; status: string };
  }[];
  const app = list.find((p) => p.name === 'ops');
  assert.ok(app, 'pm2 lists the app');
  return { pid: app.pid, restarts: app.pm2_env.restart_time, status: app.pm2_env.status };
}

/** GET / once it answers matching `pattern` (examples/ops/get.mjs); returns the body. */
async function answer(port: number, pattern: string): Promise<string> {
  const get = join(REPO_ROOT, 'examples', 'ops', 'get.mjs');
  // get.mjs gives up after 20 s, unless a connection hangs (a socket nobody accepts on).
  const { stdout } = await run(process.execPath, [get, String(port), pattern], { timeout: 30_000 });
  return stdout.trim();
}

const hits = (body: string) => Number(/hits (\d+)$/.exec(body)?.[1]);

/** Release `v` beside the others (its node_modules a link to this checkout), `current` flipped to it. */
function deploy(v: number, version = `export const VERSION = ${v};`): void {
  const dir = join(ops, 'releases', `v${v}`);
  mkdirSync(join(dir, 'node_modules'), { recursive: true });
  cpSync(join(REPO_ROOT, 'examples', 'ops'), dir, { recursive: true });
  writeFileSync(join(dir, 'version.mjs'), `${version}\n`);
  symlinkSync(REPO_ROOT, join(dir, 'node_modules', 'livekexec'));
  rmSync(join(ops, 'current'), { force: true });
  symlinkSync(join('releases', `v${v}`), join(ops, 'current'));
}

test('pm2: an app started by pm2 start upgrades in place (same PID, no pm2 restart, count and socket kept, no request refused), a broken release falls back in place, pm2 reload and pm2 restart hand the memory over', {
  timeout: 240_000,
}, async () => {
  const port = await freePort();
  deploy(1);
  await pm2(
    'start',
    join(ops, 'current', 'service.mjs'),
    '--name',
    'ops',
    '--',
    device,
    String(port),
  );
  let body = await answer(port, '^version 1, generation 1,');
  const started = await described();
  assert.equal(started.status, 'online');
  const pid = started.pid;

  /**
   * Runs `action` under load until the app answers matching `pattern`;
   * every request between counted once: the count went across.
   */
  const underLoad = async (action: () => Promise<unknown>, pattern: string) => {
    const before = hits(body);
    const traffic = requestLoop(port, 2);
    let counted: { ok: number; failed: string[] };
    try {
      await new Promise((r) => setTimeout(r, 200));
      await action();
      await answer(port, pattern);
    } finally {
      counted = await traffic.stop();
    }
    body = await answer(port, pattern);
    assert.ok(counted.ok > 0);
    assert.ok(
      hits(body) >= before + counted.ok + 2,
      `the count went across: ${before} before, ${counted.ok} served meanwhile, now ${body}`,
    );
    return counted;
  };
  const sameProcess = { pid, restarts: 0, status: 'online' };

  // In place: pm2 sendSignal SIGHUP (what README's `kill -HUP` is under pm2).
  let counted = await underLoad(async () => {
    deploy(2);
    await pm2('sendSignal', 'SIGHUP', 'ops');
  }, '^version 2, generation 2,');
  assert.deepEqual(counted.failed, [], 'no request refused across the in-place upgrade');
  assert.deepEqual(await described(), sameProcess, 'pm2 sees the same PID, never restarted');

  // A release that cannot load: pm2 logs the import's rejection and keeps
  // the process; the try fails all the same and v2 comes back in place.
  counted = await underLoad(async () => {
    deploy(3, 'export const VERSION = ;');
    await pm2('sendSignal', 'SIGHUP', 'ops');
  }, '^version 2, generation 3,');
  assert.deepEqual(counted.failed, [], 'no request refused while v3 failed and v2 came back');
  assert.deepEqual(await described(), sameProcess);
  const log = readFileSync(join(home, 'pm2', 'logs', 'ops-error.log'), 'utf8');
  assert.match(
    log,
    /try 2 of 2 failed \(.*SyntaxError.*\); falling back to .*releases\/v2\/service\.mjs/,
  );

  // The next release deploys on top of the fallback.
  counted = await underLoad(async () => {
    deploy(4);
    await pm2('sendSignal', 'SIGHUP', 'ops');
  }, '^version 4, generation 4,');
  assert.deepEqual(counted.failed, []);
  assert.deepEqual(await described(), sameProcess);

  // pm2 reload (in fork mode a restart) and pm2 restart: SIGINT, a restart
  // handover, a new process booting as the successor. pm2 keeps no socket:
  // connections in the gap are refused; one that reached the listen backlog
  // just before the server closed is reset by the kernel (Linux resets what
  // was never accepted), at most one per request loop; none accepted is cut.
  let generation = 4;
  for (const command of ['reload', 'restart']) {
    const before = await described();
    counted = await underLoad(() => pm2(command, 'ops'), `^version 4, generation ${++generation},`);
    const now = await described();
    assert.notEqual(now.pid, before.pid, `pm2 ${command} started another process`);
    assert.equal(now.restarts, before.restarts + 1);
    assert.equal(now.status, 'online');
    const refused = counted.failed.filter((f) => f === 'ECONNREFUSED').length;
    const reset = counted.failed.filter((f) => f === 'ECONNRESET').length;
    assert.equal(
      refused + reset,
      counted.failed.length,
      `only refused or reset: ${counted.failed.join(', ')}`,
    );
    assert.ok(reset <= 2, `at most one reset per request loop, got ${reset}`);
    console.log(
      `pm2 ${command}: ${counted.ok} served, ${refused} refused and ${reset} reset in the restart's gap`,
    );
  }
});
