import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statfsSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { PAGE_SIZE } from '../../src/memory/device.js';
import { DeviceError } from '../../src/memory/errors.js';
import { MappedDevice } from '../../src/memory/mapped.js';

const BASE = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
const DIR = mkdtempSync(join(BASE, 'livekexec-mapped-'));
const MAPPED_JS = new URL('../../src/memory/mapped.js', import.meta.url).href;
after(() => rmSync(DIR, { recursive: true, force: true }));

let n = 0;
function fresh(): string {
  return join(DIR, `dev${n++}`);
}

function code(c: string) {
  return (err: unknown) => err instanceof DeviceError && err.code === c;
}

/** Runs an ESM snippet in a child node with `MappedDevice` in scope; returns its stdout. */
function child(
  body: string,
  extra: { stdio?: unknown } = {},
): { status: number | null; out: string; err: string } {
  const src = `import { MappedDevice } from ${JSON.stringify(MAPPED_JS)};\n${body}`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', src], {
    encoding: 'utf8',
    timeout: 30_000,
    ...(extra as object),
  });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

test('mapped: create makes a file read-only while owned (0400) and 0600 at rest, preallocated, with the asked size', () => {
  const p = fresh();
  const progress: number[] = [];
  const d = MappedDevice.open(p, {
    create: true,
    exclusive: true,
    size: 1 << 20,
    chunkSize: 256 * 1024,
    onProgress: (done) => progress.push(done),
  });
  const st = statSync(p);
  assert.equal(
    st.mode & 0o777,
    0o400,
    'no process may open it for writing or truncate it while owned',
  );
  assert.equal(st.size, 1 << 20);
  assert.ok(st.blocks * 512 >= st.size, `allocated ${st.blocks * 512} of ${st.size}`);
  assert.deepEqual(progress, [262144, 524288, 786432, 1048576]);
  assert.equal(d.size, 1 << 20);
  assert.equal(d.pages, 256);
  assert.equal(d.ownedForLife, true, 'its kernel lives as long as this process');
  assert.equal(
    d.bytes(0, PAGE_SIZE).every((b) => b === 0),
    true,
  );
  d.close();
  assert.equal(statSync(p).mode & 0o777, 0o600, 'its user may write it again once nobody owns it');
});

test('mapped: an existing sparse file is filled before it is mapped', () => {
  const p = fresh();
  writeFileSync(p, '', { mode: 0o600 });
  truncateSync(p, 64 * PAGE_SIZE);
  assert.ok(statSync(p).blocks * 512 < 64 * PAGE_SIZE);
  const d = MappedDevice.open(p);
  assert.ok(statSync(p).blocks * 512 >= 64 * PAGE_SIZE);
  assert.equal(d.size, 64 * PAGE_SIZE);
  d.close();
});

test('mapped: data written and closed is seen by another process, and back', () => {
  const p = fresh();
  const d = MappedDevice.open(p, { create: true, size: 16 * PAGE_SIZE });
  d.bytes(3 * PAGE_SIZE + 7, 5).set([10, 20, 30, 40, 50]);
  d.view(15 * PAGE_SIZE, 8).setBigUint64(0, 0xdeadbeefn, true);
  d.flush(0, d.size);
  d.close();
  const r = child(`
    const d = MappedDevice.open(${JSON.stringify(p)});
    process.stdout.write(JSON.stringify([...d.bytes(${3 * PAGE_SIZE + 7}, 5)]) + ' ' + d.view(${15 * PAGE_SIZE}, 8).getBigUint64(0, true));
    d.bytes(0, 3).set([7, 8, 9]);
    d.close();
  `);
  assert.equal(r.status, 0, r.err);
  assert.equal(r.out, '[10,20,30,40,50] 3735928559');
  const e = MappedDevice.open(p);
  assert.deepEqual([...e.bytes(0, 3)], [7, 8, 9]);
  e.close();
});

test('mapped: windows are not charged to V8 as external memory (so mapping one runs no garbage collection)', () => {
  const p = fresh();
  const size = 128 * 2 ** 20;
  const before = process.memoryUsage().external;
  const d = MappedDevice.open(p, { create: true, size });
  d.bytes(size - 8, 8).fill(7);
  d.flush(size - PAGE_SIZE, PAGE_SIZE);
  assert.ok(process.memoryUsage().external - before < 16 * 2 ** 20);
  d.close();
  // Closing dropped the file from the window's memory, and the lock with it.
  const e = MappedDevice.open(p);
  assert.deepEqual([...e.bytes(size - 8, 8)], [7, 7, 7, 7, 7, 7, 7, 7]);
  e.close();
});

