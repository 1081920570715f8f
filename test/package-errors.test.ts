import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from './_helpers/paths.js';

/**
 * The package as an installed copy: node_modules/livekexec (package.json and
 * dist/pkg, with the build's code cache) in a new folder, its dependencies
 * linked from this checkout.
 */
function install(): string {
  const app = realpathSync(mkdtempSync(join(tmpdir(), 'livekexec-app-')));
  const pkg = join(app, 'node_modules', 'livekexec');
  mkdirSync(join(pkg, 'dist'), { recursive: true });
  cpSync(join(REPO_ROOT, 'package.json'), join(pkg, 'package.json'));
  cpSync(join(REPO_ROOT, 'dist', 'pkg'), join(pkg, 'dist', 'pkg'), { recursive: true });
  for (const dep of ['koffi', 'commander', 'cli-progress']) {
    symlinkSync(join(REPO_ROOT, 'node_modules', dep), join(app, 'node_modules', dep));
  }
  return app;
}

test('an uncaught livekexec error prints its message and a short stack naming the installed files', () => {
  const app = install();
  try {
    writeFileSync(
      join(app, 'main.mjs'),
      `import { Machine } from 'livekexec';
const kernel = Machine.create({ size: 8 * 1024 * 1024 }).boot();
kernel.kho.restoreFolio(4096);
`,
    );
    const r = spawnSync(process.execPath, ['main.mjs'], { cwd: app, encoding: 'utf8' });
    assert.equal(r.status, 1);
    const out = r.stderr;
    assert.ok(out.length < 2000, `stderr is ${out.length} bytes:\n${out.slice(0, 2000)}`);
    assert.match(out, /KhoError: ENOENT: this generation was not booted with a KHO handover/);
    // The line node shows above the message is the throw, not a minified bundle.
    for (const line of out.split('\n'))
      assert.ok(line.length <= 200, `a line of ${line.length} bytes`);
    assert.ok(!out.includes(REPO_ROOT), `the stack names the build's checkout:\n${out}`);
    const frames = out.split('\n').filter((l) => /^\s+at /.test(l));
    assert.ok(frames.length >= 2, out);
    const ours = frames.filter((f) => !f.includes('main.mjs') && !f.includes('node:'));
    assert.ok(ours.length >= 1, out);
    for (const f of ours) {
      assert.match(
        f,
        new RegExp(`\\(${app}/node_modules/livekexec/dist/pkg/livekexec\\.cjs:\\d+:\\d+\\)$`),
        f,
      );
    }
  } finally {
    rmSync(app, { recursive: true, force: true });
  }
});

/**
 * A program in the installed copy that boots a device, prints the code
 * cache state its import found, and loads a kexec (where it writes a cache
 * when it took none as good). Returns a function that starts it with node
 * options; its stdout is the state.
 */
function cacheProgram(app: string): (execArgv?: string[], nodeOptions?: string) => string {
  writeFileSync(
    join(app, 'main.mjs'),
    `import { boot } from 'livekexec';
const { codeCacheState } = await import('./node_modules/livekexec/dist/pkg/livekexec.js');
const kernel = await boot({ device: process.argv[2], size: '16M', cmdline: '' });
console.log(codeCacheState());
kernel.kexec.load();
kernel.device.close();
`,
  );
  const device = join(app, 'device');
  return (execArgv = [], nodeOptions = '') => {
    const r = spawnSync(process.execPath, [...execArgv, 'main.mjs', device], {
      cwd: app,
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: nodeOptions },
    });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
}

test('an installed copy writes its own code cache at kexec load, and the next start takes it', () => {
  const app = install();
  try {
    const cache = join(app, 'node_modules', 'livekexec', 'dist', 'pkg', 'livekexec.cache');
    const start = cacheProgram(app);
    assert.equal(start(), 'foreign');
    const head = readFileSync(cache).subarray(0, 300).toString('latin1').split('\n')[0];
    assert.equal(
      head,
      `livekexec code cache 1 ${process.version} ${process.arch} cold ${app}/node_modules/livekexec/dist/pkg/livekexec.cjs`,
    );
    assert.equal(start(), 'accepted');
  } finally {
    rmSync(app, { recursive: true, force: true });
  }
});

