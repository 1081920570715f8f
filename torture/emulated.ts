/**
 * The corruption families on the emulated machine: a predecessor preserves a
 * scenario and execs; at the moment the platform would start the successor
 * (the handover committed, nothing booted yet) the device is copied. Each
 * case boots a successor on a copy with one fault in one metadata region of
 * its family, then checks it (check.ts).
 */
import { closeSync } from 'node:fs';
import type { Kernel } from '../src/kernel/kernel.js';
import type { LoadedImage } from '../src/kexec/kexec.js';
import { Machine } from '../src/machine.js';
import type { MemoryDevice } from '../src/memory/device.js';
import { checkSuccessor } from './check.js';
import { damage } from './damage.js';
import { type CaseResult, describeError, typed, Verdict } from './outcome.js';
import { metadataRegions, type Region } from './regions.js';
import { hash32, Rng } from './rng.js';
import {
  CMDLINE,
  DEVICE_SIZE,
  type Manifest,
  populate,
  scenarioSeed,
  USER_SUBTREES,
} from './scenario.js';

interface Snapshot {
  seed: number;
  image: Uint8Array;
  loaded: LoadedImage;
  manifest: Manifest;
  regions: Region[];
}

let cached: Snapshot | null = null;

/** The committed, not yet booted handover of scenario `seed` (the last one is kept). */
function snapshot(seed: number): Snapshot {
  if (cached?.seed === seed) return cached;
  if (cached?.manifest.luo) closeSync(cached.manifest.luo.fd);
  cached = null;
  const m = Machine.create({ size: DEVICE_SIZE });
  const k = m.boot(CMDLINE);
  const manifest = populate(k, seed);
  let taken: { image: Uint8Array; loaded: LoadedImage } | null = null;
  const execute = m.execute.bind(m);
  m.execute = (image: LoadedImage): Kernel => {
    taken = { image: m.device.bytes(0, DEVICE_SIZE).slice(), loaded: image };
    return execute(image);
  };
  k.kexec.load({ cmdline: CMDLINE });
  const next = k.kexec.exec();
  // The suite is only as good as its undamaged case: it must restore everything.
  try {
    const base = checkSuccessor(next, manifest, { sameFd: true });
    if (base.outcome !== 'full')
      throw new Error(`undamaged handover of scenario ${seed}: ${base.outcome}: ${base.detail}`);
  } finally {
    next.retire('the fault suite');
  }
  const got = taken as { image: Uint8Array; loaded: LoadedImage } | null;
  if (!got) throw new Error('kexec exec never reached the platform');
  const copy = Machine.create({ size: DEVICE_SIZE });
  copy.device.bytes(0, DEVICE_SIZE).set(got.image);
  cached = {
    seed,
    image: got.image,
    loaded: got.loaded,
    manifest,
    regions: metadataRegions(copy.device, USER_SUBTREES),
  };
  return cached;
}

/** Case `index` of corruption family `family` in the run of `runSeed`. */
export function runEmulatedCase(family: string, runSeed: number, index: number): CaseResult {
  const rng = new Rng(hash32(runSeed, family, index));
  return bootFaulted(scenarioSeed(runSeed, index), (device, snap) => {
    const regions = snap.regions.filter((r) => r.family === family);
    if (regions.length === 0) throw new Error(`scenario ${snap.seed} has no ${family} region`);
    return damage(device, rng.pick(regions), rng);
  });
}

/**
 * Boots a successor on scenario `seed`'s committed handover after `fault`
 * changed the device (it returns what it did), and checks it against the
 * manifest `fault` was given (a copy: a test may change what is expected).
 */
export function bootFaulted(
  seed: number,
  fault: (
    device: MemoryDevice,
    snap: { seed: number; manifest: Manifest; regions: Region[] },
  ) => string,
): CaseResult {
  const snap = snapshot(seed);
  const m = Machine.create({ size: DEVICE_SIZE });
  m.device.bytes(0, DEVICE_SIZE).set(snap.image);
  const manifest = structuredClone(snap.manifest);
  const what = fault(m.device, { seed: snap.seed, manifest, regions: snap.regions });
  return bootAndCheck(m, snap.loaded, manifest, what);
}

function bootAndCheck(
  m: Machine,
  loaded: LoadedImage,
  manifest: Manifest,
  fault: string,
): CaseResult {
  let kernel: Kernel;
  try {
    kernel = m.execute(loaded);
  } catch (err) {
    return { outcome: typed(err) ? 'refused' : 'untyped', fault, detail: describeError(err) };
  }
  try {
    return { ...checkSuccessor(kernel, manifest, { sameFd: true }), fault };
  } catch (err) {
    if (err instanceof Verdict) return { outcome: err.outcome, fault, detail: err.message };
    // A typed error outside a restore (the pool or the page allocator refusing): still typed.
    if (typed(err)) return { outcome: 'partial', fault, detail: describeError(err) };
    return { outcome: 'untyped', fault, detail: describeError(err) };
  } finally {
    kernel.retire('the next case');
  }
}