test('mapped: without WebAssembly a window is a plain mapping, and behaves the same', () => {
  const p = fresh();
  // Collected first, and half the size is enough: garbage from loading the modules, freed
  // during the open (later under load), would otherwise hide a charge of the whole size.
  const src = `import { MappedDevice } from ${JSON.stringify(MAPPED_JS)};
    globalThis.gc();
    const before = process.memoryUsage().external;
    const d = MappedDevice.open(${JSON.stringify(p)}, { create: true, size: ${64 * PAGE_SIZE} });
    d.bytes(${63 * PAGE_SIZE}, 3).set([1, 2, 3]);
    d.flush(0, d.size);
    const charged = process.memoryUsage().external - before >= d.size / 2;
    d.close();
    const e = MappedDevice.open(${JSON.stringify(p)});
    process.stdout.write(typeof WebAssembly + ' ' + charged + ' ' + [...e.bytes(${63 * PAGE_SIZE}, 3)]);
    e.close();`;
  const r = spawnSync(
    process.execPath,
    ['--jitless', '--expose-gc', '--input-type=module', '-e', src],
    {
      encoding: 'utf8',
      timeout: 30_000,
    },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'undefined true 1,2,3');
});

/** This process's inotify instances. */
function inotifyInstances(): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:inotify';
    } catch {
      return false; // closed since the listing
    }
  }).length;
}

test('mapped: the truncation guard puts a shrunk file back without an inotify instance (closing one at execve waits for an SRCU grace period, in the downtime)', async () => {
  const before = inotifyInstances();
  const path = fresh();
  const d = MappedDevice.open(path, { create: true, size: 4 * PAGE_SIZE });
  const shrinks: { found: number; restored: boolean }[] = [];
  try {
    d.guardTruncation((s) => shrinks.push(s));
    assert.equal(inotifyInstances(), before);
    chmodSync(path, 0o600); // the owner's own 0400 stops no one who means it
    truncateSync(path, PAGE_SIZE);
    for (let i = 0; i < 100 && shrinks.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(
      shrinks.map((s) => [s.found, s.restored]),
      [[PAGE_SIZE, true]],
    );
    assert.equal(statSync(path).size, 4 * PAGE_SIZE);
  } finally {
    d.close();
  }
});

test('mapped: a symlink is refused with ELOOP', () => {
  const target = fresh();
  MappedDevice.open(target, { create: true, size: PAGE_SIZE }).close();
  const link = fresh();
  symlinkSync(target, link);
  assert.throws(
    () => MappedDevice.open(link),
    (e: unknown) => code('ELOOP')(e) && /symlink/.test((e as Error).message),
  );
  assert.throws(() => MappedDevice.open(link, { create: true, size: PAGE_SIZE }), code('ELOOP'));
  assert.throws(() => MappedDevice.peek(link), code('ELOOP'));
});

test('mapped: group- or world-writable files are refused with EPERM', () => {
  for (const mode of [0o620, 0o602, 0o666]) {
    const p = fresh();
    MappedDevice.open(p, { create: true, size: PAGE_SIZE }).close();
    chmodSync(p, mode);
    assert.throws(
      () => MappedDevice.open(p),
      (e: unknown) => code('EPERM')(e) && /writable/.test((e as Error).message),
    );
  }
});

test('mapped: a file owned by another user is refused with EPERM', (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('needs root to give a file to another user');
    return;
  }
  const p = fresh();
  MappedDevice.open(p, { create: true, size: PAGE_SIZE }).close();
  chownSync(p, 65534, 65534);
  assert.throws(
    () => MappedDevice.open(p),
    (e: unknown) => code('EPERM')(e) && /owned by uid 65534/.test((e as Error).message),
  );
});

test('mapped: missing file, existing file with exclusive, bad sizes', () => {
  const p = fresh();
  assert.throws(() => MappedDevice.open(p), code('ENOENT'));
  assert.throws(() => MappedDevice.open(p, { create: true }), code('EINVAL'));
  assert.throws(() => MappedDevice.open(p, { create: true, size: 1000 }), code('EINVAL'));
  assert.equal(existsSync(p), false);
  MappedDevice.open(p, { create: true, size: 2 * PAGE_SIZE }).close();
  assert.throws(
    () => MappedDevice.open(p, { create: true, exclusive: true, size: PAGE_SIZE }),
    code('EEXIST'),
  );
  const grown = MappedDevice.open(p, { size: 4 * PAGE_SIZE });
  assert.equal(grown.size, 4 * PAGE_SIZE, 'a smaller device grows to the size asked');
  grown.close();
  assert.throws(
    () => MappedDevice.open(p, { size: 2 * PAGE_SIZE }),
    code('EINVAL'),
    'never shrinks',
  );
  const odd = fresh();
  writeFileSync(odd, 'x'.repeat(100), { mode: 0o600 });
  assert.throws(() => MappedDevice.open(odd), code('EINVAL'));
  const empty = fresh();
  writeFileSync(empty, '', { mode: 0o600 });
  assert.throws(() => MappedDevice.open(empty), code('EINVAL'));
});

