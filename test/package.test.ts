import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { exportedNames } from './_helpers/api.js';
import { REPO_ROOT } from './_helpers/paths.js';

interface PackageJson {
  bin: Record<string, string>;
  exports: Record<string, string | { types: string; default: string }>;
  dependencies: Record<string, string>;
}

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as PackageJson;
const entries = Object.entries(pkg.exports).flatMap(([key, v]) =>
  typeof v === 'string' ? [] : [{ key, specifier: `livekexec${key.slice(1)}`, ...v }],
);

test('every package export is the bundle, with the names and values of the compiled module', async () => {
  assert.equal(entries.length, 14);
  for (const e of entries) {
    assert.match(e.default, /^\.\/dist\/pkg\/[a-z-]+\.js$/, e.key);
    const bundled = (await import(e.specifier)) as Record<string, unknown>;
    const compiled = (await import(
      pathToFileURL(join(REPO_ROOT, e.types.replace(/\.d\.ts$/, '.js'))).href
    )) as Record<string, unknown>;
    assert.deepEqual(Object.keys(bundled).sort(), Object.keys(compiled).sort(), e.key);
    // Not the compiled module itself: the bundle's own copy.
    if ('Kernel' in compiled) assert.notEqual(bundled.Kernel, compiled.Kernel);
  }
});

