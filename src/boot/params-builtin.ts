import { hex } from '../base/hex.js';
import { E820, type E820Type } from '../memory/memmap-types.js';
import { BootError } from './errors.js';
import { memparse, memparseExact } from './memparse.js';
import type { EarlyParamDef } from './params.js';

/**
 * The built-in early parameters, each a pure parser returning a typed value.
 * Forms follow the kernel where it has the parameter; where we differ (or the
 * parameter is ours) the comment says so. Every bad value is BootError EINVAL
 * naming the parameter.
 */

const LIMIT = Number.MAX_SAFE_INTEGER;

function bad(name: string, message: string): never {
  throw new BootError('EINVAL', message, name);
}

function need(value: string | undefined, name: string): string {
  if (value === undefined || value === '') bad(name, 'needs a value');
  return value;
}

/** `addr + size` must stay exact (at most 2^53 - 1). */
function checkEnd(addr: number, size: number, name: string): void {
  if (addr + size > LIMIT) bad(name, `range ${hex(addr)}+${hex(size)} ends past 2^53`);
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && Number.isSafeInteger(n) && 2 ** Math.round(Math.log2(n)) === n;
}

// ---------------------------------------------------------------- memmap=

export type MemmapEntry =
  /** `nn@ss` (usable), `nn$ss` / `nn#ss` (reserved), `nn!ss` (reserved by kernel). */
  | { readonly kind: 'add'; readonly base: number; readonly size: number; readonly type: E820Type }
  /** A bare `nn`: no usable memory at or above nn (the kernel's mem= limit form). */
  | { readonly kind: 'limit'; readonly size: number };

export interface MemmapValue {
  /** `exactmap`: the given entries replace the map instead of editing it. */
  readonly exactmap: boolean;
  readonly entries: readonly MemmapEntry[];
}

const MEMMAP_TYPES: Record<string, E820Type> = {
  '@': E820.USABLE,
  $: E820.RESERVED,
  // ACPI data (the kernel's E820_TYPE_ACPI) means nothing here: keep it reserved.
  '#': E820.RESERVED,
  // The kernel's E820_TYPE_PRAM (persistent memory) is memory kept across
  // boots and never given to the page allocator: our "reserved by kernel".
  '!': E820.RESERVED_KERN,
};

/**
 * `memmap=` as arch/x86 parse_memmap_opt(): comma-separated items, each
 * `exactmap`, `nn[KMG]`, or `nn[KMG]{@,$,#,!}ss[KMG]`. Unlike the kernel, a
 * zero size and trailing text are errors, and the `%` retyping form is not
 * supported. Repeatable; the occurrences apply in order.
 */
export const MEMMAP: EarlyParamDef<MemmapValue> = {
  name: 'memmap',
  repeatable: true,
  parse(value, name) {
    const items = need(value, name).split(',');
    let exactmap = false;
    const entries: MemmapEntry[] = [];
    for (const item of items) {
      if (item === 'exactmap') {
        exactmap = true;
        continue;
      }
      const { value: size, rest } = memparse(item, name);
      if (size === 0) bad(name, `'${item}': size is zero`);
      if (rest === '') {
        entries.push({ kind: 'limit', size });
        continue;
      }
      const type = MEMMAP_TYPES[rest[0]];
      if (type === undefined) bad(name, `'${item}': expected @, $, # or ! after the size`);
      const addr = memparseExact(rest.slice(1), name);
      checkEnd(addr, size, name);
      entries.push({ kind: 'add', base: addr, size, type });
    }
    return { exactmap, entries };
  },
};

// ---------------------------------------------------------------- crashkernel=

export interface CrashkernelValue {
  readonly size: number;
  /** Fixed placement from `size@offset`; otherwise memblock chooses. */
  readonly offset?: number;
  /** `size,high` / `size,low` as on x86; `'default'` for the other forms. */
  readonly placement: 'default' | 'high' | 'low';
}

/**
 * `crashkernel=size[KMG][@offset[KMG]]`, `crashkernel=size,high` and
 * `crashkernel=size,low`. The range form (`range:size,...`) is not supported.
 */
