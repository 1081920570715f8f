import { spawnSync } from 'node:child_process';

/** The built src/ file `path` as an import specifier (tests run from dist/test/). */
export function srcUrl(path: string): string {
  return new URL(`../../src/${path}`, import.meta.url).href;
}

/**
 * How much V8's external memory (what it counts towards collecting garbage)
 * grows while `expr` runs, in a fresh process, so that no garbage of this
 * one's can be collected in between. `prelude` (imports, set-up) runs first.
 */
export function externalGrowth(prelude: string, expr: string): number {
  const src = `${prelude}
    const before = process.memoryUsage().external;
    const keep = ${expr};
    process.stdout.write(String(process.memoryUsage().external - before) + (keep ? '' : '!'));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', src], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (r.status !== 0 || !/^-?\d+$/.test(r.stdout))
    throw new Error(`child failed: ${r.stderr}${r.stdout}`);
  return Number(r.stdout);
}
