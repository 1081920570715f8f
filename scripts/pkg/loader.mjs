// dist/pkg/livekexec.js: loads dist/pkg/livekexec.cjs (all of livekexec, one
// script) through V8's code cache in livekexec.cache. With the cache, V8
// neither parses the script nor compiles the functions a successor's boot
// calls: a handover's downtime is mostly start-up, and this is most of the
// start-up that is ours. A cache V8 rejects (other flags) or a missing one
// only costs the compilation it would have saved.
//
// The cache file starts with one line naming the node, the architecture and
// the script's real path it was made for, then V8's bytes. V8 keeps the
// script name it was made with, so a cache made elsewhere (the build
// machine's checkout) would make stack traces name that place: it is used
// only where it was made. The build's warm-up writes one (scripts/pkg/
// warm.mjs); a generation that booted from a handover without an accepted
// cache writes one at kexec load (saveCodeCache), when the package
// directory is writable, so an installed package warms itself up.
//
// Not node's module.enableCompileCache() (Node.js >= 22): it caches what
// compiling the module compiled, not the functions a handover's boot later
// runs: a successor's import and boot took 24-41 and 18-38 ms with it,
// 18-28 and 11-24 ms with this cache (node 22, 4 interleaved runs each, a
// loaded machine).
//
// V8 refuses a cache made under other V8 flags (--stack-size, --expose-gc,
// on node 20 and 22 even --max-old-space-size; on the command line or in
// NODE_OPTIONS). With one file, programs started with different options
// took turns writing it at their kexec loads, and a successor that found
// the other's compiled the whole bundle (16 ms more start-up on node 20
// here). So a program started with
// options keeps its own cache beside the build's (livekexec.<hash>.cache,
// the options in its first line), and takes the build's while it has none
// (options V8 ignores, such as --require or --no-warnings, leave it good).
//
// LIVEKEXEC_CODE_CACHE=off skips it, and so do source maps (--enable-source-maps):
// node maps stack traces of what its own loaders compiled, never of a vm.Script.
// The hook for saving sits on globalThis under Symbol.for('livekexec.codeCache').
import { createRequire } from 'node:module';

// Built-ins through require: an ES import of node:fs also loads fs/promises,
// readline and streams (its facade reads every export).
const require = createRequire(import.meta.url);
const { fileURLToPath } = require('node:url');
const file = fileURLToPath(new URL('./livekexec.cjs', import.meta.url));
const MAGIC = 'livekexec code cache 1';
/** The options node started with, as given: '' for none. */
const options = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(' ')]
  .filter((w) => w !== '')
  .join(' ');
const buildCacheFile = file.replace(/\.cjs$/, '.cache');
/** Where this process reads its cache first and writes one: its options' own file, if any. */
const cacheFile =
  options === '' ? buildCacheFile : file.replace(/\.cjs$/, `.${fnv1a(options)}.cache`);

