#!/usr/bin/env node
// Bundles the compiled package (dist/src, from tsc) into dist/pkg, which is
// what the package's exports point to: dist/pkg/livekexec.cjs holds all of
// livekexec in one script, dist/pkg/livekexec.js loads it with V8's code cache
// (scripts/pkg/loader.mjs), and each export (".", "./fdt", ...) is a small
// module re-exporting its part of it. The cache is written by a warm-up
// handover (scripts/pkg/warm.mjs); without one the package works the same.
//
// Why: Node 20's ESM loader costs about 0.7 ms per module file, and a
// successor booting from a handover imports ~90 of them: 60 ms of downtime.
// Bundled, `import 'livekexec'` reads a few files, and the code cache spares
// parsing them and compiling what the boot runs. One bundle for every export
// (not one per export) keeps a single copy of each class, so an error thrown
// by `livekexec/kho` is `instanceof` the class the root exports.
//
// Run by `npm run build` after tsc. Types stay in dist/src (*.d.ts).
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'dist', 'pkg');
const BUNDLE = 'livekexec.js';
const SCRIPT = 'livekexec.cjs';

/** Each export's shim file (in dist/pkg) and the compiled module it re-exports (in dist/src). */
export function exportTargets(pkg) {
  const targets = [];
  for (const [key, value] of Object.entries(pkg.exports)) {
    if (typeof value === 'string') continue; // ./package.json
    const shim = value.default.replace(/^\.\/dist\/pkg\//, '');
    const module = value.types.replace(/^\.\//, '').replace(/\.d\.ts$/, '.js');
    if (shim === value.default || shim.includes('/') || !module.startsWith('dist/src/')) {
      throw new Error(
        `package.json exports["${key}"]: expected ./dist/pkg/<name>.js and dist/src/**/*.d.ts`,
      );
    }
    targets.push({ key, shim, module });
  }
  return targets;
}

/**
 * What makes ES modules run as one CommonJS script: import.meta.url is the
 * script's own URL, computed on first use (a successor's start-up need not
 * pay for it), and node:module's createRequire(import.meta.url) is the
 * script's own require, which resolves from the same place (requiring
 * node:module loads part of node's ES module loader).
 */
const CJS = {
  define: { 'import.meta.url': '__lk_meta.url' },
  banner: {
    js: 'var __lk_meta = { get url() { return require("node:url").pathToFileURL(__filename).href; } };',
  },
  plugins: [
    {
      name: 'own-require',
      setup(b) {
        b.onResolve({ filter: /^node:module$/ }, () => ({
          path: 'node:module',
          namespace: 'own-require',
        }));
        b.onLoad({ filter: /.*/, namespace: 'own-require' }, () => ({
          contents: 'export function createRequire() { return require; }',
          loader: 'js',
        }));
      },
    },
  ],
};

/** "./fdt" -> "fdt", "." -> "root": an export's part of the bundle. */
function partOf(key) {
  return key === '.' ? 'root' : key.slice(2).replace(/[^A-Za-z0-9]/g, '_');
}

async function main() {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const targets = exportTargets(pkg);
  // The bundle evaluates an export's modules when that export is first
  // imported (each part a require() the bundler makes lazy), not all of them
  // at once: importing livekexec does not run livekexec/store's modules.
  const entry = [];
  const shims = [];
  for (const t of targets) {
    const names = Object.keys(await import(pathToFileURL(join(ROOT, t.module)).href));
    const part = partOf(t.key);
    entry.push(`  ${part}: () => require('./${relative(ROOT, join(ROOT, t.module))}'),`);
    shims.push({
      file: t.shim,
      text: `import { part } from './${BUNDLE}';\nexport const { ${names.join(', ')} } = part('${part}');\n`,
    });
  }
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  await build({
    stdin: {
      contents: `module.exports = {\n${entry.join('\n')}\n};\n`,
      resolveDir: ROOT,
      sourcefile: 'livekexec-exports.js',
    },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    // The script's own URL (createRequire needs one), however it is loaded (loader.mjs).
    ...CJS,
    target: 'node20',
    // koffi, commander and cli-progress stay packages (koffi's addon is found at run time).
    packages: 'external',
    // Class and function names appear in messages and stack traces: kept
    // (a class that names itself is `class _X` in the bundle, a function
    // named like another module's is renamed), then the __name() calls that
    // only repeat a declared function's own name are taken out (withoutOwnNames).
    keepNames: true,
    // Chains tsc's source maps, so --enable-source-maps points at src/*.ts
    // (the loader then goes through require: node maps no vm.Script).
    sourcemap: 'linked',
    legalComments: 'none',
    // Non-ASCII characters escaped: the loader reads the text as latin1.
    charset: 'ascii',
    // Not minified: node prints the source line of an uncaught error's throw,
    // and a minified bundle is one line of 350 KB. With the code cache the
    // text is read, not parsed.
    outfile: join(OUT, SCRIPT),
    logLevel: 'warning',
  });
  const text = withoutOwnNames(readFileSync(join(OUT, SCRIPT), 'latin1'));
  const wide = text.search(/[^\x00-\x7f]/);
  if (wide >= 0) throw new Error(`bundle: ${SCRIPT} has a non-ASCII character at ${wide}`);
  // One function expression (scripts/pkg/loader.mjs compiles the file as it is read).
  writeFileSync(
    join(OUT, SCRIPT),
    `(function (exports, require, module, __filename, __dirname) {${text}\n})`,
    'latin1',
  );
  // Beside the bundle, one level from dist/src: what a successor on trial
  // preloads (trial-boot.cjs, small: it runs before the main module), what a
  // failed try requires at exit, synchronously (trial-fail.cjs, which loads
  // the libc binding, and trial-decide.cjs), and the trial loader a failed
  // try may exec (src/trial-*.ts).
  for (const [name, format] of [
    ['trial-boot.cjs', 'cjs'],
    ['trial-fail.cjs', 'cjs'],
    ['trial-loader.js', 'esm'],
    ['trial-decide.cjs', 'cjs'],
  ]) {
    await build({
      entryPoints: [join(ROOT, 'dist', 'src', name.replace(/\.cjs$/, '.js'))],
      bundle: true,
      platform: 'node',
      format,
      ...(format === 'cjs' ? CJS : {}),
      target: 'node20',
      packages: 'external',
      keepNames: true,
      minifyWhitespace: true,
      legalComments: 'none',
      outfile: join(OUT, name),
      logLevel: 'warning',
    });
  }
  const loader = readFileSync(join(ROOT, 'scripts', 'pkg', 'loader.mjs'), 'utf8');
  writeFileSync(join(OUT, BUNDLE), loader);
  for (const s of shims) writeFileSync(join(OUT, s.file), s.text);
  await checkNames(targets);
  // npm makes an installed package's bins executable, not the project's own,
  // which `npx livekexec` runs in a clone; tsc writes them 0644.
  for (const bin of Object.values(pkg.bin ?? {})) chmodSync(join(ROOT, bin), 0o755);
  warmUp();
}

/**
 * The bundle without keepNames' `__name(f, "f");` statements after function
 * declarations, which set the name the declaration already gives: each
 * runs as its module is evaluated (some 500 of them; importing the package
 * took ~2 ms more with them). A statement is blanked, not removed, so every
 * line keeps its number (the source map stays right).
 */
function withoutOwnNames(text) {
  return text
    .replace(/^([ \t]*)__name\(([A-Za-z_$][\w$]*), "\2"\);$/gm, '$1')
    .replace(ANONYMOUS_CLASS_NAMED, '$1$2$3 = class$4 {\n\n\n');
}

/**
 * `X = class {` with a static block `__name(this, "X")`: an anonymous class
 * assigned to X is named X by the assignment itself (keepNames adds the
 * block anyway; a class named otherwise, `class _X`, keeps it). The block's
 * three lines are blanked.
 */
const ANONYMOUS_CLASS_NAMED =
  /^([ \t]*)((?:var |let |const )?)([A-Za-z_$][\w$]*) = class((?: extends [^{\n]+)?) \{\n[ \t]*static \{\n[ \t]*__name\(this, "\3"\);\n[ \t]*\}$/gm;

/**
 * Each exported class and function of the bundle has the name it has in
 * the compiled module (messages and stack traces show class names): without
 * keepNames, the bundler renames one of two same-named declarations.
 */
async function checkNames(targets) {
  const wrong = [];
  for (const t of targets) {
    const compiled = await import(pathToFileURL(join(ROOT, t.module)).href);
    const bundled = await import(pathToFileURL(join(OUT, t.shim)).href);
    for (const [name, value] of Object.entries(compiled)) {
      if (typeof value === 'function' && bundled[name]?.name !== value.name) {
        wrong.push(
          `${t.key} ${name}: ${bundled[name]?.name} in the bundle, ${value.name} compiled`,
        );
      }
    }
  }
  if (wrong.length > 0) throw new Error(`bundle: names changed:\n${wrong.join('\n')}`);
}

/** Writes dist/pkg/livekexec.cache; a failed warm-up leaves the package without one (slower, not broken). */
function warmUp() {
  const device = join(tmpdir(), `livekexec-warm-up-${process.pid}`);
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'pkg', 'warm.mjs'), OUT, device], {
    stdio: ['ignore', 'inherit', 'inherit'],
    // No NODE_OPTIONS: the build's cache is the one for programs started without options.
    env: { ...process.env, LIVEKEXEC_CODE_CACHE: 'off', NODE_OPTIONS: '' },
  });
  rmSync(device, { force: true });
  if (r.status !== 0) {
    process.stderr.write(
      `bundle: the warm-up failed (${r.error?.message ?? `exit ${r.status}`}); no code cache\n`,
    );
  }
}

// argv[1] as given (through a symlink, say); import.meta.url is the real path.
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
