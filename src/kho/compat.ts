import { BootError } from '../boot/errors.js';
import { defaultEarlyParams, KHO } from '../boot/params.js';
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
  let understood = true;
  try {
    const params = defaultEarlyParams().parseAll(config.cmdline);
    if (params.get(KHO) === false) {
      understood = false;
      reasons.push(
        'the successor boots with kho=off: it boots cold and keeps preserved memory reserved',
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
  return { understood, reasons, subtrees };
}
