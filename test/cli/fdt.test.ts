import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { formatFdtgetValue } from '../../src/cli/fdt.js';
import { runCli } from '../_helpers/cli.js';
import { CLI, fixture } from '../_helpers/paths.js';

const BASIC = fixture('fdt', 'basic.dtb');
const dir = mkdtempSync(join(tmpdir(), 'livekexec-cli-fdt-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function writeTemp(name: string, bytes: Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

describe('livekexec fdt dump', () => {
  test('prints the header, the reservations and the tree as dtc does', () => {
    const r = runCli(['fdt', 'dump', BASIC]);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.deepEqual(lines.slice(0, 6), [
      '/dts-v1/;',
      '',
      '/memreserve/\t0x0000000010000000 0x0000000000004000;',
      '/memreserve/\t0x0000000020000000 0x0000000000100000;',
      '/memreserve/\t0xfffffffff0000000 0x0000000010000000;',
      '/ {',
    ]);
    assert.ok(lines.includes('\tcompatible = "livekexec,basic\\0simple-bus";'));
    assert.ok(lines.includes('\tempty-prop;'));
    assert.ok(lines.includes('\tcells-prop = <0x01 0x02 0x03 0xffffffff>;'));
    assert.ok(lines.includes('\tbytes-prop = [00 01 02 fe ff];'));
    assert.ok(lines.includes('\tmemory@80000000 {'));
    assert.ok(lines.includes('\t\tserial@10000 {'));
    assert.equal(r.stdout.endsWith('};\n'), true);
  });

  test('a truncated blob: FDT_ERR_TRUNCATED first on its line, exit 1, nothing on stdout', () => {
    const blob = readFileSync(BASIC);
    const p = writeTemp('dump-trunc.dtb', blob.subarray(0, blob.length - 10));
    const r = runCli(['fdt', 'dump', p]);
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^FDT_ERR_TRUNCATED: /m);
  });
});

describe('livekexec fdt check', () => {
  test('a valid blob: exit 0 and one OK line', () => {
    const r = runCli(['fdt', 'check', BASIC]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      /^OK: .*version 17, \d+ bytes, 15 nodes, \d+ properties, 3 reservations\n$/,
    );
  });

  test('truncated: FDT_ERR_TRUNCATED first on its line, exit 1', () => {
    const blob = readFileSync(BASIC);
    const p = writeTemp('trunc.dtb', blob.subarray(0, 100));
    const r = runCli(['fdt', 'check', p]);
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^FDT_ERR_TRUNCATED: /m);
  });

  test('bad magic: FDT_ERR_BADMAGIC', () => {
    const blob = new Uint8Array(readFileSync(BASIC));
    blob[0] ^= 0xff;
    const r = runCli(['fdt', 'check', writeTemp('magic.dtb', blob)]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^FDT_ERR_BADMAGIC: /m);
  });

  test('a bad tag in the structure block: FDT_ERR_BADSTRUCTURE', () => {
    const blob = new Uint8Array(readFileSync(BASIC));
    const dv = new DataView(blob.buffer);
    const structOff = dv.getUint32(8);
    // The root's BEGIN_NODE tag becomes an unknown tag.
    dv.setUint32(structOff, 0x77);
    const r = runCli(['fdt', 'check', writeTemp('tag.dtb', blob)]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^FDT_ERR_BADSTRUCTURE: /m);
  });

  test('a missing file is a clear error, exit 1', () => {
    const r = runCli(['fdt', 'check', join(dir, 'no-such.dtb')]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot read .*no-such\.dtb: no such file/);
  });

  test('a directory is a clear error, exit 1', () => {
    const r = runCli(['fdt', 'check', dir]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot read .*: is a directory/);
  });

  test('a FIFO or a character device is refused at once, never read until an end that never comes', () => {
    const fifo = join(dir, 'blob.fifo');
    execFileSync('mkfifo', [fifo]);
    for (const verb of ['check', 'dump']) {
      for (const file of [fifo, '/dev/zero']) {
        const r = spawnSync(process.execPath, [CLI, 'fdt', verb, file], {
          encoding: 'utf8',
          timeout: 10_000,
        });
        assert.equal(r.status, 1, `${verb} ${file}: ${r.signal ?? r.stderr}`);
        assert.equal(r.stdout, '');
        assert.match(r.stderr, /^livekexec fdt: cannot read .*: not a regular file\n$/);
      }
    }
  });

  test('an empty file is too short for a header: FDT_ERR_TRUNCATED', () => {
    const r = runCli(['fdt', 'check', writeTemp('empty.dtb', new Uint8Array(0))]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^FDT_ERR_TRUNCATED: /m);
  });
});

describe('livekexec fdt get', () => {
  const get = (...args: string[]) => runCli(['fdt', 'get', BASIC, ...args]);

  test('a string list is printed space separated', () => {
    const r = get('/', 'compatible');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'livekexec,basic simple-bus\n');
  });

  test('cells are signed decimal, as fdtget prints them', () => {
    assert.equal(get('/', 'cells-prop').stdout, '1 2 3 -1\n');
  });

  test('bytes when the length is not a multiple of 4', () => {
    assert.equal(get('/', 'bytes-prop').stdout, '0 1 2 254 255\n');
  });

  test('an empty property prints an empty line', () => {
    const r = get('/', 'empty-prop');
    assert.equal(r.status, 0);
    assert.equal(r.stdout, '\n');
  });

  test('a unit address may be left out when unambiguous; aliases resolve', () => {
    assert.equal(get('/soc/ethernet', 'reg').stdout, `${0x30000} ${0x1000}\n`);
    assert.equal(get('serial0', 'clock-frequency').stdout, '3686400\n');
  });

  test('a node: its properties, then its subnodes', () => {
    const r = get('/soc@0/ethernet@30000');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'compatible\nreg\nlocal-mac-address\nphy-handle\nmdio\n');
    assert.equal(
      get('/soc@0/ethernet@30000', '-p').stdout,
      'compatible\nreg\nlocal-mac-address\nphy-handle\n',
    );
    assert.equal(get('/soc@0/ethernet@30000', '-l').stdout, 'mdio\n');
  });

  test('no such node: FDT_ERR_NOTFOUND, exit 1', () => {
    const r = get('/nope', 'x');
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^FDT_ERR_NOTFOUND: /m);
  });

  test('no such property: FDT_ERR_NOTFOUND, exit 1', () => {
    const r = get('/', 'nope');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^FDT_ERR_NOTFOUND: /m);
  });

  test('an unknown alias: FDT_ERR_BADPATH, exit 1', () => {
    const r = get('nosuchalias', 'x');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^FDT_ERR_BADPATH: /m);
  });
});

describe('formatFdtgetValue', () => {
  const b = (...x: number[]) => new Uint8Array(x);
  test('an empty chunk makes it not a string', () =>
    assert.equal(formatFdtgetValue(b(0x61, 0, 0, 0x62, 0)), '97 0 0 98 0'));
  test('a tab makes it not a string', () =>
    assert.equal(formatFdtgetValue(b(0x78, 9, 0x79, 0)), '2013886720'));
  test('a lone NUL is a byte', () => assert.equal(formatFdtgetValue(b(0)), '0'));
  test('0x80000000 is negative', () =>
    assert.equal(formatFdtgetValue(b(0x80, 0, 0, 0)), '-2147483648'));
});

describe('formatFdtgetValue on large values', () => {
  test('a 1 MiB string prints whole', () => {
    const v = new Uint8Array(1 << 20).fill(0x61);
    v[v.length - 1] = 0;
    assert.equal(formatFdtgetValue(v).length, v.length - 1);
  });
});
