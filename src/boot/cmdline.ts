import { BootError } from './errors.js';

/**
 * The boot command line, tokenized by the kernel's rules (lib/cmdline.c
 * next_arg(), kernel/params.c parse_args(), init/main.c):
 *
 * - tokens are separated by whitespace (ASCII: space, \t, \n, \v, \f, \r);
 * - a double quote toggles "inside quotes", where whitespace does not split;
 * - `param=value` splits at the first `=` (not at the very first character);
 *   a bare `param` has no value;
 * - one pair of quotes around the value (`param="a b"`) or around the whole
 *   token (`"param=a b"`) is removed; quotes elsewhere stay in the text;
 * - `--` ends the kernel parameters: everything after it goes to the program.
 *
 * Differences from the kernel, on purpose: tokens with an empty name and no
 * value (`""`) are dropped; after `--` every token is kept, a second `--`
 * included (the kernel stops at it), each rejoined as `param=value` without
 * its quotes as init/main.c repair_env_string() does.
 */

export interface CmdlineParam {
  readonly name: string;
  /** The value after `=`, quotes removed; `undefined` for a bare `param`. */
  readonly value: string | undefined;
}

export interface ParsedCmdline {
  params: CmdlineParam[];
  /** The program's argv, from the tokens after `--`. */
  programArgs: string[];
}

interface RawArg {
  param: string;
  value: string | undefined;
  /** Index just past the token and the whitespace after it. */
  next: number;
  /** True when the text ended inside quotes. */
  openQuote: boolean;
}

function isSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

function skipSpaces(text: string, i: number): number {
  while (i < text.length && isSpace(text.charCodeAt(i))) i++;
  return i;
}

/** One token from `start` (not whitespace), as next_arg() splits it. */
function nextArg(text: string, start: number): RawArg {
  let s = start;
  let inQuote = false;
  let quoted = false;
  if (text.charCodeAt(s) === 0x22) {
    s++;
    inQuote = true;
    quoted = true;
  }
  let equals = -1;
  let i = s;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (isSpace(c) && !inQuote) break;
    // next_arg() keeps looking while `equals` is 0, so a leading '=' is part of the name.
    if (equals <= 0 && c === 0x3d && i > s) equals = i;
    if (c === 0x22) inQuote = !inQuote;
  }
  const openQuote = inQuote;
  // `end` is where the token's text stops once a closing quote is dropped.
  let end = i;
  let param: string;
  let value: string | undefined;
  if (equals < 0) {
    if (quoted && end > s && text.charCodeAt(end - 1) === 0x22) end--;
    param = text.slice(s, end);
  } else {
    param = text.slice(s, equals);
    let v = equals + 1;
    if (v < end && text.charCodeAt(v) === 0x22) {
      v++;
      if (text.charCodeAt(end - 1) === 0x22) end = Math.max(v, end - 1);
    } else if (quoted && end > v && text.charCodeAt(end - 1) === 0x22) {
      end--;
    }
    value = text.slice(v, end);
  }
  return { param, value, next: skipSpaces(text, i < text.length ? i + 1 : i), openQuote };
}

/** Splits `text` into kernel parameters and the program's argv. */
export function parseCmdline(text: string): ParsedCmdline {
  const params: CmdlineParam[] = [];
  const programArgs: string[] = [];
  let i = skipSpaces(text, 0);
  let afterDashes = false;
  while (i < text.length) {
    const a = nextArg(text, i);
    i = a.next;
    if (afterDashes) {
      programArgs.push(a.value === undefined ? a.param : `${a.param}=${a.value}`);
    } else if (a.value === undefined && a.param === '--') {
      afterDashes = true;
    } else if (a.param !== '' || a.value !== undefined) {
      params.push({ name: a.param, value: a.value });
    }
  }
  return { params, programArgs };
}

/** parameqn(): parameter names compare with '-' and '_' equal. */
export function parameq(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const dash = (c: number) => c === 0x2d || c === 0x5f;
    if (!(dash(x) && dash(y))) return false;
  }
  return true;
}

