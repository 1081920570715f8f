import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Cmdline } from '../../src/boot/cmdline.js';
import { BootError } from '../../src/boot/errors.js';
import {
  CRASHKERNEL,
  defaultEarlyParams,
  EarlyParams,
  KHO,
  KHO_SCRATCH,
  kstrtobool,
  MEMBLOCK,
  MEMMAP,
  PKRAM,
  PKRAM_BAN,
  PMPOOL,
  RESERVE_MEM,
} from '../../src/boot/params.js';
import { E820 } from '../../src/memory/memmap-types.js';

const M = 2 ** 20;
const G = 2 ** 30;

/** Asserts that parsing `text` with the default registry fails with EINVAL naming `param`. */
function refused(text: string, param: string): void {
  assert.throws(
    () => defaultEarlyParams().parseAll(text),
    (e: unknown) => {
      assert.ok(e instanceof BootError, String(e));
      assert.equal(e.code, 'EINVAL');
      assert.equal(e.param, param);
      assert.ok(e.message.startsWith(`${e.code}: ${param}: `), e.message);
      return true;
    },
    text,
  );
}

test('memmap=: usable, reserved, persistent, limit and exactmap, comma-separated and repeated', () => {
  const v = defaultEarlyParams().parseAll(
    'memmap=exactmap,64M@0,16M$1G memmap=4K!0x2000 memmap=2G',
  );
  assert.deepEqual(v.getAll(MEMMAP), [
    {
      exactmap: true,
      entries: [
        { kind: 'add', addr: 0, size: 64 * M, type: E820.USABLE },
        { kind: 'add', addr: G, size: 16 * M, type: E820.RESERVED },
      ],
    },
    {
      exactmap: false,
      entries: [{ kind: 'add', addr: 0x2000, size: 4096, type: E820.RESERVED_KERN }],
    },
    { exactmap: false, entries: [{ kind: 'limit', size: 2 * G }] },
  ]);
  assert.equal(MEMMAP.parse('1M#2M', 'memmap').entries[0].kind, 'add');
  for (const bad of [
    'memmap',
    'memmap=',
    'memmap=x',
    'memmap=0@1M',
    'memmap=1M%2M',
    'memmap=1M@',
    'memmap=1M@2Mx',
    'memmap=1M@0x1fffffffffffff',
    'memmap=1M,,2M',
  ]) {
    refused(bad, 'memmap');
  }
});

test('crashkernel=: size, size@offset, size,high and size,low', () => {
  const p = (t: string) => CRASHKERNEL.parse(t, 'crashkernel');
  assert.deepEqual(p('256M'), { size: 256 * M, placement: 'default' });
  assert.deepEqual(p('64M@16M'), { size: 64 * M, offset: 16 * M, placement: 'default' });
  assert.deepEqual(p('1G,high'), { size: G, placement: 'high' });
  assert.deepEqual(p('128M,low'), { size: 128 * M, placement: 'low' });
  for (const bad of [
    'crashkernel',
    'crashkernel=0',
    'crashkernel=1G-2G:128M',
    'crashkernel=64M@',
    'crashkernel=64M,mid',
    'crashkernel=64M#1G',
  ]) {
    refused(bad, 'crashkernel');
  }
});

test('kho=: kstrtobool forms', () => {
  for (const t of ['on', 'ON', 'y', 'Yes', '1']) assert.equal(kstrtobool(t), true, t);
  for (const t of ['off', 'OfF', 'n', 'no', '0']) assert.equal(kstrtobool(t), false, t);
  assert.equal(defaultEarlyParams().parseAll('kho=on kho=off').get(KHO), false);
  for (const bad of ['kho', 'kho=', 'kho=o', 'kho=true', 'kho=2']) refused(bad, 'kho');
});

test('kho_scratch=: N%, lowmem,global,pernode, and the older global,pernode and global forms', () => {
  const p = (t: string) => KHO_SCRATCH.parse(t, 'kho_scratch');
  assert.deepEqual(p('200%'), { kind: 'scale', percent: 200 });
  assert.deepEqual(p('16M,512M,256M'), {
    kind: 'sizes',
    lowmem: 16 * M,
    global: 512 * M,
    pernode: 256 * M,
    form: 'lowmem,global,pernode',
  });
  assert.deepEqual(p('0,1G,0'), {
    kind: 'sizes',
    lowmem: 0,
    global: G,
    pernode: 0,
    form: 'lowmem,global,pernode',
  });
  // The KHO v3/v4 form (the seed's "kho_scratch=512M,256M"): global and per node, no lowmem area.
  assert.deepEqual(p('512M,256M'), {
    kind: 'sizes',
    lowmem: 0,
    global: 512 * M,
    pernode: 256 * M,
    form: 'global,pernode',
  });
  // The v1/v2 form ("kho_scratch=512M"): one scratch region.
  assert.deepEqual(p('512M'), {
    kind: 'sizes',
    lowmem: 0,
    global: 512 * M,
    pernode: 0,
    form: 'global',
  });
  // Dashes and underscores are one name.
  assert.deepEqual(defaultEarlyParams().parseAll('kho-scratch=50%').get(KHO_SCRATCH), {
    kind: 'scale',
    percent: 50,
  });
  for (const bad of [
    'kho_scratch=%',
    'kho_scratch=x%',
    'kho_scratch=4294967296%',
    'kho_scratch=12345678901%',
    'kho_scratch=0,2M',
    'kho_scratch=1M,0',
    'kho_scratch=0',
    'kho_scratch=1M,2Mx',
    'kho_scratch=1Mx',
    'kho_scratch=0,0,0',
    'kho_scratch=1M,2M,3M,4M',
    'kho_scratch=1M,2M,3Mx',
  ]) {
    refused(bad, 'kho_scratch');
  }
});

