/**
 * The writer and the editor against libfdt itself: a small C driver, linked
 * with -lfdt, runs the same calls as the TypeScript side (fdt_create ...
 * fdt_finish, fdt_open_into, fdt_setprop, fdt_add_subnode, ...), and both
 * must return the same codes and leave byte-identical blobs.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { FDT_ERR } from '../../src/fdt/errors.js';
import { FdtEditor, FdtError, FdtWriter } from '../../src/fdt/index.js';
import { libfdtCheckFull, requireTools, scratchDir, skipUnless } from './_libfdt.js';
import { loadDtb, MODERN_FIXTURES } from './_support.js';

// One command per line; prints each call's return code, and the blob on "dump".
const DRIVER_C = `#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libfdt.h>

static unsigned char *cur;
static size_t curlen;
static unsigned char val[1 << 16];

static int unhex(const char *h, unsigned char *out)
{
	if (!h || strcmp(h, "-") == 0)
		return 0;
	int n = strlen(h) / 2;
	for (int i = 0; i < n; i++)
		sscanf(h + 2 * i, "%2hhx", &out[i]);
	return n;
}

int main(void)
{
	static char line[1 << 20];
	while (fgets(line, sizeof line, stdin)) {
		line[strcspn(line, "\\n")] = 0;
		char *cmd = strtok(line, " ");
		char *a = strtok(NULL, " ");
		char *b = strtok(NULL, " ");
		char *c = strtok(NULL, " ");
		int rc = 0, off;
		if (!cmd)
			continue;
		if (!strcmp(cmd, "dump")) {
			size_t n = fdt_totalsize(cur);
			printf("blob ");
			for (size_t i = 0; i < n && i < curlen; i++)
				printf("%02x", cur[i]);
			printf("\\n");
			continue;
		}
		if (!strcmp(cmd, "create")) {
			curlen = strtoul(a, NULL, 0);
			free(cur);
			cur = calloc(1, curlen + 8);
			rc = fdt_create(cur, curlen);
		} else if (!strcmp(cmd, "rsv"))
			rc = fdt_add_reservemap_entry(cur, strtoull(a, NULL, 0), strtoull(b, NULL, 0));
		else if (!strcmp(cmd, "finishrsv"))
			rc = fdt_finish_reservemap(cur);
		else if (!strcmp(cmd, "begin"))
			rc = fdt_begin_node(cur, a ? a : "");
		else if (!strcmp(cmd, "prop")) {
			int n = unhex(b, val);
			rc = fdt_property(cur, a, val, n);
		} else if (!strcmp(cmd, "end"))
			rc = fdt_end_node(cur);
		else if (!strcmp(cmd, "finish"))
			rc = fdt_finish(cur);
		else if (!strcmp(cmd, "load")) {
			curlen = strlen(a) / 2;
			free(cur);
			cur = calloc(1, curlen + 8);
			unhex(a, cur);
		} else if (!strcmp(cmd, "open")) {
			size_t n = strtoul(a, NULL, 0);
			unsigned char *nb = calloc(1, n + 8);
			rc = fdt_open_into(cur, nb, n);
			if (rc == 0) {
				free(cur);
				cur = nb;
				curlen = n;
			} else
				free(nb);
		} else if (!strcmp(cmd, "pack"))
			rc = fdt_pack(cur);
		else if (!strcmp(cmd, "addrsv"))
			rc = fdt_add_mem_rsv(cur, strtoull(a, NULL, 0), strtoull(b, NULL, 0));
		else if (!strcmp(cmd, "delrsv"))
			rc = fdt_del_mem_rsv(cur, atoi(a));
		else if ((off = fdt_path_offset(cur, a)) < 0)
			rc = off;
		else if (!strcmp(cmd, "setprop")) {
			int n = unhex(c, val);
			rc = fdt_setprop(cur, off, b, val, n);
		} else if (!strcmp(cmd, "appendprop")) {
			int n = unhex(c, val);
			rc = fdt_appendprop(cur, off, b, val, n);
		} else if (!strcmp(cmd, "delprop"))
			rc = fdt_delprop(cur, off, b);
		else if (!strcmp(cmd, "addnode")) {
			rc = fdt_add_subnode(cur, off, b);
			if (rc > 0)
				rc = 0;
		} else if (!strcmp(cmd, "delnode"))
			rc = fdt_del_node(cur, off);
		else if (!strcmp(cmd, "setname"))
			rc = fdt_set_name(cur, off, b);
		else {
			fprintf(stderr, "unknown command %s\\n", cmd);
			return 2;
		}
		printf("%d\\n", rc);
	}
	return 0;
}
`;

const skip = skipUnless(['libfdt']);
let driver = '';

function runDriver(script: string[]): string[] {
  const r = spawnSync(driver, [], { input: `${script.join('\n')}\n`, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`driver failed: ${r.stderr}`);
  return r.stdout.trimEnd().split('\n');
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex') || '-';
const unhex = (h: string): Uint8Array =>
  h === '-' ? new Uint8Array(0) : new Uint8Array(Buffer.from(h, 'hex'));

/** The same script through FdtWriter / FdtEditor: the codes and dumps the driver prints. */
function runOurs(script: string[], stopAtError = false): string[] {
  const out: string[] = [];
  let w: FdtWriter | undefined;
  let cur: Uint8Array = new Uint8Array(0);
  for (const line of script) {
    const [cmd, a = '', b = '', c = '-'] = line.split(' ');
    if (cmd === 'dump') {
      const total = new DataView(cur.buffer, cur.byteOffset).getUint32(4);
      out.push(`blob ${Buffer.from(cur.subarray(0, total)).toString('hex')}`);
      continue;
    }
    try {
      const ed = (): FdtEditor => FdtEditor.open(cur);
      switch (cmd) {
        case 'create':
          w = new FdtWriter({ capacity: Number(a), fixed: true });
          break;
        case 'rsv':
          w!.addReservation(BigInt(a), BigInt(b));
          break;
        case 'finishrsv':
          w!.finishReservations();
          break;
        case 'begin':
          w!.beginNode(a);
          break;
        case 'prop':
          w!.property(a, unhex(b));
          break;
        case 'end':
          w!.endNode();
          break;
        case 'finish':
          cur = w!.finish();
          break;
        case 'load':
          cur = unhex(a);
          break;
        case 'open':
          cur = FdtEditor.openInto(cur, Number(a)).buffer;
          break;
        case 'pack':
          ed().pack();
          break;
        case 'addrsv':
          ed().addReservation(BigInt(a), BigInt(b));
          break;
        case 'delrsv':
          ed().delReservation(Number(a));
          break;
        case 'setprop':
          ed().setProp(a, b, unhex(c));
          break;
        case 'appendprop':
          ed().appendProp(a, b, unhex(c));
          break;
        case 'delprop':
          ed().delProp(a, b);
          break;
        case 'addnode':
          ed().addSubnode(a, b);
          break;
        case 'delnode':
          ed().delNode(a);
          break;
        case 'setname':
          ed().setName(a, b);
          break;
        default:
          throw new Error(`unknown command ${cmd}`);
      }
      out.push('0');
    } catch (e) {
      if (!(e instanceof FdtError)) throw e;
      out.push(String(-FDT_ERR[e.code]));
      if (stopAtError) break;
    }
  }
  return out;
}

