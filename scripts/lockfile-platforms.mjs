#!/usr/bin/env node
// Makes package-lock.json list every platform package of the dependencies
// that ship native binaries as optional dependencies (@biomejs/biome).
//
// Why: a registry mirror may hold only the packages for some platforms; npm
// then drops the others from the lock file, and `npm ci` refuses a lock file
// that does not list every optional dependency. Listing them with their os,
// cpu and libc lets npm ci check the lock and skip them on other platforms.
// Run it after `npm install` changes the lock file: node scripts/lockfile-platforms.mjs
import { readFileSync, writeFileSync } from 'node:fs';

const LOCK = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(LOCK, 'utf8'));
const check = process.argv.includes('--check');
const missing = [];

for (const [path, entry] of Object.entries(lock.packages)) {
  if (!path.endsWith('node_modules/@biomejs/biome')) continue;
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`;
    if (lock.packages[key]) continue;
    missing.push(name);
    // @biomejs/cli-<os>-<cpu>[-musl]
    const [os, cpu, libc] = name.replace('@biomejs/cli-', '').split('-');
    lock.packages[key] = {
      version,
      cpu: [cpu],
      dev: entry.dev,
      ...(libc ? { libc: [libc] } : {}),
      license: entry.license,
      optional: true,
      os: [os],
      engines: entry.engines,
    };
  }
}

if (check) {
  if (missing.length > 0) {
    console.error(
      `package-lock.json lacks ${missing.join(', ')}: run node scripts/lockfile-platforms.mjs`,
    );
    process.exit(1);
  }
} else if (missing.length > 0) {
  const sorted = {};
  for (const k of Object.keys(lock.packages).sort()) sorted[k] = lock.packages[k];
  lock.packages = sorted;
  writeFileSync(LOCK, `${JSON.stringify(lock, null, 2)}\n`);
  console.log(`added ${missing.length} platform packages to package-lock.json`);
}
