import { BootError } from '../boot/errors.js';
import {
  CRASHKERNEL,
  defaultEarlyParams,
  describeKhoScratch,
  type EarlyParamValues,
  KHO,
  KHO_SCRATCH,
  PMPOOL,
  RESERVE_MEM,
} from '../boot/params.js';
import type { Fdt } from '../fdt/read.js';
import { KHO_FDT_COMPATIBLE, KHO_RESERVE_MEM_COMPATIBLE } from './abi.js';
import { KhoError } from './errors.js';
import { parseRootFdt } from './root-fdt.js';

/** A successor as far as compatibility goes: its command line and the ABIs it reads. */
export interface SuccessorConfig {
  readonly cmdline: string;
  /**
   * Every `compatible` the successor understands (root and subtrees, newest
   * first per subsystem). Defaults to what this build understands.
   */
  readonly compatibles?: readonly string[];
}

export interface CompatReport {
  /** True when the successor will revive the handover (unknown subtrees only stay preserved). */
  readonly understood: boolean;
  readonly reasons: string[];
  /** What the successor's command line means for this handover (it changes no verdict). */
  readonly notes: string[];
  readonly subtrees: { name: string; compatible: string[]; known: boolean }[];
}

/** The ABIs this build reads; subsystems add theirs with `registerCompatible`. */
const KNOWN = new Set<string>([KHO_FDT_COMPATIBLE, KHO_RESERVE_MEM_COMPATIBLE]);

export function registerCompatible(compatible: string): void {
  KNOWN.add(compatible);
}

export function knownCompatibles(): string[] {
  return [...KNOWN].sort();
}

/**
 * Says, before an upgrade, whether a successor configured as `config` will
 * understand the handover whose root FDT is `rootFdt`: a command line that
 * parses, KHO on, a root ABI it reads. Subtrees it does not know are not a
 * failure: they stay preserved, unclaimed, until freed; they are listed.
 */
export function checkHandover(
  rootFdt: Uint8Array,
  deviceSize: number,
  readSubtree: (name: string) => Fdt | null,
  config: SuccessorConfig,
): CompatReport {
  const known = new Set(config.compatibles ?? KNOWN);
  const reasons: string[] = [];
  const notes: string[] = [];
  let understood = true;
  try {
    const params = defaultEarlyParams().parseAll(config.cmdline);
    if (params.get(KHO) === false) {
      understood = false;
      reasons.push(
        'the successor boots with kho=off: it boots cold and keeps preserved memory reserved',
      );
    }
    for (const why of sizeProblems(params, deviceSize)) {
      understood = false;
      reasons.push(`the successor cannot boot: ${why}`);
    }
    const scratch = params.get(KHO_SCRATCH);
    if (scratch) {
      notes.push(
        `kho_scratch=: ${describeKhoScratch(scratch)}; ignored while the successor revives this handover (it keeps the scratch areas it is handed), used if it boots cold`,
      );
    }
  } catch (err) {
    if (!(err instanceof BootError)) throw err;
    understood = false;
    reasons.push(`the successor's command line is refused: ${err.message}`);
  }
  const subtrees: CompatReport['subtrees'] = [];
  try {
    const root = parseRootFdt(rootFdt, deviceSize);
    if (!known.has(KHO_FDT_COMPATIBLE)) {
      understood = false;
      reasons.push(`the successor does not read ${KHO_FDT_COMPATIBLE}: it disables KHO revival`);
    }
    for (const name of root.subtrees.keys()) {
      let compatible: string[] = [];
      try {
        const f = readSubtree(name);
        compatible = f?.hasProp(0, 'compatible') ? f.getStringList(0, 'compatible') : [];
      } catch (err) {
        reasons.push(`subtree '${name}' cannot be read: ${(err as Error).message}`);
      }
      const isKnown = compatible.some((c) => known.has(c));
      if (!isKnown)
        reasons.push(
          `subtree '${name}' (${compatible.join(', ') || 'no compatible'}) is unknown to the successor: it stays preserved until freed`,
        );
      subtrees.push({ name, compatible, known: isKnown });
    }
  } catch (err) {
    if (!(err instanceof KhoError)) throw err;
    understood = false;
    reasons.push(err.message);
  }
  return { understood, reasons, notes, subtrees };
}

/**
 * Sizes on the command line that cannot fit a device of `deviceSize` bytes:
 * the successor's boot would stop with a BootError (crashkernel= cannot be
 * reserved, a pool or reserve_mem= region cannot be placed).
 */
function sizeProblems(params: EarlyParamValues, deviceSize: number): string[] {
  const out: string[] = [];
  const mib = (n: number) => `${+(n / 1024 ** 2).toFixed(2)} MiB`;
  const device = `the ${mib(deviceSize)} device`;
  const ck = params.get(CRASHKERNEL);
  if (ck && (ck.offset ?? 0) + ck.size > deviceSize) {
    out.push(
      `crashkernel= asks for ${mib(ck.size)}${ck.offset === undefined ? '' : ` at ${mib(ck.offset)}`}, more than ${device}`,
    );
  }
  for (const p of params.getAll(PMPOOL)) {
    if (p.base + p.size > deviceSize) {
      out.push(
        `pmpool=${p.name ? `${p.name}:` : ''} [${mib(p.base)}, +${mib(p.size)}) ends past ${device}`,
      );
    }
  }
  for (const r of params.getAll(RESERVE_MEM)) {
    if (r.size > deviceSize)
      out.push(`reserve_mem= '${r.name}' asks for ${mib(r.size)}, more than ${device}`);
  }
  return out;
}
