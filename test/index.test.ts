import assert from 'node:assert/strict';
import { test } from 'node:test';

test('the package root and every documented subpath export load, as a user imports them', async () => {
  const root = await import('livekexec');
  for (const name of [
    'Machine',
    'Kernel',
    'boot',
    'FdtError',
    'BootError',
    'KexecError',
    'KhoError',
    'PkramError',
    'PmpoolError',
    'LuoError',
    'StatusError',
  ]) {
    assert.ok(name in root, `livekexec exports ${name}`);
  }
  const m = root.Machine.create({ size: 8 * 1024 * 1024 });
  assert.equal(m.boot().generation, 1);
  const subpaths: Record<string, string[]> = {
    'livekexec/fdt': ['Fdt', 'FdtWriter', 'FdtEditor', 'toDts', 'FdtError'],
    'livekexec/memory': ['HeapDevice', 'MappedDevice', 'MemoryMap', 'crc32c'],
    'livekexec/boot': ['Cmdline', 'Memblock', 'encodeBootBlock', 'decodeBootBlock', 'memparse'],
    'livekexec/mm': ['BuddyAllocator'],
    'livekexec/kho': ['Kho', 'KhoRadixTree', 'inspectDeviceHandover', 'checkHandover'],
    'livekexec/pmpool': ['CmaPool'],
    'livekexec/pkram': ['Pkram'],
    'livekexec/luo': ['LiveUpdate'],
    'livekexec/kexec': ['Kexec', 'ProcessPlatform', 'sdNotify'],
    'livekexec/store': ['openStore', 'PreservedStore', 'PreservedMap', 'StoreError'],
  };
  for (const [path, names] of Object.entries(subpaths)) {
    const mod = await import(path);
    for (const n of names) assert.ok(n in mod, `${path} exports ${n}`);
  }
});
