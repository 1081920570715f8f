/**
 * The honest in-place test: a Node process preserves its HTTP listener and
 * execve's its successor through koffi. Same PID, same port, the state in a
 * memfd carried over, and under continuous load not one connection refused
 * or request failed.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { lines } from './_lines.js';

const HERE = dirname(fileURLToPath(import.meta.url));

function get(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

async function startGen1(): Promise<{
  child: ChildProcess;
  port: number;
  out: ReturnType<typeof lines>;
}> {
  const child = spawn(process.execPath, [join(HERE, '_gen1.js')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const out = lines(child.stdout!);
  const { port, pid } = JSON.parse(await out.next());
  assert.equal(pid, child.pid);
  return { child, port, out };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
}

test('execve in place: same PID, same port, memfd state carried over', async () => {
  const { child, port, out } = await startGen1();
  try {
    assert.equal(await get(port), `gen1 ${child.pid}`);
    assert.equal(await get(port), `gen1 ${child.pid}`);
    child.kill('SIGUSR2');
    const report = JSON.parse(await out.next());
    assert.deepEqual(report, { gen: 2, pid: child.pid, served: 2 });
    assert.equal(await get(port), `gen2 ${child.pid}`);
    assert.equal(child.exitCode, null);
  } finally {
    await stop(child);
  }
});

test('under continuous load the handover refuses no connection and fails no request', async () => {
  const { child, port, out } = await startGen1();
  const tally = { gen1: 0, gen2: 0, refused: 0, failed: 0 };
  const errors: string[] = [];
  let upgraded = false;
  out.next().then(() => {
    upgraded = true;
  });
  try {
    // Bounded: stop 200 requests after generation 2 answered first, or at 20000.
    let signalled = false;
    for (let i = 0; i < 20000 && tally.gen2 < 200; i++) {
      if (!signalled && tally.gen1 >= 50) {
        child.kill('SIGUSR2');
        signalled = true;
      }
      try {
        const body = await get(port);
        if (body === `gen1 ${child.pid}`) tally.gen1++;
        else if (body === `gen2 ${child.pid}`) tally.gen2++;
        else {
          tally.failed++;
          errors.push(`body ${JSON.stringify(body)}`);
        }
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ECONNREFUSED') tally.refused++;
        else tally.failed++;
        errors.push(String(code ?? e));
      }
    }
    assert.deepEqual(errors, []);
    assert.equal(tally.refused, 0);
    assert.equal(tally.failed, 0);
    assert.ok(tally.gen1 >= 50, JSON.stringify(tally));
    assert.equal(tally.gen2, 200, JSON.stringify(tally));
    assert.equal(upgraded, true);
  } finally {
    await stop(child);
  }
});