test('reserve_mem=: size:align:name, align raised to 64, names 1..15 and unique, at most 8', () => {
  const v = defaultEarlyParams().parseAll('reserve_mem=2M:4096:trace reserve_mem=12K:0:oops');
  assert.deepEqual(v.getAll(RESERVE_MEM), [
    { size: 2 * M, align: 4096, name: 'trace' },
    { size: 12 * 1024, align: 64, name: 'oops' },
  ]);
  assert.equal(RESERVE_MEM.parse('1M:4K:abcdefghijklmno', 'reserve_mem').name.length, 15);
  for (const bad of [
    'reserve_mem=0:4K:a',
    'reserve_mem=1M',
    'reserve_mem=1M:4K',
    'reserve_mem=1M:4K:',
    'reserve_mem=1M:3000:a',
    'reserve_mem=1M:4K:abcdefghijklmnop',
    '"reserve_mem=1M:4K:   "',
    'reserve_mem=1M:4K:a reserve_mem=2M:4K:a',
    Array.from({ length: 9 }, (_, i) => `reserve_mem=1M:4K:r${i}`).join(' '),
  ]) {
    refused(bad, 'reserve_mem');
  }
});

test('pmpool=: base,size and name:base,size, repeatable with distinct names', () => {
  const v = defaultEarlyParams().parseAll('pmpool=1G,256M pmpool=db:0x80000000,64M');
  assert.deepEqual(v.getAll(PMPOOL), [
    { base: G, size: 256 * M },
    { name: 'db', base: 2 * G, size: 64 * M },
  ]);
  for (const bad of [
    'pmpool=1G',
    'pmpool=1G,0',
    'pmpool=:1G,1M',
    'pmpool=a/b:1G,1M',
    'pmpool=1G,1Mx',
    'pmpool=a:1G,1M pmpool=a:2G,1M',
  ]) {
    refused(bad, 'pmpool');
  }
});

test('pkram=: a hex pfn', () => {
  assert.deepEqual(PKRAM.parse('1a2b', 'pkram'), { pfn: 0x1a2b, addr: 0x1a2b * 4096 });
  assert.deepEqual(PKRAM.parse('0x10', 'pkram'), { pfn: 16, addr: 65536 });
  for (const bad of ['pkram', 'pkram=', 'pkram=xyz', 'pkram=0x', 'pkram=20000000000', 'pkram=-1'])
    refused(bad, 'pkram');
});

test('pkram_ban=: size@addr, repeatable', () => {
  const v = defaultEarlyParams().parseAll('pkram_ban=1M@2G pkram_ban=4K@0');
  assert.deepEqual(v.getAll(PKRAM_BAN), [
    { size: M, addr: 2 * G },
    { size: 4096, addr: 0 },
  ]);
  for (const bad of ['pkram_ban=1M', 'pkram_ban=0@1M', 'pkram_ban=1M@', 'pkram_ban=1M$2G'])
    refused(bad, 'pkram_ban');
});

test('memblock=debug', () => {
  assert.deepEqual(defaultEarlyParams().parseAll('memblock=debug').get(MEMBLOCK), { debug: true });
  refused('memblock=verbose', 'memblock');
  refused('memblock', 'memblock');
});

test('absent parameters give undefined and []; unknown ones stay for the program', () => {
  const reg = defaultEarlyParams();
  const cl = Cmdline.parse('quiet kho=y app.mode=fast -- serve');
  const v = reg.parseAll(cl);
  assert.equal(v.get(CRASHKERNEL), undefined);
  assert.deepEqual(v.getAll(RESERVE_MEM), []);
  assert.ok(v.has(KHO) && !v.has(PMPOOL));
  assert.deepEqual(
    reg.unknown(cl).map((q) => q.name),
    ['quiet', 'app.mode'],
  );
});

test('a subsystem registers its own parameter; a parser that throws is wrapped as EINVAL naming it', () => {
  const reg = new EarlyParams();
  const LOGLEVEL = reg.register({
    name: 'log_level',
    parse(value) {
      const n = Number(value);
      if (!Number.isInteger(n)) throw new Error('not an integer');
      return n;
    },
  });
  assert.equal(reg.parseAll('log-level=3').get(LOGLEVEL), 3);
  assert.throws(
    () => reg.parseAll('log_level=x'),
    (e: unknown) => e instanceof BootError && e.code === 'EINVAL' && e.param === 'log_level',
  );
  assert.throws(
    () => reg.register({ name: 'log-level', parse: () => 0 }),
    (e: unknown) => e instanceof BootError && e.code === 'EINVAL',
  );
  // The last occurrence wins, but every occurrence is checked.
  assert.throws(() => reg.parseAll('log_level=x log_level=4'), BootError);
});
