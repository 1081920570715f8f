/**
 * README's table of the `livekexec` command names every verb and every
 * option the CLI has.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/program.js';
import { REPO_ROOT } from '../_helpers/paths.js';

/** Each usage in the verb column: "livekexec pkram rm NAME --device PATH", ... */
function usages(): string[] {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const out: string[] = [];
  for (const line of readme.split('\n')) {
    if (!line.startsWith('| `livekexec')) continue;
    const cell = line.split(' | ')[0].slice(2);
    for (const part of cell.split(' / ')) {
      const u = part.replaceAll('`', '').replaceAll('\\|', '|').trim();
      out.push(u.startsWith('livekexec') ? u : `livekexec ${u}`);
    }
  }
  return out;
}

function leaves(cmd: Command, path: string[]): { path: string; cmd: Command }[] {
  const subs = cmd.commands.filter((c) => c.name() !== 'help');
  if (subs.length === 0) return [{ path: path.join(' '), cmd }];
  return subs.flatMap((c) => leaves(c, [...path, c.name()]));
}

test('README lists every verb of the livekexec command with all its options', () => {
  const rows = usages();
  for (const { path, cmd } of leaves(buildProgram(), ['livekexec'])) {
    const row = rows.find((u) => u === path || u.startsWith(`${path} `));
    assert.ok(row, `no README row for ${path}`);
    for (const opt of cmd.options) {
      if (opt.long === '--help') continue;
      const shown =
        (opt.long !== undefined && row.includes(opt.long)) ||
        (opt.short !== undefined && new RegExp(`(^|[ [|])${opt.short}\\b`).test(row));
      assert.ok(shown, `${path}: README does not show ${opt.long ?? opt.short}`);
    }
  }
});