export const CRASHKERNEL: EarlyParamDef<CrashkernelValue> = {
  name: 'crashkernel',
  parse(value, name) {
    const text = need(value, name);
    if (text.includes(':')) bad(name, 'the range:size form is not supported');
    const { value: size, rest } = memparse(text, name);
    if (size === 0) bad(name, 'size is zero');
    if (rest === '') return { size, placement: 'default' };
    if (rest === ',high') return { size, placement: 'high' };
    if (rest === ',low') return { size, placement: 'low' };
    if (rest[0] !== '@') bad(name, `unexpected '${rest}' after the size`);
    const offset = memparseExact(rest.slice(1), name);
    checkEnd(offset, size, name);
    return { size, offset, placement: 'default' };
  },
};

// ---------------------------------------------------------------- kho=

/**
 * kstrtobool(): looks only at the first one or two characters: y/Y/1 and
 * "on" are true, n/N/0 and "off" are false.
 * @throws BootError EINVAL for anything else.
 */
export function kstrtobool(text: string, name?: string): boolean {
  const c0 = text[0];
  if (c0 === 'y' || c0 === 'Y' || c0 === '1') return true;
  if (c0 === 'n' || c0 === 'N' || c0 === '0') return false;
  if (c0 === 'o' || c0 === 'O') {
    const c1 = text[1];
    if (c1 === 'n' || c1 === 'N') return true;
    if (c1 === 'f' || c1 === 'F') return false;
  }
  throw new BootError('EINVAL', `expected on/off, y/n or 1/0, got '${text}'`, name);
}

/** `kho=on|off` (kstrtobool), as kernel/kexec_handover.c. */
export const KHO: EarlyParamDef<boolean> = {
  name: 'kho',
  parse: (value, name) => kstrtobool(need(value, name), name),
};

// ---------------------------------------------------------------- kho_scratch=

export type KhoScratchValue =
  /** `N%`: scratch is N percent of the memory the kernel reserved for itself. */
  | { readonly kind: 'scale'; readonly percent: number }
  /** Sizes in bytes; an area of size 0 is not made. */
  | {
      readonly kind: 'sizes';
      readonly lowmem: number;
      readonly global: number;
      readonly pernode: number;
      /** Which documented form gave them (see KHO_SCRATCH). */
      readonly form: KhoScratchForm;
    };

/** The explicit forms of `kho_scratch=`, oldest first. */
export type KhoScratchForm = 'global' | 'global,pernode' | 'lowmem,global,pernode';

/**
 * `kho_scratch=`, in every form the KHO series documented:
 *
 * - `N%` (v3 on; N a decimal u32): each area is N% of the memory the kernel
 *   reserved for itself, as kho_parse_scratch_size() scales it.
 * - `lowmem,global,pernode` (v5 on, the merged form): three memparse sizes,
 *   not all zero; a zero size makes no area of that kind.
 * - `global,pernode` (v3, v4: "kho_scratch=512M,256M"): a global area and one
 *   per node, both non-zero; no lowmem area.
 * - `global` (v1, v2: "kho_scratch=512M"): the one scratch region those
 *   versions had, non-zero; no lowmem nor per-node area.
 *
 * Trailing text after the last size is an error, as the kernel made it.
 * A KHO boot reuses its predecessor's scratch areas and ignores all of them.
 */
export const KHO_SCRATCH: EarlyParamDef<KhoScratchValue> = {
  name: 'kho_scratch',
  parse(value, name) {
    const text = need(value, name);
    if (text.endsWith('%')) {
      const digits = text.slice(0, -1);
      if (!/^[0-9]{1,10}$/.test(digits)) bad(name, `expected a percentage, got '${text}'`);
      const percent = Number(digits);
      if (percent > 0xffffffff) bad(name, `${digits}% does not fit in 32 bits`);
      return { kind: 'scale', percent };
    }
    const sizes = text.split(',').map((p) => memparseExact(p, name));
    if (sizes.length === 3) {
      const [lowmem, global, pernode] = sizes;
      if (lowmem + global + pernode === 0) bad(name, 'all three sizes are zero');
      return { kind: 'sizes', lowmem, global, pernode, form: 'lowmem,global,pernode' };
    }
    if (sizes.length === 2) {
      const [global, pernode] = sizes;
      if (global === 0 || pernode === 0) bad(name, 'global,pernode: both sizes must be non-zero');
      return { kind: 'sizes', lowmem: 0, global, pernode, form: 'global,pernode' };
    }
    if (sizes.length === 1) {
      if (sizes[0] === 0) bad(name, 'the scratch size is zero');
      return { kind: 'sizes', lowmem: 0, global: sizes[0], pernode: 0, form: 'global' };
    }
    bad(name, 'expected N%, global, global,pernode or lowmem,global,pernode');
  },
};

