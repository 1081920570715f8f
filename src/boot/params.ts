import { messageOf } from '../base/errors.js';
import { Cmdline, parameq } from './cmdline.js';
import { BootError } from './errors.js';
import { BUILTIN_EARLY_PARAMS } from './params-builtin.js';

/**
 * The early-parameter registry: subsystems register the command-line
 * parameters they own (the kernel's early_param()/__setup()), parseAll() runs
 * every parser over a command line, and the typed results are looked up by the
 * definition object itself. The built-in parsers live in params-builtin.ts.
 */

export interface EarlyParamDef<T> {
  /** The name before `=`; '-' and '_' are equal when matching. */
  readonly name: string;
  /** Whether every occurrence counts (reserve_mem=); otherwise the last one wins. */
  readonly repeatable?: boolean;
  /**
   * Parses one occurrence's value (`undefined` for a bare `name`).
   * @throws BootError EINVAL naming the parameter when the value is bad.
   */
  parse(value: string | undefined, name: string): T;
  /** Checks all occurrences together (duplicate names, entry limits). */
  check?(values: readonly T[], name: string): void;
}

/** The typed results of one parseAll(). */
export class EarlyParamValues {
  readonly #values = new Map<EarlyParamDef<unknown>, unknown[]>();

  /** @internal */
  set<T>(def: EarlyParamDef<T>, values: T[]): void {
    this.#values.set(def as EarlyParamDef<unknown>, values);
  }

  /** The value of the last occurrence, or `undefined` when the parameter is absent. */
  get<T>(def: EarlyParamDef<T>): T | undefined {
    const all = this.#values.get(def as EarlyParamDef<unknown>);
    return all && all.length > 0 ? (all[all.length - 1] as T) : undefined;
  }

  /** Every occurrence's value, in command-line order. */
  getAll<T>(def: EarlyParamDef<T>): T[] {
    return [...((this.#values.get(def as EarlyParamDef<unknown>) as T[] | undefined) ?? [])];
  }

  has(def: EarlyParamDef<unknown>): boolean {
    return (this.#values.get(def)?.length ?? 0) > 0;
  }
}

export class EarlyParams {
  readonly #defs: EarlyParamDef<unknown>[] = [];

  /**
   * Adds a parameter; returns the definition, which is also the lookup key.
   * @throws BootError EINVAL when the name is already registered.
   */
  register<T>(def: EarlyParamDef<T>): EarlyParamDef<T> {
    if (this.#defs.some((d) => parameq(d.name, def.name))) {
      throw new BootError('EINVAL', 'registered twice', def.name);
    }
    this.#defs.push(def as EarlyParamDef<unknown>);
    return def;
  }

  /** The registered names, for Cmdline.unknown(). */
  names(): string[] {
    return this.#defs.map((d) => d.name);
  }

  /**
   * Runs every registered parser over the occurrences of its parameter.
   * @throws BootError EINVAL naming the first parameter whose value is bad;
   *   anything else a parser throws is wrapped the same way.
   */
  parseAll(cmdline: Cmdline | string): EarlyParamValues {
    const cl = typeof cmdline === 'string' ? Cmdline.parse(cmdline) : cmdline;
    const out = new EarlyParamValues();
    for (const def of this.#defs) {
      const occurrences = cl.getAll(def.name);
      // Every occurrence is parsed, even those a later one overrides.
      const values = occurrences.map((o) => runParser(def, o.value));
      const kept = def.repeatable ? values : values.slice(-1);
      if (def.check) wrap(def.name, () => def.check?.(kept, def.name));
      out.set(def, kept);
    }
    return out;
  }

  /** Parameters on `cmdline` that no one registered: the program's to read. */
  unknown(cmdline: Cmdline): ReturnType<Cmdline['unknown']> {
    return cmdline.unknown(this.names());
  }
}

function runParser<T>(def: EarlyParamDef<T>, value: string | undefined): T {
  return wrap(def.name, () => def.parse(value, def.name));
}

function wrap<T>(name: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof BootError) {
      if (e.param !== undefined) throw e;
      throw new BootError(e.code, e.message, name);
    }
    throw new BootError('EINVAL', messageOf(e), name);
  }
}

/** A registry with every built-in parameter (params-builtin.ts) registered. */
export function defaultEarlyParams(): EarlyParams {
  const reg = new EarlyParams();
  for (const def of BUILTIN_EARLY_PARAMS) reg.register(def);
  return reg;
}

export * from './params-builtin.js';
