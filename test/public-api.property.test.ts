/**
 * Every public entry point refuses bad arguments with livekexec's own typed
 * errors: each exported function, static method and method of every object
 * the API hands out (a machine, a kernel and its subsystems, PKRAM nodes and
 * objects, pools, LUO sessions, FDT readers and writers) is called with
 * arbitrary values, and anything thrown that is not a LivekexecError fails
 * the run. Returning normally is fine: many arbitrary calls are valid.
 *
 * Process-level entry points that create files (boot, MappedDevice.open)
 * are driven with arbitrary options but paths kept inside a temporary
 * directory; methods that would run the test's own process image again
 * (in-place exec of a real process) are not reachable from an emulated kernel.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import * as root from '../src/index.js';
import { LivekexecError } from '../src/index.js';

const MiB = 1024 * 1024;
/** Calls per method (LIVEKEXEC_API_RUNS for a longer run). */
const RUNS = Number(process.env.LIVEKEXEC_API_RUNS ?? 60);
const dir = mkdtempSync(join(tmpdir(), 'lkx-api-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Arbitrary values, with extra weight on the shapes the API takes (folios, ranges, sizes). */
const value: fc.Arbitrary<unknown> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.anything({
      withBigInt: true,
      withTypedArray: true,
      withNullPrototype: true,
      withMap: true,
      withSet: true,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      0,
      1,
      -1,
      2 ** 53,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      -0,
      0.5,
      4096,
      2 ** 32,
    ),
  },
  {
    weight: 2,
    arbitrary: fc.record({ pfn: fc.anything(), order: fc.anything() }, { requiredKeys: [] }),
  },
  {
    weight: 1,
    arbitrary: fc.record(
      { phys: fc.integer(), size: fc.integer(), base: fc.integer(), count: fc.integer() },
      { requiredKeys: [] },
    ),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  { weight: 1, arbitrary: fc.constantFrom(null, undefined, '', 'x', [], {}, () => 1) },
);
const args = fc.array(value, { maxLength: 4 });

/** Calls fn and reports a thrown value (or rejection) that is not a LivekexecError. */
async function untyped(fn: () => unknown): Promise<unknown> {
  try {
    const r = fn();
    if (r instanceof Promise) await r;
    return null;
  } catch (err) {
    return err instanceof LivekexecError ? null : (err ?? new Error(`threw ${String(err)}`));
  }
}

/**
 * TypeScript `private` members, by class name, from the built declarations:
 * they are on the prototype at run time, but no user can call them.
 */
const PRIVATE = (() => {
  const out = new Map<string, Set<string>>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.d.ts')) {
        const text = readFileSync(p, 'utf8');
        const re = /\bclass (\w+)[^{]*\{([\s\S]*?)\n\}/g;
        for (let m = re.exec(text); m !== null; m = re.exec(text)) {
          const names = out.get(m[1]) ?? new Set<string>();
          for (const n of m[2].matchAll(/^\s+private (?:static )?(?:readonly )?(\w+)/gm)) {
            // `private constructor` lands here as 'constructor': `new X` is not the API then.
            names.add(n[1]);
          }
          out.set(m[1], names);
        }
      }
    }
  };
  walk(join(dirname(fileURLToPath(import.meta.url)), '..', 'src'));
  return out;
})();

/** Public method and getter names of an object, up to Object.prototype; internals (`_x`, TS private) left out. */
function methodsOf(o: object): string[] {
  const out = new Set<string>();
  for (
    let p = o;
    p !== null && p !== Object.prototype && p !== Function.prototype;
    p = Object.getPrototypeOf(p)
  ) {
    const owner = (p as { constructor?: { name?: string } }).constructor?.name ?? '';
    const hidden = PRIVATE.get(owner) ?? new Set<string>();
    for (const name of Object.getOwnPropertyNames(p)) {
      if (name === 'constructor' || name.startsWith('_') || hidden.has(name)) continue;
      const d = Object.getOwnPropertyDescriptor(p, name);
      if (d && (typeof d.value === 'function' || d.get !== undefined)) out.add(name);
    }
  }
  return [...out].sort();
}

function call(o: object, name: string, a: unknown[]): unknown {
  const d = findDescriptor(o, name);
  if (d?.get !== undefined && d.value === undefined) return (o as Record<string, unknown>)[name];
  return (o as Record<string, (...x: unknown[]) => unknown>)[name](...a);
}

function findDescriptor(o: object, name: string): PropertyDescriptor | undefined {
  for (let p = o; p !== null; p = Object.getPrototypeOf(p)) {
    const d = Object.getOwnPropertyDescriptor(p, name);
    if (d) return d;
  }
  return undefined;
}

let current: { close(): void } | null = null;

/**
 * The objects a user gets from the API, fresh each time (calls may change or
 * end them). A process has one LiveUpdate at a time: the last world's is closed.
 */
function world(): Record<string, object> {
  try {
    current?.close();
  } catch {
    // Closed already by a call under test.
  }
  const machine = root.Machine.create({ size: 16 * MiB });
  const k = machine.boot('pmpool=8M,1M reserve_mem=64K:4K:trace');
  const node = k.pkram.prepareSave('n');
  const obj = node.prepareSaveObj();
  current = k.liveupdate;
  const session = k.liveupdate.createSession('s');
  const w = new root.fdt.FdtWriter();
  w.finishReservations();
  w.beginNode('');
  w.propertyString('compatible', 'x');
  w.endNode();
  const blob = w.finish();
  return {
    machine,
    kernel: k,
    kho: k.kho,
    pkram: k.pkram,
    pkramNode: node,
    pkramObject: obj,
    pmpools: k.pmpools,
    pmpool: k.pmpool as object,
    kexec: k.kexec,
    liveupdate: k.liveupdate,
    session,
    pages: k.pages,
    memoryMap: k.memoryMap,
    memblock: k.memblock,
    device: k.device,
    fdtReader: root.fdt.Fdt.from(blob),
    fdtWriter: new root.fdt.FdtWriter(),
    fdtEditor: root.fdt.FdtEditor.open(blob),
  };
}

