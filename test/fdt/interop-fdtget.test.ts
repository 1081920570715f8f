/**
 * Interop with dtc's fdtget (libfdt underneath): for every fixture, every
 * property value, every node's subnode and property lists, and lookups by
 * alias and by name without unit address answer as fdtget does. Runs when
 * fdtget is installed; with LIVEKEXEC_INTEROP=1 its absence is a failure.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Fdt } from '../../src/fdt/index.js';
import { fixture, REPO_ROOT } from '../_helpers/paths.js';
import { INTEROP_REQUIRED } from './_oracle.js';
import { FIXTURES, loadDtb } from './_support.js';

const haveFdtget = spawnSync('fdtget', ['--help'], { stdio: 'ignore' }).error === undefined;
if (!haveFdtget && INTEROP_REQUIRED) {
  throw new Error(
    'LIVEKEXEC_INTEROP=1 but fdtget is missing (apt-get install device-tree-compiler)',
  );
}

/** fdtget's output lines for `fdtget OPTION FIXTURE ARGS...`. */
function fdtget(name: string, [option, ...args]: string[]): string[] {
  const file = fixture('fdt', `${name}.dtb`);
  const out = execFileSync('fdtget', [option!, file, ...args], { maxBuffer: 1 << 26 });
  const lines = out.toString('latin1').split('\n');
  lines.pop();
  return lines;
}

/** How `fdtget -t bx` prints a value: unpadded hex bytes separated by spaces. */
const bx = (v: Uint8Array) => Array.from(v, (b) => b.toString(16)).join(' ');

describe('fixtures', { skip: haveFdtget ? false : 'dtc is not installed' }, () => {
  it('each committed .dtb is what dtc compiles from its .dts today', () => {
    const r = spawnSync('bash', [join(REPO_ROOT, 'scripts', 'build-fixtures.sh'), '--check'], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
  });
});

describe('reader agrees with fdtget', {
  skip: haveFdtget ? false : 'fdtget is not installed',
}, () => {
  for (const name of FIXTURES) {
    it(`${name}: every property value`, () => {
      const fdt = Fdt.from(loadDtb(name));
      const pairs: string[] = [];
      const ours: string[] = [];
      for (const { offset } of fdt.walk()) {
        const path = fdt.getPath(offset);
        if (fdt.pathOffset(path) !== offset) continue; // see 'ambiguous paths' below
        for (const p of fdt.propertyOffsets(offset)) {
          const { name: prop, value } = fdt.getPropertyByOffset(p);
          pairs.push(path, prop);
          ours.push(bx(value));
        }
      }
      assert.ok(ours.length > 0);
      assert.deepEqual(ours, fdtget(name, ['-tbx', ...pairs]));
    });

    it(`${name}: subnode and property lists`, () => {
      const fdt = Fdt.from(loadDtb(name));
      // fdtget -l gives up ("Nested too deep") above 32 levels of descendants.
      const nodes = [...fdt.walk()].filter((e) => name !== 'deep' || e.depth >= 10).slice(0, 60);
      for (const { offset } of nodes) {
        const path = fdt.getPath(offset);
        if (fdt.pathOffset(path) !== offset) continue;
        const kids = [...fdt.subnodes(offset)].map((k) => fdt.getName(k));
        assert.deepEqual(kids, fdtget(name, ['-l', path]), `subnodes of ${path}`);
        const props = [...fdt.propertyOffsets(offset)].map((p) => fdt.getPropertyByOffset(p).name);
        assert.deepEqual(props, fdtget(name, ['-p', path]), `properties of ${path}`);
      }
    });
  }

  it('ambiguous paths: /flash/partition names partition@0, the first match, for both', () => {
    const fdt = Fdt.from(loadDtb('basic'));
    const plain = [...fdt.subnodes(fdt.pathOffset('/flash'))][2]!;
    assert.equal(fdt.getPath(plain), '/flash/partition');
    assert.notEqual(fdt.pathOffset('/flash/partition'), plain);
    assert.deepEqual(
      [bx(fdt.getProp(fdt.pathOffset('/flash/partition'), 'label'))],
      fdtget('basic', ['-tbx', '/flash/partition', 'label']),
    );
  });

  it('lookups by alias and without unit address resolve to the same node', () => {
    for (const [name, path, prop] of [
      ['basic', 'serial0', 'compatible'],
      ['basic', 'eth/mdio/phy', 'reg'],
      ['basic', '/soc/serial', 'reg'],
      ['basic', '/flash/partition', 'label'],
      ['board', 'ethernet0/mdio/ethernet-phy', 'reg'],
      ['board', '/cpus/cpu', 'reg'],
      ['wide', '/bus/dev', 'label'],
    ] as const) {
      const fdt = Fdt.from(loadDtb(name));
      assert.deepEqual(
        [bx(fdt.getProp(fdt.pathOffset(path), prop))],
        fdtget(name, ['-tbx', path, prop]),
        `${name} ${path}`,
      );
    }
  });
});