/** Both sides agree on every code and every dump. */
function sameAsLibfdt(script: string[]): void {
  assert.deepEqual(runOurs(script), runDriver(script), script.join('\n'));
}

const nodeNames = ['a', 'b@1', 'c', 'd@2', 'ee'];
const propNames = ['reg', 'compatible', 'phandle', 'linux,phandle', 'p', 'status'];
const paths = ['/', '/a', '/b@1', '/b', '/a/c', '/b@1/d@2', '/ee', '/nope'];
const value = fc.uint8Array({ maxLength: 10 }).map(hex);

/** A sequential-write script for a random tree (names from small pools so they repeat). */
const swScript = fc
  .tuple(
    fc.array(fc.tuple(fc.bigInt(0n, 2n ** 64n - 1n), fc.bigInt(1n, 2n ** 64n - 1n)), {
      maxLength: 2,
    }),
    fc.array(
      fc.oneof(
        fc.tuple(fc.constant('prop'), fc.constantFrom(...propNames), value),
        fc.tuple(fc.constant('begin'), fc.constantFrom(...nodeNames), fc.constant('')),
        fc.tuple(fc.constant('end'), fc.constant(''), fc.constant('')),
      ),
      { maxLength: 30 },
    ),
  )
  .map(([rsv, body]) => {
    const lines = ['create 65536', ...rsv.map(([a, s]) => `rsv ${a} ${s}`), 'finishrsv', 'begin'];
    let depth = 1;
    for (const [op, x, y] of body) {
      if (op === 'end') {
        if (depth > 1) {
          lines.push('end');
          depth--;
        }
      } else if (op === 'begin') {
        lines.push(`begin ${x}`);
        depth++;
      } else lines.push(`prop ${x} ${y}`);
    }
    while (depth-- > 0) lines.push('end');
    lines.push('finish', 'dump');
    return lines;
  });