/** The names each export offers (values and types): a change to the public API shows here. */
const API: Record<string, string[]> = {
  '.': [
    'BootError',
    'BootErrorCode',
    'BootInfo',
    'BootKind',
    'BootRecord',
    'DeviceError',
    'DeviceErrorCode',
    'DowntimeHistogram',
    'Fdt',
    'FdtError',
    'FdtErrorCode',
    'FdtWriter',
    'Folio',
    'GeneralProtectionFault',
    'HandoverHistory',
    'HandoverOutcome',
    'HeapDevice',
    'Kernel',
    'KernelPlatform',
    'KernelStatus',
    'KernelTrial',
    'KexecError',
    'KexecErrorCode',
    'KexecLoadOptions',
    'KhoError',
    'KhoErrorCode',
    'LastHandover',
    'ListenFd',
    'LivekexecError',
    'LoadedImage',
    'LuoError',
    'LuoErrorCode',
    'LuoSessionStatus',
    'Machine',
    'MachineOptions',
    'MappedDevice',
    'MemoryDevice',
    'MemoryLayout',
    'MemoryRun',
    'PAGE_SIZE',
    'PageAllocError',
    'PageAllocErrorCode',
    'PageCounts',
    'PfnRange',
    'PhysRange',
    'PkramError',
    'PkramErrorCode',
    'PmpoolError',
    'PmpoolErrorCode',
    'ProcessBootOptions',
    'ProcessKernel',
    'PromClientMetric',
    'PublishedStatus',
    'RunKind',
    'StatusError',
    'StatusErrorCode',
    'StatusRange',
    'StoreError',
    'StoreErrorCode',
    'SuccessorStart',
    'TrialOptions',
    'TrialRecord',
    'UpgradeOptions',
    'UpgradeOutcome',
    'UpgradeStatus',
    'boot',
    'defaultDevicePath',
    'defaultRelease',
    'folioPages',
    'folioPhys',
    'folioSize',
    'listenFds',
    'processPlatform',
    'receivedFds',
  ],
  './fdt': [
    'DtsValueType',
    'FDT_ERR',
    'Fdt',
    'FdtEditor',
    'FdtEditorOptions',
    'FdtError',
    'FdtErrorCode',
    'FdtInt',
    'FdtNodeRef',
    'FdtProperty',
    'FdtWriter',
    'FdtWriterOptions',
    'FdtWriterPhase',
    'RegEntry',
    'Reservation',
    'WalkEntry',
    'decodeCells',
    'decodeReg',
    'decodeString',
    'decodeStringList',
    'decodeU32',
    'decodeU64',
    'formatProperty',
    'formatReservation',
    'formatValue',
    'guessValueType',
    'toDts',
  ],
  './fdt/abi': [
    'FDT_BEGIN_NODE',
    'FDT_DEFAULT_ADDRESS_CELLS',
    'FDT_DEFAULT_SIZE_CELLS',
    'FDT_END',
    'FDT_END_NODE',
    'FDT_FIRST_SUPPORTED_VERSION',
    'FDT_LAST_SUPPORTED_VERSION',
    'FDT_MAGIC',
    'FDT_MAX_DEPTH',
    'FDT_MAX_NAME_LEN',
    'FDT_MAX_NCELLS',
    'FDT_MAX_PHANDLE',
    'FDT_NOP',
    'FDT_PROP',
    'FDT_RESERVE_ENTRY_SIZE',
    'FDT_TAGSIZE',
    'FDT_WRITE_LAST_COMP_VERSION',
    'FDT_WRITE_VERSION',
    'HDR_BOOT_CPUID_PHYS',
    'HDR_LAST_COMP_VERSION',
    'HDR_MAGIC',
    'HDR_OFF_DT_STRINGS',
    'HDR_OFF_DT_STRUCT',
    'HDR_OFF_MEM_RSVMAP',
    'HDR_SIZE_DT_STRINGS',
    'HDR_SIZE_DT_STRUCT',
    'HDR_TOTALSIZE',
    'HDR_VERSION',
    'NODE_NAME_CHARS',
    'PROP_NAME_CHARS',
    'alignUp',
    'headerSize',
  ],
  './memory': [
    'DeviceError',
    'DeviceErrorCode',
    'DeviceHeader',
    'DevicePeek',
    'DeviceShrink',
    'E820',
    'E820Type',
    'FormatOptions',
    'GeneralProtectionFault',
    'GuardedRange',
    'HeapDevice',
    'MappedDevice',
    'MappedOpenOptions',
    'MemoryDevice',
    'MemoryMap',
    'MemoryRange',
    'PAGE_SHIFT',
    'PAGE_SIZE',
    'crc32c',
    'e820TypeName',
    'formatDevice',
    'readDeviceHeader',
  ],
  './boot': [
    'BootError',
    'BootErrorCode',
    'Cmdline',
    'CmdlineParam',
    'EarlyParamDef',
    'EarlyParamValues',
    'EarlyParams',
    'FreeRange',
    'Memblock',
    'MemblockRegion',
    'MemparseResult',
    'ParsedCmdline',
    'RegionList',
    'SetupData',
    'defaultEarlyParams',
    'memparse',
    'memparseExact',
    'parameq',
    'parseCmdline',
  ],
  './mm': [
    'BuddyAllocator',
    'BuddyOptions',
    'BuddyStats',
    'Folio',
    'FreeBlock',
    'MAX_PAGE_ORDER',
    'PageAllocError',
    'PageAllocErrorCode',
    'PageHolder',
    'PageOwnership',
    'PageState',
    'PfnRange',
    'ScratchPages',
    'ScratchPagesStats',
    'folioPages',
    'folioPhys',
    'folioSize',
  ],
  './kho': [
    'CompatReport',
    'DeviceHandoverStatus',
    'Kho',
    'KhoBlob',
    'KhoError',
    'KhoErrorCode',
    'KhoInStatus',
    'KhoNotifier',
    'KhoOutStatus',
    'KhoStatus',
    'PageListEntries',
    'PageListView',
    'ReserveMemRegion',
    'ScratchArea',
    'SubtreeOptions',
    'SubtreeStatus',
    'SuccessorConfig',
    'checkHandover',
    'inspectDeviceHandover',
    'knownCompatibles',
    'registerCompatible',
  ],
  './kho/abi': [
    'KHO_BITMAP_BITS',
    'KHO_BITMAP_SHIFT',
    'KHO_BLOB_COMPATIBLES_MAX',
    'KHO_BLOB_COMPATIBLE_MAX',
    'KHO_BLOB_PROP_CSUM',
    'KHO_BLOB_PROP_DATA',
    'KHO_BLOB_PROP_SIZE',
    'KHO_FDT_COMPATIBLE',
    'KHO_FDT_PROP_PRESERVED_MEMORY_CSUM',
    'KHO_FDT_PROP_PRESERVED_MEMORY_MAP',
    'KHO_FDT_PROP_PRESERVED_MEMORY_PAGES',
    'KHO_FDT_PROP_SUBTREE_FDT',
    'KHO_INNER_LEVELS',
    'KHO_KEY_BITS',
    'KHO_MAX_MAP_MARKS',
    'KHO_MAX_ORDER',
    'KHO_NODE_SIZE',
    'KHO_ORDER_0_LOG2',
    'KHO_PAGE_LIST_ENTRIES_PER_CHUNK',
    'KHO_PAGE_LIST_MAGIC',
    'KHO_PAGE_LIST_OFF_COUNT',
    'KHO_PAGE_LIST_OFF_ENTRIES',
    'KHO_PAGE_LIST_OFF_MAGIC',
    'KHO_PAGE_LIST_OFF_NEXT',
    'KHO_PAGE_MAGIC',
    'KHO_RESERVE_MEM_COMPATIBLE',
    'KHO_RESERVE_MEM_SUBTREE',
    'KHO_ROOT_SLOTS_USED',
    'KHO_SCRATCH_ENTRY_SIZE',
    'KHO_SCRATCH_KINDS',
    'KHO_SCRATCH_OFF_PHYS',
    'KHO_SCRATCH_OFF_SIZE',
    'KHO_TABLE_ENTRIES',
    'KHO_TABLE_ENTRY_SIZE',
    'KHO_TABLE_SHIFT',
    'KHO_TREE_DEPTH',
  ],
  './pmpool': [
    'AttachOptions',
    'CheckReport',
    'CmaPool',
    'InspectedPool',
    'PendingIntent',
    'PfnRange',
    'Pmpool',
    'PmpoolError',
    'PmpoolErrorCode',
    'PmpoolOrigin',
    'PmpoolRange',
    'PmpoolStatus',
    'Pmpools',
    'PmpoolsStatus',
    'PoolFormatOptions',
    'PoolOptions',
    'PoolStats',
    'inspectPools',
  ],
  './pkram': [
    'KernelPkram',
    'KernelPkramStatus',
    'LoadedFolio',
    'NodeState',
    'PKRAM_NAME_MAX',
    'Pkram',
    'PkramAttachOptions',
    'PkramError',
    'PkramErrorCode',
    'PkramExpect',
    'PkramNode',
    'PkramNodeInfo',
    'PkramObject',
    'PkramObjectInfo',
    'PkramOptions',
    'PkramPageSource',
    'PkramStaleReason',
    'PkramVia',
    'RelocateResult',
  ],
  './luo': [
    'FileData',
    'FileHandler',
    'FileIdentity',
    'FileLifecycleBound',
    'HandoverFlb',
    'LiveUpdate',
    'LiveUpdateOptions',
    'LuoError',
    'LuoErrorCode',
    'LuoFile',
    'LuoSession',
    'MEMFD_NAME_MAX',
    'MemfdData',
    'NodeProps',
    'SessionDirection',
    'TcpListenerData',
    'UnixListenerData',
    'createMemfd',
    'defaultHandlers',
    'fileHandler',
    'memfdHandler',
    'memfdName',
    'memfdRead',
    'memfdSize',
    'memfdWrite',
    'tcpListenerHandler',
    'unixListenerHandler',
  ],
  './luo/abi': [
    'LUO_COMPATIBLE',
    'LUO_COMPATIBLE_V2',
    'LUO_FD_MAX',
    'LUO_FILE_COMPATIBLE',
    'LUO_FILE_NODE',
    'LUO_FLB_COMPATIBLE_MAX',
    'LUO_FLB_MAX',
    'LUO_FLB_NODE',
    'LUO_HANDLER_COMPATIBLE_MAX',
    'LUO_MEMFD_COMPATIBLE',
    'LUO_SESSION_NAME_MAX',
    'LUO_SESSION_NODE',
    'LUO_SUN_PATH_MAX',
    'LUO_TCP_LISTENER_COMPATIBLE',
    'LUO_U64_MAX',
    'LUO_UNIX_LISTENER_COMPATIBLE',
    'PROP_ADDRESS',
    'PROP_COMPATIBLE',
    'PROP_COUNT',
    'PROP_DATA',
    'PROP_DEV',
    'PROP_FAMILY',
    'PROP_FD',
    'PROP_FD_FLAGS',
    'PROP_INO',
    'PROP_NAME',
    'PROP_PATH',
    'PROP_PORT',
    'PROP_POSITION',
    'PROP_SIZE',
    'PROP_SUN_PATH',
    'PROP_TOKEN',
  ],
  './kexec': [
    'BootCounting',
    'Kexec',
    'KexecCommand',
    'KexecError',
    'KexecErrorCode',
    'KexecHost',
    'KexecLoadOptions',
    'KexecPlatform',
    'LoadedImage',
    'ProcessPlatform',
    'ProcessPlatformOptions',
    'notifyReady',
    'notifyReloading',
    'sdNotify',
  ],
  './store': [
    'Codec',
    'CodecName',
    'OpenStoreOptions',
    'PreservedMap',
    'PreservedMapOptions',
    'PreservedStore',
    'PutOptions',
    'StoreError',
    'StoreErrorCode',
    'StoreKey',
    'StoreStats',
    'bytesCodec',
    'jsonCodec',
    'openStore',
    'openStores',
    'stringCodec',
    'v8Codec',
  ],
};