test('mapped: a second open in the same process is busy, naming this PID', () => {
  const p = fresh();
  const d = MappedDevice.open(p, { create: true, size: PAGE_SIZE });
  assert.throws(
    () => MappedDevice.open(p),
    (e: unknown) =>
      code('EBUSY')(e) &&
      (e as Error).message === `EBUSY: device busy: ${p} is owned by PID ${process.pid}`,
  );
  d.close();
  MappedDevice.open(p).close();
});

test('mapped: another process is refused while we own it, naming our PID', () => {
  const p = fresh();
  const d = MappedDevice.open(p, { create: true, size: PAGE_SIZE });
  const r = child(`
    try { MappedDevice.open(${JSON.stringify(p)}); process.stdout.write('opened'); }
    catch (e) { process.stdout.write(e.message); }
  `);
  assert.equal(r.status, 0, r.err);
  assert.equal(r.out, `EBUSY: device busy: ${p} is owned by PID ${process.pid}`);
  d.close();
  const again = child(
    `MappedDevice.open(${JSON.stringify(p)}).close(); process.stdout.write('ok');`,
  );
  assert.equal(again.out, 'ok', again.err);
});

test('mapped: we are refused while another process owns it, with its PID', async () => {
  const p = fresh();
  MappedDevice.open(p, { create: true, size: PAGE_SIZE }).close();
  const src = `import { MappedDevice } from ${JSON.stringify(MAPPED_JS)};
    const d = MappedDevice.open(${JSON.stringify(p)});
    process.stdout.write('ready\\n');
    process.stdin.on('data', () => {}); process.stdin.on('end', () => d.close());`;
  const c = spawn(process.execPath, ['--input-type=module', '-e', src], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    c.stdout.on('data', (b: Buffer) => b.toString().includes('ready') && resolve());
    c.on('exit', () => reject(new Error('child exited early')));
  });
  try {
    assert.throws(
      () => MappedDevice.open(p),
      (e: unknown) => code('EBUSY')(e) && (e as Error).message.endsWith(`owned by PID ${c.pid}`),
    );
    assert.equal(MappedDevice.peek(p).ownerPid, c.pid);
  } finally {
    c.stdin.end();
    await new Promise((r) => c.on('exit', r));
  }
  MappedDevice.open(p).close();
});

test('mapped: openFd adopts an inherited descriptor that holds the lock', () => {
  const p = fresh();
  const d = MappedDevice.open(p, { create: true, size: 4 * PAGE_SIZE });
  d.bytes(PAGE_SIZE, 1)[0] = 42;
  // The child gets our descriptor (same open file description, so the same lock) as fd 3.
  const r = child(
    `const d = MappedDevice.openFd(3, ${JSON.stringify(p)});
     process.stdout.write(String(d.bytes(${PAGE_SIZE}, 1)[0]));
     d.bytes(${PAGE_SIZE}, 1)[0] = 43;
     try { MappedDevice.open(${JSON.stringify(p)}); } catch (e) { process.stdout.write(' ' + e.code); }`,
    { stdio: ['ignore', 'pipe', 'pipe', d.fd] },
  );
  assert.equal(r.status, 0, r.err);
  assert.equal(r.out, '42 EBUSY');
  assert.equal(d.bytes(PAGE_SIZE, 1)[0], 43);
  // A descriptor of our own that does not hold the lock is busy; one naming another file is EINVAL.
  const fd = openSync(p, 'r+');
  try {
    assert.throws(() => MappedDevice.openFd(fd, p), code('EBUSY'));
    const other = fresh();
    MappedDevice.open(other, { create: true, size: PAGE_SIZE }).close();
    assert.throws(() => MappedDevice.openFd(d.fd, other), code('EINVAL'));
  } finally {
    closeSync(fd);
  }
  assert.throws(() => MappedDevice.openFd(9999, p), code('EBADF'));
  d.close();
});

test('mapped: bounds are EFAULT and a closed device is EBADF', () => {
  const p = fresh();
  const d = MappedDevice.open(p, { create: true, size: 2 * PAGE_SIZE });
  assert.throws(() => d.bytes(2 * PAGE_SIZE, 1), code('EFAULT'));
  assert.throws(() => d.view(-1, 1), code('EFAULT'));
  assert.throws(() => d.flush(0, 3 * PAGE_SIZE), code('EFAULT'));
  assert.equal(d.bytes(2 * PAGE_SIZE, 0).length, 0);
  d.flush(100, 10);
  d.close();
  d.close();
  assert.throws(() => d.bytes(0, 1), code('EBADF'));
  assert.throws(() => d.view(0, 1), code('EBADF'));
  assert.throws(() => d.flush(0, 1), code('EBADF'));
  assert.throws(() => d.fd, code('EBADF'));
});

