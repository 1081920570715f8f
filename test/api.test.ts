import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { packageEntries, shippedDeclarations, underscoreNames } from './_helpers/api.js';
import { REPO_ROOT } from './_helpers/paths.js';

test('no shipped declaration file declares a _-prefixed name or keeps an @internal member', () => {
  const files = shippedDeclarations();
  assert.ok(files.length > 50, `${files.length} declaration files`);
  const bad: string[] = [];
  for (const f of files) {
    const at = relative(REPO_ROOT, f);
    for (const n of underscoreNames(f)) bad.push(`${at}: ${n}`);
    // stripInternal drops an @internal declaration with its comment.
    if (readFileSync(f, 'utf8').includes('@internal')) bad.push(`${at}: @internal`);
  }
  assert.deepEqual(bad, []);
});

test("the shipped declarations type-check in a user's strict project, with every export imported", {
  timeout: 120_000,
}, () => {
  // Inside the repository, so `livekexec/...` resolves to this package by its exports.
  const dir = mkdtempSync(join(REPO_ROOT, 'dist', 'api-user-'));
  try {
    const lines = packageEntries().map(
      (e, i) => `import * as m${i} from 'livekexec${e.key.slice(1)}';\nexport { m${i} };`,
    );
    writeFileSync(join(dir, 'user.ts'), `${lines.join('\n')}\n`);
    const tsc = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    execFileSync(
      process.execPath,
      [
        tsc,
        '--noEmit',
        '--strict',
        '--skipLibCheck',
        'false',
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        '--target',
        'es2022',
        '--types',
        'node',
        '--typeRoots',
        join(REPO_ROOT, 'node_modules', '@types'),
        join(dir, 'user.ts'),
      ],
      { cwd: dir, encoding: 'utf8', stdio: 'pipe' },
    );
  } catch (err) {
    const out = (err as { stdout?: string }).stdout;
    assert.fail(out ? `tsc: ${out}` : String(err));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Every file under `dir`, relative to it, with its text. */
function tree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort()) {
    if (!f.endsWith('.md')) continue;
    out.set(f, readFileSync(join(dir, f), 'utf8'));
  }
  return out;
}

test('docs/api is the API reference npm run api generates from the doc comments now', {
  timeout: 300_000,
}, () => {
  const out = mkdtempSync(join(REPO_ROOT, 'dist', 'api-docs-'));
  try {
    execFileSync(
      process.execPath,
      [
        join(REPO_ROOT, 'node_modules', 'typedoc', 'bin', 'typedoc'),
        '--out',
        out,
        '--logLevel',
        'Error',
      ],
      { cwd: REPO_ROOT, encoding: 'utf8', stdio: 'pipe' },
    );
    const fresh = tree(out);
    const committed = tree(join(REPO_ROOT, 'docs', 'api'));
    assert.ok(fresh.size > 10, `${fresh.size} files generated`);
    assert.deepEqual([...committed.keys()], [...fresh.keys()], 'run npm run api');
    for (const [f, text] of fresh) {
      assert.ok(committed.get(f) === text, `docs/api/${f} is stale: run npm run api`);
    }
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    if (e.stdout !== undefined || e.stderr !== undefined) {
      assert.fail(`typedoc: ${e.stdout ?? ''}${e.stderr ?? ''}`);
    }
    throw err;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