/** What a `kho_scratch=` value asks for, in words (boot log, `livekexec kho check`). */
export function describeKhoScratch(v: KhoScratchValue): string {
  if (v.kind === 'scale')
    return `each scratch area ${v.percent}% of the memory the kernel reserved`;
  const mib = (n: number) => `${+(n / 1024 ** 2).toFixed(2)} MiB`;
  const parts: string[] = [];
  if (v.lowmem > 0) parts.push(`a ${mib(v.lowmem)} lowmem area`);
  if (v.global > 0) parts.push(`a ${mib(v.global)} global area`);
  if (v.pernode > 0) parts.push(`${mib(v.pernode)} per node`);
  return `${parts.join(', ')} (the ${v.form} form)`;
}

// ---------------------------------------------------------------- reserve_mem=

/** The kernel's RESERVE_MEM_NAME_SIZE is 16 with the NUL: names are 1..15 characters. */
export const RESERVE_MEM_NAME_MAX = 15;
/** RESERVE_MEM_MAX_ENTRIES. */
export const RESERVE_MEM_MAX_ENTRIES = 8;
/** An alignment below the cache line (SMP_CACHE_BYTES) is raised to it. */
export const RESERVE_MEM_MIN_ALIGN = 64;

export interface ReserveMemValue {
  readonly size: number;
  readonly align: number;
  readonly name: string;
}

/**
 * `reserve_mem=size:align:name` (mm/memblock.c reserve_mem()): size > 0, align
 * raised to 64 and (here) a power of two, a name of 1..15 characters that is
 * not all whitespace and unique. Repeatable, at most 8.
 */
export const RESERVE_MEM: EarlyParamDef<ReserveMemValue> = {
  name: 'reserve_mem',
  repeatable: true,
  parse(value, name) {
    const text = need(value, name);
    const s = memparse(text, name);
    if (s.value === 0) bad(name, 'size is zero');
    if (s.rest[0] !== ':') bad(name, 'expected size:align:name');
    const a = memparse(s.rest.slice(1), name);
    if (a.rest[0] !== ':') bad(name, 'expected size:align:name');
    const align = Math.max(a.value, RESERVE_MEM_MIN_ALIGN);
    if (!isPowerOfTwo(align)) bad(name, `alignment ${hex(align)} is not a power of two`);
    const label = a.rest.slice(1);
    if (label.length === 0 || label.length > RESERVE_MEM_NAME_MAX) {
      bad(name, `name must be 1..${RESERVE_MEM_NAME_MAX} characters`);
    }
    if (label.trim() === '') bad(name, 'name is blank');
    return { size: s.value, align, name: label };
  },
  check(values, name) {
    if (values.length > RESERVE_MEM_MAX_ENTRIES)
      bad(name, `more than ${RESERVE_MEM_MAX_ENTRIES} regions`);
    const seen = new Set<string>();
    for (const v of values) {
      if (seen.has(v.name)) bad(name, `name '${v.name}' used twice`);
      seen.add(v.name);
    }
  },
};

// ---------------------------------------------------------------- pmpool=

/** Our limit on pool names: 1..31 of [A-Za-z0-9_.-]. */
export const PMPOOL_NAME_MAX = 31;

export interface PmpoolValue {
  /** Absent for the unnamed form `pmpool=<base>,<size>`. */
  readonly name?: string;
  readonly base: number;
  readonly size: number;
}

