/**
 * Codecs between JS values and the bytes a store keeps. A structured value
 * goes through v8.serialize by default: it keeps Maps, Sets, Dates,
 * BigInts, typed arrays and cycles, which JSON does not.
 */
import { deserialize, serialize } from 'node:v8';

export interface Codec<T> {
  /** Recorded nowhere; for messages. */
  readonly name: string;
  encode(value: T): Uint8Array;
  /** Decodes from a view that is only valid during the call: copy what is kept. */
  decode(bytes: Uint8Array): T;
}

const utf8 = new TextDecoder('utf-8');

export const bytesCodec: Codec<Uint8Array> = {
  name: 'bytes',
  encode: (v) => v,
  decode: (b) => Buffer.from(b),
};

export const stringCodec: Codec<string> = {
  name: 'string',
  encode: (v) => Buffer.from(v, 'utf8'),
  decode: (b) => utf8.decode(b),
};

export const jsonCodec: Codec<unknown> = {
  name: 'json',
  encode: (v) => Buffer.from(JSON.stringify(v) ?? 'null', 'utf8'),
  decode: (b) => JSON.parse(utf8.decode(b)),
};

export const v8Codec: Codec<unknown> = {
  name: 'v8',
  encode: (v) => serialize(v),
  decode: (b) => deserialize(b),
};

export type CodecName = 'bytes' | 'string' | 'json' | 'v8';

const BY_NAME: Record<CodecName, Codec<unknown>> = {
  bytes: bytesCodec as Codec<unknown>,
  string: stringCodec as Codec<unknown>,
  json: jsonCodec,
  v8: v8Codec,
};

/** A codec by name, or the codec given. */
export function codecOf<T>(c: Codec<T> | CodecName | undefined, fallback: CodecName): Codec<T> {
  if (c === undefined) return BY_NAME[fallback] as Codec<T>;
  if (typeof c === 'string') {
    const found = BY_NAME[c];
    if (found === undefined) throw new TypeError(`no codec named '${c}'`);
    return found as Codec<T>;
  }
  return c;
}