const rwOp = fc.oneof(
  fc
    .tuple(fc.constantFrom(...paths), fc.constantFrom(...propNames), value)
    .map(([p, n, v]) => `setprop ${p} ${n} ${v}`),
  fc
    .tuple(fc.constantFrom(...paths), fc.constantFrom(...propNames), value)
    .map(([p, n, v]) => `appendprop ${p} ${n} ${v}`),
  fc
    .tuple(fc.constantFrom(...paths), fc.constantFrom(...propNames))
    .map(([p, n]) => `delprop ${p} ${n}`),
  fc
    .tuple(fc.constantFrom(...paths), fc.constantFrom(...nodeNames))
    .map(([p, n]) => `addnode ${p} ${n}`),
  fc.constantFrom(...paths.slice(1)).map((p) => `delnode ${p}`),
  fc
    .tuple(fc.constantFrom(...paths.slice(1)), fc.constantFrom(...nodeNames))
    .map(([p, n]) => `setname ${p} ${n}`),
  fc
    .tuple(fc.bigInt(0n, 2n ** 64n - 1n), fc.bigInt(1n, 2n ** 64n - 1n))
    .map(([a, s]) => `addrsv ${a} ${s}`),
  fc.nat(3).map((i) => `delrsv ${i}`),
  fc.constant('pack'),
  fc.integer({ min: 0, max: 1500 }).map((n) => `open ${n}`),
);

describe('writer and editor against libfdt', { skip }, () => {
  before(() => {
    requireTools(['libfdt']);
    const dir = scratchDir('drv');
    writeFileSync(join(dir, 'driver.c'), DRIVER_C);
    driver = join(dir, 'driver');
    execFileSync('cc', ['-O2', '-o', driver, join(dir, 'driver.c'), '-lfdt']);
  });

  it('FdtWriter output is byte-identical to libfdt sw for random trees', () => {
    fc.assert(fc.property(swScript, sameAsLibfdt), { numRuns: 150 });
  });

  it('FdtWriter hits NOSPACE at the same call as fdt_create with a small buffer', () => {
    const body = [
      'rsv 4096 8192',
      'finishrsv',
      'begin',
      'prop compatible 6b686f2d763100',
      'begin node@1',
      'prop reg 00000001',
      'prop linux,phandle 00000002',
      'prop phandle 00000002',
      'end',
      'end',
      'finish',
    ];
    for (let size = 0; size <= 260; size += 4) {
      // Stop at the first failure: after it libfdt writes on, and our stricter state machine would not.
      const full = [`create ${size}`, ...body];
      const ours = runOurs(full, true);
      const stop = ours.findIndex((rc) => rc !== '0');
      const script = stop < 0 ? [...full, 'dump'] : full.slice(0, stop + 1);
      sameAsLibfdt(script);
    }
  });

  it('FdtEditor edits are byte-identical to libfdt rw, codes included', () => {
    fc.assert(
      fc.property(
        swScript,
        fc.integer({ min: 0, max: 800 }),
        fc.array(rwOp, { maxLength: 25 }),
        (sw, room, ops) => {
          const blob = runOurs(sw).at(-1)!.slice('blob '.length);
          const start = [`load ${blob}`, `open ${blob.length / 2 + room}`];
          sameAsLibfdt([...start, ...ops.flatMap((o) => [o, 'dump'])]);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('edits dtc-built fixtures the same way, v16 included', () => {
    for (const name of MODERN_FIXTURES) {
      const blob = hex(loadDtb(name));
      sameAsLibfdt([
        `load ${blob}`,
        'setprop / p 01', // no room yet: NOSPACE (or BADVERSION for v16)
        `open ${blob.length / 2 + 512}`,
        'setprop / p 0102',
        'addnode / zz',
        'setprop /zz reg 0000000100000002',
        'addrsv 4096 4096',
        'delnode /zz',
        'delrsv 0',
        'pack',
        'dump',
      ]);
    }
  });

  it('every edited blob passes libfdt fdt_check_full', () => {
    const samples = fc.sample(fc.tuple(swScript, fc.array(rwOp, { maxLength: 15 })), 60);
    const blobs: Uint8Array[] = [];
    for (const [sw, ops] of samples) {
      const blob = runOurs(sw).at(-1)!.slice('blob '.length);
      const out = runOurs([`load ${blob}`, 'open 4096', ...ops, 'dump']);
      blobs.push(unhex(out.at(-1)!.slice('blob '.length)));
    }
    assert.deepEqual(
      libfdtCheckFull(...blobs),
      blobs.map(() => 'OK'),
    );
  });
});
