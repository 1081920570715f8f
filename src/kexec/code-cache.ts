/**
 * The package loader's code-cache hook (scripts/pkg/loader.mjs, which puts it
 * on globalThis); absent when livekexec runs from dist/src or under source maps.
 */
interface CodeCacheHook {
  save(warm: boolean): boolean;
}

/**
 * Asks the package loader to write V8's code cache of what this process has
 * compiled, for this node and this install, when it took none as good: a
 * successor then starts without parsing or compiling the boot path. `warm`
 * when this generation booted from a handover (the successor's path is
 * compiled). Runs at kexec load, outside the downtime.
 * @returns whether a cache was written.
 */
export function saveCodeCache(warm: boolean): boolean {
  const hook = (globalThis as Record<symbol, CodeCacheHook | undefined>)[
    Symbol.for('livekexec.codeCache')
  ];
  try {
    return hook?.save(warm) ?? false;
  } catch {
    return false;
  }
}