test("a program started with V8 options writes its own code cache beside the build's, takes it next time, and leaves the build's to the rest", () => {
  const app = install();
  try {
    const pkgDir = join(app, 'node_modules', 'livekexec', 'dist', 'pkg');
    const script = `${pkgDir}/livekexec.cjs`;
    const start = cacheProgram(app);
    // A cache of the build's kind, made here: programs without options take it.
    assert.equal(start(), 'foreign');
    const built = readFileSync(join(pkgDir, 'livekexec.cache'));
    assert.equal(start(), 'accepted');
    // V8 refuses it under --expose-gc (under --max-old-space-size too on node 20 and
    // 22, not on 24 and 26): the program writes its own at kexec load.
    const flagged = ['--expose-gc'];
    assert.equal(start(flagged), 'rejected');
    const own = readdirSync(pkgDir).filter((f) => /^livekexec\.[0-9a-f]{8}\.cache$/.test(f));
    assert.equal(own.length, 1, `caches: ${readdirSync(pkgDir).join(' ')}`);
    const head = readFileSync(join(pkgDir, own[0]!)).subarray(0, 400).toString('latin1');
    assert.equal(
      head.split('\n')[0],
      `livekexec code cache 1 ${process.version} ${process.arch} cold ${script} "--expose-gc"`,
    );
    assert.equal(start(flagged), 'accepted');
    // The same option through NODE_OPTIONS is the same file; other options have their own.
    assert.equal(start([], '--expose-gc'), 'accepted');
    assert.equal(start(['--stack-size=900']), 'rejected');
    assert.equal(start(['--stack-size=900']), 'accepted');
    assert.equal(start(flagged), 'accepted');
    // The build's cache is as it was, and still taken without options, or with ones V8 ignores.
    assert.deepEqual(readFileSync(join(pkgDir, 'livekexec.cache')), built);
    assert.equal(start(), 'accepted');
    assert.equal(start(['--no-warnings']), 'accepted');
  } finally {
    rmSync(app, { recursive: true, force: true });
  }
});

/**
 * What a newcomer sees when an error of each subsystem goes uncaught: node's
 * report of the throw, then `Class: CODE: message` on one line, then frames
 * in the installed package; never a minified line or a page of text.
 */
const UNCAUGHT: readonly { error: string; code: string; program: string }[] = [
  { error: 'DeviceError', code: 'EINVAL', program: `Machine.create({ size: 3 });` },
  { error: 'BootError', code: 'EINVAL', program: `machine().boot('pmpool=oops');` },
  { error: 'FdtError', code: 'FDT_ERR_TRUNCATED', program: `Fdt.from(new Uint8Array(16));` },
  { error: 'KhoError', code: 'ENOENT', program: `machine().boot().kho.restoreFolio(4096);` },
  {
    error: 'PkramError',
    code: 'ENOENT',
    program: `machine().boot('kho=on').pkram.prepareLoad('nope');`,
  },
  {
    error: 'PmpoolError',
    code: 'EINVAL',
    program: `machine().boot('pmpool=0x400000,4M').pmpool.alloc(-1);`,
  },
  { error: 'PageAllocError', code: 'EINVAL', program: `machine().boot().pages.allocPages(99);` },
  { error: 'LuoError', code: 'EINVAL', program: `machine().boot().liveupdate.createSession('');` },
  { error: 'KexecError', code: 'ENOENT', program: `machine().boot().kexec.exec();` },
  { error: 'StoreError', code: 'EINVAL', program: `openStore(machine().boot(), '');` },
];

test('an uncaught error of every subsystem prints one readable line of message', () => {
  const app = install();
  try {
    for (const c of UNCAUGHT) {
      writeFileSync(
        join(app, 'main.mjs'),
        `import { Fdt, Machine } from 'livekexec';
import { openStore } from 'livekexec/store';
const machine = () => Machine.create({ size: 16 * 1024 * 1024 });
${c.program}
`,
      );
      const r = spawnSync(process.execPath, ['main.mjs'], { cwd: app, encoding: 'utf8' });
      const out = r.stderr;
      assert.equal(r.status, 1, `${c.error}: exit ${r.status}\n${out}`);
      assert.ok(out.length < 2500, `${c.error}: stderr is ${out.length} bytes`);
      const lines = out.split('\n');
      for (const line of lines)
        assert.ok(line.length <= 200, `${c.error}: a line of ${line.length} bytes`);
      const at = lines.findIndex((l) => l.startsWith(`${c.error}: ${c.code}: `));
      assert.ok(at >= 0, `${c.error}: no '${c.error}: ${c.code}: ...' line in\n${out}`);
      assert.match(lines[at + 1], /^\s+at /, `${c.error}: the message is one line\n${out}`);
      assert.ok(!out.includes(REPO_ROOT), `${c.error}: the stack names the build's checkout`);
    }
  } finally {
    rmSync(app, { recursive: true, force: true });
  }
});