/** FNV-1a of a string's UTF-16 units, 8 hex digits: a file name, checked against the first line. */
function fnv1a(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

/**
 * The first line of a cache made here; `warm` says a handover's boot had
 * run; `own` names this process's options (the build's cache has none).
 */
function header(warm, own) {
  const made = `${MAGIC} ${process.version} ${process.arch} ${warm ? 'warm' : 'cold'} ${file}`;
  return `${made}${own && options !== '' ? ` ${JSON.stringify(options)}` : ''}\n`;
}

let cacheState = 'off';
let warmCache = false;
/** The bytes V8 is offered: this process's own cache, else the build's. */
let cachedData;
let saved = false;
let script = null;
const module = { exports: {} };
// The bundle is written as one function expression, its wrapper on its first
// and last lines (so its line numbers are the source map's): V8 compiles the
// file's text as read, with no copy of 0.8 MB into a wrapped string (~1.5 ms
// CPU of every successor's start-up, and young-generation garbage).
const WRAP_HEAD = '(function (exports, require, module, __filename, __dirname) {';
const WRAP_TAIL = '\n})';
const { readFileSync } = require('node:fs');
const { dirname } = require('node:path');
if (process.sourceMapsEnabled ?? process.execArgv.includes('--enable-source-maps')) {
  // Through node's CommonJS compiler, which maps stack traces; the wrapper is its own.
  const Module = require('node:module');
  const text = readFileSync(file, 'latin1');
  const m = new Module(file, null);
  m.filename = file;
  m.paths = Module._nodeModulePaths(dirname(file));
  m._compile(text.slice(WRAP_HEAD.length, text.length - WRAP_TAIL.length), file);
  module.exports = m.exports;
} else {
  const { Script } = require('node:vm');
  if (process.env.LIVEKEXEC_CODE_CACHE !== 'off') {
    cacheState = 'absent';
    readCache(cacheFile, true);
    if (cachedData === undefined && cacheFile !== buildCacheFile) readCache(buildCacheFile, false);
  }
  // The bundle is ASCII (the build checks it): read as latin1, not decoded as UTF-8.
  script = new Script(readFileSync(file, 'latin1'), { filename: file, cachedData });
  if (cachedData !== undefined) cacheState = script.cachedDataRejected ? 'rejected' : 'accepted';
  script.runInThisContext()(module.exports, require, module, file, dirname(file));
}

/** Takes the cache in `path` if its first line is one `header(_, own)` writes here. */
function readCache(path, own) {
  let bytes;
  try {
    bytes = readFileSync(path);
  } catch {
    return; // absent
  }
  const nl = bytes.indexOf(10);
  const line = nl < 0 ? '' : bytes.subarray(0, nl + 1).toString('latin1');
  if (line === header(true, own) || line === header(false, own)) {
    cachedData = bytes.subarray(nl + 1);
    warmCache = line === header(true, own);
  } else {
    cacheState = 'foreign';
  }
}

const parts = new Map();

/**
 * One export's names (`root` for ".", `fdt` for "./fdt", ...): its modules
 * run when it is first asked for (each export's shim asks for its own).
 */
export function part(name) {
  let p = parts.get(name);
  if (p === undefined) {
    const load = module.exports[name];
    if (typeof load !== 'function') throw new Error(`livekexec: no part ${name} in the bundle`);
    p = load();
    parts.set(name, p);
  }
  return p;
}

/**
 * Whether V8 took the code cache: 'accepted', 'rejected' (V8 refused it),
 * 'foreign' (made for another node, architecture or place), 'absent' or 'off'.
 */
export function codeCacheState() {
  return cacheState;
}

/** The code cache of everything compiled so far (the build's warm-up writes it). */
export function createCodeCache() {
  if (script === null) throw new Error('livekexec: loaded without its code cache (source maps)');
  return script.createCachedData();
}

/**
 * Writes the code cache of what this process compiled so far, unless one
 * as good was accepted; `warm` when a handover's boot has run. Never throws:
 * a package directory it cannot write keeps going without.
 * @returns whether a cache was written.
 */
export function saveCodeCache(warm) {
  if (script === null || cacheState === 'off' || saved) return false;
  if (cacheState === 'accepted' && (warmCache || !warm)) return false;
  saved = writeCodeCache(warm);
  return saved;
}

/** Writes the code cache of what was compiled so far, for this node, place and options. */
export function writeCodeCache(warm) {
  const { renameSync, rmSync, writeFileSync } = require('node:fs');
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  try {
    const data = Buffer.concat([Buffer.from(header(warm, true), 'latin1'), createCodeCache()]);
    writeFileSync(tmp, data, { mode: 0o644 });
    renameSync(tmp, cacheFile);
    return true;
  } catch {
    rmSync(tmp, { force: true });
    return false;
  }
}

globalThis[Symbol.for('livekexec.codeCache')] = { save: saveCodeCache, state: codeCacheState };
