// Removes dist/ before a build: tsc never deletes the output of a source
// that moved or went away, and the test runner would run a stale test.
import { rmSync } from 'node:fs';

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