test('each export offers exactly the pinned names (the public API), the root and every subpath few', () => {
  const names = exportedNames();
  assert.deepEqual(Object.keys(names), Object.keys(API));
  for (const [key, list] of Object.entries(API)) assert.deepEqual(names[key], list, key);
  assert.ok(API['.']!.length <= 80, `the root exports ${API['.']!.length} names`);
  for (const [key, list] of Object.entries(API)) {
    if (key !== '.') assert.ok(list.length <= 40, `${key}: ${list.length}`);
  }
});

test('every error class of the package and its code type are exported from the root', () => {
  const root = API['.']!;
  const errors = root.filter((n) => /^[A-Z]\w*Error$/.test(n) && n !== 'LivekexecError');
  assert.ok(errors.length >= 10, errors.join(' '));
  for (const e of errors) {
    assert.ok(root.includes(`${e}Code`), `${e}Code is not exported from the root`);
  }
  // Every class that extends LivekexecError in the library (src/cli is the
  // command's own, printed by it) is among them.
  const src = join(REPO_ROOT, 'src');
  for (const f of readdirSync(src, { recursive: true, encoding: 'utf8' })) {
    if (!f.endsWith('.ts') || f.startsWith('cli/')) continue;
    for (const m of readFileSync(join(src, f), 'utf8').matchAll(
      /class (\w+) extends LivekexecError/g,
    )) {
      assert.ok(root.includes(m[1]!), `${m[1]} (src/${f}) is not exported from the root`);
    }
  }
});