/** True when `token`, alone, parses back to exactly `param`/`value`. */
function tokenRoundTrips(
  token: string,
  param: string,
  value: string | undefined,
  allowOpenQuote: boolean,
): boolean {
  if (token === '' || isSpace(token.charCodeAt(0))) return false;
  const a = nextArg(token, 0);
  // A token left inside quotes would swallow the next one; only the last may.
  if (a.next !== token.length || (a.openQuote && !allowOpenQuote)) return false;
  return a.param === param && a.value === value;
}

/**
 * The first spelling of one token that parses back to `param`/`value`: every
 * raw token is one of these (optional quotes around the whole token, and at
 * either end of the value), so anything parse() produced can be written back.
 */
function spellToken(param: string, value: string | undefined, last: boolean): string | undefined {
  const q = ['', '"'];
  const spellings: string[] = [];
  for (const whole of q) {
    for (const open of value === undefined ? [] : q) {
      for (const close of q) spellings.push(`${whole}${param}=${open}${value}${close}`);
    }
    if (value === undefined) for (const close of q) spellings.push(`${whole}${param}${close}`);
  }
  // Balanced spellings first; the last token may also end inside quotes.
  for (const open of last ? [false, true] : [false]) {
    for (const t of spellings) if (tokenRoundTrips(t, param, value, open)) return t;
  }
  return undefined;
}

/** A parsed command line: lookups by name ('-' and '_' equal) and a faithful printer. */
export class Cmdline {
  readonly params: readonly CmdlineParam[];
  readonly programArgs: readonly string[];

  constructor(params: readonly CmdlineParam[], programArgs: readonly string[] = []) {
    this.params = params.map((p) => ({ name: p.name, value: p.value }));
    this.programArgs = [...programArgs];
  }

  static parse(text: string): Cmdline {
    const { params, programArgs } = parseCmdline(text);
    return new Cmdline(params, programArgs);
  }

  /** True when `name` appears, with or without a value. */
  has(name: string): boolean {
    return this.params.some((p) => parameq(p.name, name));
  }

  /** The last occurrence of `name` (the kernel's handlers run in order, the last one wins). */
  find(name: string): CmdlineParam | undefined {
    for (let i = this.params.length - 1; i >= 0; i--) {
      if (parameq(this.params[i].name, name)) return this.params[i];
    }
    return undefined;
  }

  /** The value of the last `name=`; `undefined` when absent or bare (see has()). */
  get(name: string): string | undefined {
    return this.find(name)?.value;
  }

  /** Every occurrence of `name`, in order, for repeatable parameters (reserve_mem=, pmpool=). */
  getAll(name: string): CmdlineParam[] {
    return this.params.filter((p) => parameq(p.name, name));
  }

  /** Parameters no subsystem registered: they stay available to the program. */
  unknown(known: Iterable<string>): CmdlineParam[] {
    const names = [...known];
    return this.params.filter((p) => !names.some((k) => parameq(p.name, k)));
  }

  /**
   * The command line as text, quoted so that `Cmdline.parse(toString())`
   * gives back the same parameters and program arguments.
   *
   * @throws BootError EINVAL for a name or value no quoting can express (a bare
   *   parameter named `--`, unbalanced quotes around whitespace, ...).
   */
  toString(): string {
    const out: string[] = [];
    const n = this.params.length;
    const m = this.programArgs.length;
    this.params.forEach((p, i) => {
      if (p.name === '') throw new BootError('EINVAL', 'a parameter needs a name');
      if (p.value === undefined && p.name === '--') {
        throw new BootError('EINVAL', "a bare '--' would end the kernel parameters", p.name);
      }
      const t = spellToken(p.name, p.value, i === n - 1 && m === 0);
      if (t === undefined) {
        throw new BootError('EINVAL', 'no quoting can write this parameter', p.name);
      }
      out.push(t);
    });
    if (m > 0) out.push('--');
    this.programArgs.forEach((arg, i) => {
      // parse() rejoins `param=value`; the first '=' after the first character splits it back.
      const eq = arg.indexOf('=', 1);
      const t =
        eq > 0
          ? spellToken(arg.slice(0, eq), arg.slice(eq + 1), i === m - 1)
          : spellToken(arg, undefined, i === m - 1);
      if (t === undefined) {
        throw new BootError('EINVAL', `no quoting can write program argument '${arg}'`);
      }
      out.push(t);
    });
    return out.join(' ');
  }
}
