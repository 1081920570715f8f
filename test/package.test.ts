import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from './_helpers/paths.js';

interface PackageJson {
  bin: Record<string, string>;
  exports: Record<string, string | { types: string; default: string }>;
  dependencies: Record<string, string>;
}

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as PackageJson;
const entries = Object.entries(pkg.exports).flatMap(([key, v]) =>
  typeof v === 'string' ? [] : [{ key, specifier: `livekexec${key.slice(1)}`, ...v }],
);

test('every package export is the bundle, with the names and values of the compiled module', async () => {
  assert.equal(entries.length, 11);
  for (const e of entries) {
    assert.match(e.default, /^\.\/dist\/pkg\/[a-z]+\.js$/, e.key);
    const bundled = (await import(e.specifier)) as Record<string, unknown>;
    const compiled = (await import(
      pathToFileURL(join(REPO_ROOT, e.types.replace(/\.d\.ts$/, '.js'))).href
    )) as Record<string, unknown>;
    assert.deepEqual(Object.keys(bundled).sort(), Object.keys(compiled).sort(), e.key);
    // Not the compiled module itself: the bundle's own copy.
    if ('Kernel' in compiled) assert.notEqual(bundled.Kernel, compiled.Kernel);
  }
});

test('one copy of each class across the exports: an error from a subpath is instanceof the root class', async () => {
  const root = await import('livekexec');
  const kho = await import('livekexec/kho');
  const fdt = await import('livekexec/fdt');
  const memory = await import('livekexec/memory');
  assert.equal(kho.KhoError, root.KhoError);
  assert.equal(fdt.FdtError, root.FdtError);
  assert.equal(root.fdt.FdtWriter, fdt.FdtWriter);
  assert.equal(memory.HeapDevice, root.HeapDevice);
  assert.throws(() => fdt.Fdt.from(new Uint8Array(8)), root.FdtError);
  // The class name survives bundling (messages and stack traces show it).
  assert.equal(root.KhoError.name, 'KhoError');
});

test('the bundle requires only Node built-ins and the declared dependencies', () => {
  const text = readFileSync(join(REPO_ROOT, 'dist', 'pkg', 'livekexec.cjs'), 'utf8');
  const specifiers = [
    ...text.matchAll(/\brequire\(\s*"([^"]+)"\s*\)|\bimport\(\s*"([^"]+)"\s*\)/g),
  ].map((m) => m[1] ?? m[2]);
  assert.ok(specifiers.length > 0);
  for (const s of specifiers) {
    assert.ok(
      s?.startsWith('node:') || (s !== undefined && s.split('/')[0]! in pkg.dependencies),
      `the bundle imports ${s}`,
    );
  }
});

/** Runs `code` (an ES module) in a fresh node; its stdout, trimmed. */
function run(code: string, env: NodeJS.ProcessEnv = {}): string {
  return execFileSync(process.execPath, ['--input-type=module', '-e', code], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  }).trim();
}