test('one copy of each class across the exports: an error from a subpath is instanceof the root class', async () => {
  const root = await import('livekexec');
  const kho = await import('livekexec/kho');
  const fdt = await import('livekexec/fdt');
  const memory = await import('livekexec/memory');
  assert.equal(kho.KhoError, root.KhoError);
  assert.equal(fdt.FdtError, root.FdtError);
  assert.equal(root.FdtWriter, fdt.FdtWriter);
  assert.equal(memory.HeapDevice, root.HeapDevice);
  assert.throws(() => fdt.Fdt.from(new Uint8Array(8)), root.FdtError);
  // The class name survives bundling (messages and stack traces show it).
  assert.equal(root.KhoError.name, 'KhoError');
});

test('the bundle requires only Node built-ins and the declared dependencies', () => {
  const text = readFileSync(join(REPO_ROOT, 'dist', 'pkg', 'livekexec.cjs'), 'utf8');
  const specifiers = [
    ...text.matchAll(/\brequire\(\s*"([^"]+)"\s*\)|\bimport\(\s*"([^"]+)"\s*\)/g),
  ].map((m) => m[1] ?? m[2]);
  assert.ok(specifiers.length > 0);
  for (const s of specifiers) {
    assert.ok(
      s?.startsWith('node:') || (s !== undefined && s.split('/')[0]! in pkg.dependencies),
      `the bundle imports ${s}`,
    );
  }
});

/** Runs `code` (an ES module) in a fresh node; its stdout, trimmed. */
function run(code: string, env: NodeJS.ProcessEnv = {}): string {
  return execFileSync(process.execPath, ['--input-type=module', '-e', code], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  }).trim();
}