/**
 * `pmpool=<base>,<size>` and `pmpool=<name>:<base>,<size>` (the pmpool RFC's
 * form, plus names). Size > 0; alignment is the pool's business. Repeatable;
 * named pools must have distinct names.
 */
export const PMPOOL: EarlyParamDef<PmpoolValue> = {
  name: 'pmpool',
  repeatable: true,
  parse(value, name) {
    let text = need(value, name);
    let label: string | undefined;
    const colon = text.indexOf(':');
    if (colon >= 0) {
      label = text.slice(0, colon);
      if (!new RegExp(`^[A-Za-z0-9_.-]{1,${PMPOOL_NAME_MAX}}$`).test(label)) {
        bad(name, `pool name must be 1..${PMPOOL_NAME_MAX} of [A-Za-z0-9_.-]`);
      }
      text = text.slice(colon + 1);
    }
    const b = memparse(text, name);
    if (b.rest[0] !== ',') bad(name, 'expected <base>,<size>');
    const size = memparseExact(b.rest.slice(1), name);
    if (size === 0) bad(name, 'size is zero');
    checkEnd(b.value, size, name);
    return label === undefined ? { base: b.value, size } : { name: label, base: b.value, size };
  },
  check(values, name) {
    const seen = new Set<string>();
    for (const v of values) {
      if (v.name === undefined) continue;
      if (seen.has(v.name)) bad(name, `pool '${v.name}' given twice`);
      seen.add(v.name);
    }
  },
};

// ---------------------------------------------------------------- pkram=

const PAGE_SHIFT = 12;

export interface PkramValue {
  readonly pfn: number;
  /** pfn << 12. */
  readonly addr: number;
}

/** `pkram=<pfn>`: the super block's pfn in hex, `0x` optional (the RFC's kstrtoull(..., 16)). */
export const PKRAM: EarlyParamDef<PkramValue> = {
  name: 'pkram',
  parse(value, name) {
    const text = need(value, name);
    const m = /^(?:0[xX])?([0-9a-fA-F]{1,14})$/.exec(text);
    if (!m) bad(name, `expected a pfn in hex, got '${text}'`);
    const pfn = Number.parseInt(m[1], 16);
    if (pfn * 2 ** PAGE_SHIFT > LIMIT) bad(name, `pfn 0x${m[1]} is past 2^53`);
    return { pfn, addr: pfn * 2 ** PAGE_SHIFT };
  },
};

// ---------------------------------------------------------------- pkram_ban=

export interface PkramBanValue {
  readonly size: number;
  readonly base: number;
}

/**
 * `pkram_ban=<size>@<addr>` (memparse both): a range PKRAM must not preserve
 * pages in (the RFC's banned regions, given here on the command line).
 * Repeatable.
 */
export const PKRAM_BAN: EarlyParamDef<PkramBanValue> = {
  name: 'pkram_ban',
  repeatable: true,
  parse(value, name) {
    const s = memparse(need(value, name), name);
    if (s.value === 0) bad(name, 'size is zero');
    if (s.rest[0] !== '@') bad(name, 'expected <size>@<addr>');
    const addr = memparseExact(s.rest.slice(1), name);
    checkEnd(addr, s.value, name);
    return { size: s.value, base: addr };
  },
};

// ---------------------------------------------------------------- memblock=

export interface MemblockParamValue {
  readonly debug: boolean;
}

/** `memblock=debug` (the kernel ignores other values; here they are errors). */
export const MEMBLOCK: EarlyParamDef<MemblockParamValue> = {
  name: 'memblock',
  parse(value, name) {
    if (need(value, name) !== 'debug') bad(name, `expected 'debug', got '${value}'`);
    return { debug: true };
  },
};

/** Every built-in definition, in the order defaultEarlyParams() registers them. */
export const BUILTIN_EARLY_PARAMS: readonly EarlyParamDef<unknown>[] = [
  MEMMAP,
  CRASHKERNEL,
  KHO,
  KHO_SCRATCH,
  RESERVE_MEM,
  PMPOOL,
  PKRAM,
  PKRAM_BAN,
  MEMBLOCK,
] as EarlyParamDef<unknown>[];