describe('the faults the hostile tester reported, one by one', () => {
  it('Machine.create({ size, nodes: 0 }) is a DeviceError, not a RangeError', () => {
    assert.throws(
      () => root.Machine.create({ size: 16 * MiB, nodes: 0 }),
      (e: unknown) => e instanceof root.DeviceError && e.code === 'EINVAL',
    );
  });

  it('kernel.kho.preserveFolio(null) is a KhoError, not a TypeError', () => {
    const k = root.Machine.create({ size: 16 * MiB }).boot();
    assert.throws(
      () => k.kho.preserveFolio(null as unknown as root.Folio),
      (e: unknown) => e instanceof root.KhoError && e.code === 'EINVAL',
    );
  });

  it('boot(42) is refused before anything is opened or created', async () => {
    await assert.rejects(
      root.boot(42 as unknown as root.ProcessBootOptions),
      (e: unknown) => e instanceof root.KexecError && e.code === 'EINVAL',
    );
  });
});

describe('the public API throws only typed errors (property)', () => {
  const probe = world();
  for (const [label, target] of Object.entries(probe)) {
    for (const name of methodsOf(target)) {
      it(`${label}.${name}`, async () => {
        let w = world();
        await fc.assert(
          fc.asyncProperty(args, async (a) => {
            const err = await untyped(() => call(w[label], name, a));
            // A call that ended the generation (exec, panic) gets a fresh world for the next one.
            if ((w.kernel as root.Kernel).alive === false) w = world();
            noUntyped(err, () => `${label}.${name}(${fmt(a)})`);
          }),
          { numRuns: RUNS },
        );
      });
    }
  }

  it('exported functions and static methods', async () => {
    const statics: [string, (...a: unknown[]) => unknown][] = [];
    for (const [name, v] of Object.entries(root)) {
      if (name === 'boot') continue; // driven below, with paths kept in a temporary directory
      if (typeof v !== 'function') continue;
      if (/^[a-z]/.test(name)) statics.push([name, v as (...a: unknown[]) => unknown]);
      else {
        if (!PRIVATE.get(name)?.has('constructor')) {
          statics.push([`new ${name}`, (...a) => Reflect.construct(v, a)]);
        }
        for (const m of Object.getOwnPropertyNames(v)) {
          const f = (v as unknown as Record<string, unknown>)[m];
          if (
            typeof f === 'function' &&
            !['length', 'name', 'prototype'].includes(m) &&
            !m.startsWith('_')
          ) {
            if (name === 'MappedDevice') continue; // paths: below
            statics.push([
              `${name}.${m}`,
              (...a) => (f as (...x: unknown[]) => unknown).apply(v, a),
            ]);
          }
        }
      }
    }
    for (const [name, v] of Object.entries(root.fdt)) {
      if (typeof v === 'function' && /^[a-z]/.test(name))
        statics.push([`fdt.${name}`, v as (...a: unknown[]) => unknown]);
    }
    for (const [name, fn] of statics) {
      await fc.assert(
        fc.asyncProperty(args, async (a) => {
          const err = await untyped(() => fn(...a));
          noUntyped(err, () => `${name}(${fmt(a)})`);
        }),
        { numRuns: RUNS },
      );
    }
  });

  it('boot() and MappedDevice with arbitrary options, paths inside a temporary directory', async () => {
    // Never a string outside the temporary directory: open({ create }) makes files.
    const path = fc.oneof(
      value.filter((v) => typeof v !== 'string'),
      fc.stringMatching(/^[a-z]{1,8}$/).map((s) => join(dir, s)),
    );
    const options = fc.oneof(
      value,
      fc.record({ device: path, size: value, cmdline: value, create: value }, { requiredKeys: [] }),
    );
    await fc.assert(
      fc.asyncProperty(options, async (o) => {
        const opts =
          o !== null && typeof o === 'object' && !('device' in o)
            ? { ...o, device: join(dir, 'd') }
            : o;
        let kernel: root.Kernel | null = null;
        const err = await untyped(async () => {
          kernel = await root.boot(opts as root.ProcessBootOptions);
        });
        (kernel as root.Kernel | null)?.device.close?.();
        noUntyped(err, () => `boot(${fmt([opts])})`);
      }),
      { numRuns: RUNS },
    );
    for (const m of ['open', 'peek', 'openFd', 'holdIdle'] as const) {
      await fc.assert(
        fc.asyncProperty(path, value, async (p, o) => {
          const err = await untyped(() => {
            const r = (root.MappedDevice[m] as (...x: unknown[]) => unknown)(p, o);
            (r as { close?: () => void; release?: () => void } | undefined)?.close?.();
            (r as { release?: () => void } | undefined)?.release?.();
          });
          noUntyped(err, () => `MappedDevice.${m}(${fmt([p, o])})`);
        }),
        { numRuns: RUNS },
      );
    }
  });
});

function fmt(a: unknown[]): string {
  return a
    .map((x) => fc.stringify(x))
    .join(', ')
    .slice(0, 300);
}

/** Fails with the call and what it threw, formatted only when there is something to report. */
function noUntyped(err: unknown, what: () => string): void {
  if (err !== null)
    assert.fail(`${what()} threw ${err instanceof Error ? err.stack : fc.stringify(err)}`);
}