test("the build's code cache is taken by this node, and the package works without it or with a bad one", () => {
  const probe = `
    const m = await import(${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'dist', 'pkg', 'livekexec.js')).href)});
    const { Machine } = await import('livekexec');
    const k = Machine.create({ size: 8 * 1024 * 1024 }).boot();
    console.log(m.codeCacheState(), k.generation);`;
  assert.equal(run(probe), 'accepted 1');
  assert.equal(run(probe, { LIVEKEXEC_CODE_CACHE: 'off' }), 'off 1');
  // A copy of the package elsewhere: the build's cache names the build's
  // place, so it is not used there; a garbage cache made for the copy's place
  // is refused by V8, and the package compiles as usual.
  const copy = mkdtempSync(join(REPO_ROOT, 'dist', 'pkg-copy-'));
  try {
    cpSync(join(REPO_ROOT, 'dist', 'pkg'), copy, { recursive: true });
    const url = pathToFileURL(join(copy, 'livekexec.js')).href;
    const bad = `
      const m = await import(${JSON.stringify(url)});
      const k = m.part('root').Machine.create({ size: 8 * 1024 * 1024 }).boot();
      console.log(m.codeCacheState(), k.generation);`;
    assert.equal(run(bad), 'foreign 1');
    const built = readFileSync(join(copy, 'livekexec.cache'));
    const line = built.subarray(0, built.indexOf(10) + 1).toString('latin1');
    assert.match(line, / warm .*livekexec\.cjs\n$/);
    const here = line.replace(/ \/.*\n$/, ` ${join(copy, 'livekexec.cjs')}\n`);
    writeFileSync(
      join(copy, 'livekexec.cache'),
      Buffer.concat([Buffer.from(here, 'latin1'), Buffer.alloc(4096, 0x5a)]),
    );
    assert.equal(run(bad), 'rejected 1');
    rmSync(join(copy, 'livekexec.cache'));
    assert.equal(run(bad), 'absent 1');
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
});

test('under --enable-source-maps, stack traces from the package point at src/*.ts', () => {
  const stack = execFileSync(
    process.execPath,
    [
      '--enable-source-maps',
      '--input-type=module',
      '-e',
      `const { Fdt } = await import('livekexec');
       try { Fdt.from(new Uint8Array(8)); } catch (e) { console.log(e.stack); }`,
    ],
    { cwd: REPO_ROOT, encoding: 'utf8' },
  );
  assert.match(stack, /^FdtError: /);
  assert.match(stack.split('\n')[1] ?? '', /\bsrc\/fdt\/header\.ts:\d+:\d+\)$/, stack);
});

test('importing the package loads no node:crypto, node:net, node:child_process, node:zlib or node:stream (a successor needs none to boot)', () => {
  const loaded = run(`
    const before = new Set(process.moduleLoadList);
    await import('livekexec');
    console.log(JSON.stringify(process.moduleLoadList.filter((m) => !before.has(m))));`);
  const added = JSON.parse(loaded) as string[];
  assert.ok(added.length > 0);
  for (const m of [
    'NativeModule crypto',
    'NativeModule net',
    'NativeModule child_process',
    'NativeModule zlib',
    'NativeModule stream',
  ]) {
    assert.ok(!added.includes(m), `${m} was loaded`);
  }
});

test("importing the package root runs the root's modules only: livekexec/store's (and the node:v8 they load) wait for livekexec/store", () => {
  const probe = (specifier: string) =>
    JSON.parse(
      run(`
        const before = new Set(process.moduleLoadList);
        await import('${specifier}');
        console.log(JSON.stringify(process.moduleLoadList.filter((m) => !before.has(m))));`),
    ) as string[];
  assert.ok(!probe('livekexec').includes('NativeModule v8'), 'the root import loaded node:v8');
  assert.ok(probe('livekexec/store').includes('NativeModule v8'));
});

test('the build writes the package when its script is run through a symlinked path', {
  timeout: 60_000,
}, () => {
  // A copy: building rewrites dist/pkg, which other tests import meanwhile.
  const copy = mkdtempSync(join(tmpdir(), 'livekexec-build-'));
  try {
    for (const p of ['package.json', 'scripts', join('dist', 'src')]) {
      cpSync(join(REPO_ROOT, p), join(copy, p), { recursive: true });
    }
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(copy, 'node_modules'));
    symlinkSync(copy, `${copy}-link`);
    execFileSync(process.execPath, [join(`${copy}-link`, 'scripts', 'bundle.mjs')], {
      stdio: 'pipe',
    });
    assert.ok(existsSync(join(copy, 'dist', 'pkg', 'livekexec.cjs')), 'no bundle was written');
  } finally {
    rmSync(`${copy}-link`, { force: true });
    rmSync(copy, { recursive: true, force: true });
  }
});

test('the livekexec bin is executable after a build, so npx livekexec runs it in a clone', () => {
  const bin = pkg.bin.livekexec;
  assert.ok(bin);
  assert.notEqual(statSync(join(REPO_ROOT, bin)).mode & 0o111, 0);
});