test('mapped: peek reads size and page 0 without owning the device', () => {
  const p = fresh();
  const d = MappedDevice.open(p, { create: true, size: 3 * PAGE_SIZE });
  d.bytes(0, 4).set([1, 2, 3, 4]);
  const info = MappedDevice.peek(p);
  assert.equal(info.size, 3 * PAGE_SIZE);
  assert.deepEqual([...info.page0.subarray(0, 4)], [1, 2, 3, 4]);
  assert.equal(info.page0.length, PAGE_SIZE);
  assert.equal(info.ownerPid, process.pid);
  d.close();
  assert.equal(MappedDevice.peek(p).ownerPid, undefined);
});

test('mapped: peek refuses a FIFO or a directory instead of blocking on the open', () => {
  const fifo = fresh();
  spawnSync('mkfifo', [fifo]);
  assert.throws(() => MappedDevice.peek(fifo), code('EINVAL'));
  assert.throws(() => MappedDevice.peek(DIR), code('EINVAL'));
});

test('mapped: works on the system temp directory too', () => {
  const dir = mkdtempSync(join(tmpdir(), 'livekexec-mapped-'));
  try {
    const p = join(dir, 'dev');
    const d = MappedDevice.open(p, { create: true, size: 8 * PAGE_SIZE });
    d.bytes(5 * PAGE_SIZE, 2).set([5, 6]);
    d.flush(5 * PAGE_SIZE, 2);
    d.close();
    assert.equal(statSync(p).mode & 0o777, 0o600);
    const e = MappedDevice.open(p);
    assert.deepEqual([...e.bytes(5 * PAGE_SIZE, 2)], [5, 6]);
    e.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('mapped: a device over 4 GiB is reached through windows that agree with each other', (t) => {
  // Needs a file system where fallocate of 6 GiB is cheap (extents, not RAM).
  const TMPFS_MAGIC = 0x01021994;
  if (
    statfsSync(tmpdir()).type === TMPFS_MAGIC ||
    statfsSync(tmpdir()).bavail * statfsSync(tmpdir()).bsize < 16 * 2 ** 30
  ) {
    t.skip('the temp directory is tmpfs or has under 16 GiB free');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'livekexec-big-'));
  const G = 2 ** 30;
  try {
    const d = MappedDevice.open(join(dir, 'dev'), { create: true, size: 6 * G });
    // Straddles the start of window 1 and of window 5 (the last).
    d.bytes(G - 2, 4).set([1, 2, 3, 4]);
    d.bytes(5 * G + 4094, 4).set([5, 6, 7, 8]);
    d.bytes(6 * G - 1, 1)[0] = 9;
    assert.deepEqual([...d.bytes(G, 2)], [3, 4]);
    assert.deepEqual([...d.bytes(5 * G + 4096, 2)], [7, 8]);
    // A view longer than a window gets its own mapping of the same pages.
    const big = d.bytes(G - 100, G + 200);
    assert.equal(big[98], 1);
    assert.equal(big[101], 4);
    big[150] = 77;
    assert.equal(d.bytes(G + 50, 1)[0], 77);
    assert.equal(d.bytes(6 * G, 0).length, 0);
    assert.equal(d.bytes(6 * G - 1, 1)[0], 9);
    d.flush(0, 6 * G);
    d.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** This process's shared memory pages mapped, in KiB (RssShmem: tmpfs pages it has mapped). */
function rssShmemKiB(): number {
  const m = /RssShmem:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : 0;
}

test('mapped: zap drops this process’s mappings of a range, off the main thread, and keeps every byte', async () => {
  const size = 32 * 2 ** 20;
  const d = MappedDevice.open(fresh(), { create: true, size });
  const before = rssShmemKiB();
  // Every page written (and so mapped), each with its own marker.
  for (let p = 0; p < size / PAGE_SIZE; p++)
    d.bytes(p * PAGE_SIZE, 4).set([p & 0xff, p >> 8, 7, 9]);
  assert.ok(rssShmemKiB() - before >= (size / 1024) * 0.9, 'the pages are mapped');
  const zap = d.zap(0, size);
  assert.ok(zap instanceof Promise, 'zap does not block the caller');
  await zap;
  assert.ok(rssShmemKiB() - before < (size / 1024) * 0.1, 'the mappings are gone');
  // The same views read the same bytes: the pages stayed in the file.
  for (let p = 0; p < size / PAGE_SIZE; p++) {
    assert.deepEqual([...d.bytes(p * PAGE_SIZE, 4)], [p & 0xff, p >> 8, 7, 9]);
  }
  await assert.rejects(d.zap(size - PAGE_SIZE, 2 * PAGE_SIZE), code('EFAULT'));
  d.close();
  // Closed: nothing to drop, and no error.
  await d.zap(0, size);
});