test("the build's code cache is taken by this node, and the package works without it or with a bad one", () => {
  const probe = `
    const m = await import(${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'dist', 'pkg', 'livekexec.js')).href)});
    const { Machine } = await import('livekexec');
    const k = Machine.create({ size: 8 * 1024 * 1024 }).boot();
    console.log(m.codeCacheState(), k.generation);`;
  assert.equal(run(probe), 'accepted 1');
  assert.equal(run(probe, { LIVEKEXEC_CODE_CACHE: 'off' }), 'off 1');
  // A copy of the package elsewhere: the build's cache names the build's
  // place, so it is not used there; a garbage cache made for the copy's place
  // is refused by V8, and the package compiles as usual.
  const copy = mkdtempSync(join(REPO_ROOT, 'dist', 'pkg-copy-'));
  try {
    cpSync(join(REPO_ROOT, 'dist', 'pkg'), copy, { recursive: true });
    const url = pathToFileURL(join(copy, 'livekexec.js')).href;
    const bad = `
      const m = await import(${JSON.stringify(url)});
      const k = m.part('root').Machine.create({ size: 8 * 1024 * 1024 }).boot();
      console.log(m.codeCacheState(), k.generation);`;
    assert.equal(run(bad), 'foreign 1');
    const built = readFileSync(join(copy, 'livekexec.cache'));
    const line = built.subarray(0, built.indexOf(10) + 1).toString('latin1');
    assert.match(line, / warm .*livekexec\.cjs\n$/);
    const here = line.replace(/ \/.*\n$/, ` ${join(copy, 'livekexec.cjs')}\n`);
    writeFileSync(
      join(copy, 'livekexec.cache'),
      Buffer.concat([Buffer.from(here, 'latin1'), Buffer.alloc(4096, 0x5a)]),
    );
    assert.equal(run(bad), 'rejected 1');
    rmSync(join(copy, 'livekexec.cache'));
    assert.equal(run(bad), 'absent 1');
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
});

test('under --enable-source-maps, stack traces from the package point at src/*.ts', () => {
  const stack = execFileSync(
    process.execPath,
    [
      '--enable-source-maps',
      '--input-type=module',
      '-e',
      `const { fdt } = await import('livekexec');
       try { fdt.Fdt.from(new Uint8Array(8)); } catch (e) { console.log(e.stack); }`,
    ],
    { cwd: REPO_ROOT, encoding: 'utf8' },
  );
  assert.match(stack, /^FdtError: /);
  assert.match(stack.split('\n')[1] ?? '', /\bsrc\/fdt\/header\.ts:\d+:\d+\)$/, stack);
});

test('importing the package loads no node:crypto, node:net or node:child_process (a successor needs none to boot)', () => {
  const loaded = run(`
    const before = new Set(process.moduleLoadList);
    await import('livekexec');
    console.log(JSON.stringify(process.moduleLoadList.filter((m) => !before.has(m))));`);
  const added = JSON.parse(loaded) as string[];
  assert.ok(added.length > 0);
  for (const m of ['NativeModule crypto', 'NativeModule net', 'NativeModule child_process']) {
    assert.ok(!added.includes(m), `${m} was loaded`);
  }
});

test("importing the package root runs the root's modules only: livekexec/store's (and the node:v8 they load) wait for livekexec/store", () => {
  const probe = (specifier: string) =>
    JSON.parse(
      run(`
        const before = new Set(process.moduleLoadList);
        await import('${specifier}');
        console.log(JSON.stringify(process.moduleLoadList.filter((m) => !before.has(m))));`),
    ) as string[];
  assert.ok(!probe('livekexec').includes('NativeModule v8'), 'the root import loaded node:v8');
  assert.ok(probe('livekexec/store').includes('NativeModule v8'));
});

test('the build writes the package when its script is run through a symlinked path', {
  timeout: 60_000,
}, () => {
  // A copy: building rewrites dist/pkg, which other tests import meanwhile.
  const copy = mkdtempSync(join(tmpdir(), 'livekexec-build-'));
  try {
    for (const p of ['package.json', 'scripts', join('dist', 'src')]) {
      cpSync(join(REPO_ROOT, p), join(copy, p), { recursive: true });
    }
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(copy, 'node_modules'));
    symlinkSync(copy, `${copy}-link`);
    execFileSync(process.execPath, [join(`${copy}-link`, 'scripts', 'bundle.mjs')], {
      stdio: 'pipe',
    });
    assert.ok(existsSync(join(copy, 'dist', 'pkg', 'livekexec.cjs')), 'no bundle was written');
  } finally {
    rmSync(`${copy}-link`, { force: true });
    rmSync(copy, { recursive: true, force: true });
  }
});

test('the livekexec bin is executable after a build, so npx livekexec runs it in a clone', () => {
  const bin = pkg.bin.livekexec;
  assert.ok(bin);
  assert.notEqual(statSync(join(REPO_ROOT, bin)).mode & 0o111, 0);
});
