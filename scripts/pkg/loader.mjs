// dist/pkg/livekexec.js: loads dist/pkg/livekexec.cjs (all of livekexec, one
// script) through V8's code cache in livekexec.cache, written at build time
// after a warm-up handover (scripts/pkg/warm.mjs). With the cache, V8 neither
// parses the 0.5 MB script nor compiles the functions a successor's boot
// calls: a handover's downtime is mostly start-up, and this is most of the
// start-up that is ours. A cache V8 rejects (another Node, other flags) or a
// missing one only costs the compilation it would have saved.
// LIVEKEXEC_CODE_CACHE=off skips it, and so do source maps (--enable-source-maps):
// node maps stack traces of what its own loaders compiled, never of a vm.Script.
import { createRequire } from 'node:module';

// Built-ins through require: an ES import of node:fs also loads fs/promises,
// readline and streams (its facade reads every export).
const require = createRequire(import.meta.url);
const { fileURLToPath } = require('node:url');
const file = fileURLToPath(new URL('./livekexec.cjs', import.meta.url));
const cacheFile = file.replace(/\.cjs$/, '.cache');

let cacheState = 'off';
let script = null;
const module = { exports: {} };
if (process.sourceMapsEnabled ?? process.execArgv.includes('--enable-source-maps')) {
  module.exports = require(file);
} else {
  const { readFileSync } = require('node:fs');
  const { dirname } = require('node:path');
  const { Script } = require('node:vm');
  let cachedData;
  if (process.env.LIVEKEXEC_CODE_CACHE !== 'off') {
    try {
      cachedData = readFileSync(cacheFile);
    } catch {
      cacheState = 'absent';
    }
  }
  // One line of wrapper, so the script's line numbers are the file's.
  script = new Script(
    `(function (exports, require, module, __filename, __dirname) {${readFileSync(file, 'utf8')}\n})`,
    { filename: file, cachedData },
  );
  if (cachedData !== undefined) cacheState = script.cachedDataRejected ? 'rejected' : 'accepted';
  script.runInThisContext()(module.exports, require, module, file, dirname(file));
}

/** Whether V8 took the code cache: 'accepted', 'rejected', 'absent' or 'off'. */
export function codeCacheState() {
  return cacheState;
}

/** The code cache of everything compiled so far (the build's warm-up writes it). */
export function createCodeCache() {
  if (script === null) throw new Error('livekexec: loaded without its code cache (source maps)');
  return script.createCachedData();
}
