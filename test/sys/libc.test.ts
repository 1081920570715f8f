import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { getLibc, loadKoffi } from '../../src/sys/libc.js';
import { getProcLibc } from '../../src/sys/socket.js';
import { REPO_ROOT } from '../_helpers/paths.js';

const SRC = join(REPO_ROOT, 'src');

function* sources(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* sources(p);
    else if (name.endsWith('.ts')) yield p;
  }
}

test('libc is bound once: only src/sys/libc.ts loads it and declares functions', () => {
  const binders: string[] = [];
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    if (/koffi\.load\(|\.func\(/.test(text)) binders.push(relative(SRC, file));
  }
  assert.deepEqual(binders, ['sys/libc.ts']);
});

test('the socket layer uses the one binding', () => {
  assert.equal(getLibc(), getLibc());
  const proc = getProcLibc();
  assert.equal(proc, getProcLibc(), 'one object, so a probe patched on it is the one exec calls');
  // The same descriptor table through either view.
  const pair = proc.socketpair(1, 1);
  assert.ok(pair);
  try {
    assert.equal(getLibc().fcntl(pair[0], 1, 0) >= 0, true);
  } finally {
    proc.close(pair[0]);
    proc.close(pair[1]);
  }
});

test('koffi is the pinned version, loaded without its installer on glibc Linux', () => {
  const require = createRequire(import.meta.url);
  const pinned = (require('koffi/package.json') as { version: string }).version;
  const koffi = loadKoffi() as unknown as Record<string, unknown>;
  assert.equal(koffi.version, pinned);
  for (const fn of ['load', 'view', 'alloc', 'free', 'address', 'errno']) {
    assert.equal(typeof koffi[fn], 'function', fn);
  }
  const triplet = `${process.platform}_${process.arch}`;
  if (triplet === 'linux_x64' || triplet === 'linux_arm64') {
    // koffi's entry point wraps the addon (adding deprecated aliases such as handle); the addon itself has none.
    assert.equal(koffi.handle, undefined);
    const full = require('koffi') as Record<string, unknown>;
    assert.equal(full.view, koffi.view, 'the entry point reuses the same addon, not a second copy');
  }
});

test('importing the binding loads nothing: koffi is loaded on the first call', () => {
  const dist = join(REPO_ROOT, 'dist', 'src', 'sys');
  const script = `
    import { createRequire } from 'node:module';
    const { getLibc } = await import(${JSON.stringify(pathToFileURL(join(dist, 'libc.js')).href)});
    await import(${JSON.stringify(pathToFileURL(join(dist, 'socket.js')).href)});
    const koffi = () => Object.keys(createRequire(import.meta.url).cache).filter((f) => f.includes('koffi')).length;
    const before = koffi();
    getLibc().errno();
    console.log(JSON.stringify([before, koffi()]));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
  });
  const [before, after] = JSON.parse(out) as [number, number];
  assert.equal(before, 0, 'no koffi module is loaded by the import');
  assert.ok(after > 0, 'the first call loads it');
});
