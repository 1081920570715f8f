/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), the checksum of every
 * livekexec header and boot block and of KHO's tree. Slicing-by-8 tables.
 *
 * It runs as a small WebAssembly function where there is WebAssembly: compiled
 * at once by the baseline compiler, it is fast on its first call, while the
 * same loop in JS runs interpreted (about 20 ns a byte) until V8 has
 * optimized it, and a successor's boot checks 100 KiB or more of tree pages
 * with cold code. The JS loop is the fallback and the reference.
 */

const POLY = 0x82f63b78;
const TABLES = buildTables();

function buildTables(): Uint32Array {
  const t = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n];
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff] ^ (c >>> 8);
      t[k * 256 + n] = c >>> 0;
    }
  }
  return t;
}

/**
 * CRC-32C of `data`, continuing from `crc` (the value a previous call returned).
 * crc32c(ascii "123456789") === 0xe3069283.
 */
export function crc32c(data: Uint8Array, crc = 0): number {
  if (wasm === undefined) wasm = loadWasm();
  const w = wasm;
  if (w === null) return crc32cJs(data, crc);
  let c = ~crc;
  for (let at = 0; at < data.length; at += CHUNK) {
    const part = data.subarray(at, at + CHUNK);
    w.bytes.set(part, DATA_OFF);
    c = w.run(c, DATA_OFF, part.length);
  }
  return ~c >>> 0;
}

/** The same in JS only: the fallback, and the reference the WebAssembly one is tested against. */
export function crc32cJs(data: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  let i = 0;
  const n = data.length;
  const t = TABLES;
  for (; i + 8 <= n; i += 8) {
    const lo =
      (c ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24))) >>> 0;
    c =
      t[7 * 256 + (lo & 0xff)] ^
      t[6 * 256 + ((lo >>> 8) & 0xff)] ^
      t[5 * 256 + ((lo >>> 16) & 0xff)] ^
      t[4 * 256 + (lo >>> 24)] ^
      t[3 * 256 + data[i + 4]] ^
      t[2 * 256 + data[i + 5]] ^
      t[256 + data[i + 6]] ^
      t[data[i + 7]];
  }
  for (; i < n; i++) c = t[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/**
 * The module (assembled and checked by test/memory/crc32c.test.ts):
 *
 *   (memory (export "mem") 1)  ;; the 8 tables (8 KiB), then the data being summed
 *   (func (export "crc") (param $c i32) (param $p i32) (param $n i32) (result i32)
 *     $end = $p + $n
 *     while $p + 8 <= $end: $lo = $c ^ load32($p); $hi = load32($p + 4)
 *       $c = T7[$lo & 0xff] ^ T6[($lo >>> 8) & 0xff] ^ T5[..] ^ T4[$lo >>> 24]
 *          ^ T3[$hi & 0xff] ^ T2[..] ^ T1[..] ^ T0[$hi >>> 24]; $p += 8
 *     while $p < $end: $c = T0[($c ^ load8($p)) & 0xff] ^ ($c >>> 8); $p += 1
 *     return $c)
 *
 * with table k at k * 1024. $c is the running state (the inverted crc).
 */
export const CRC32C_MODULE =
  'AGFzbQEAAAABCAFgA39/fwF/AwIBAAUDAQABBw0CA2NyYwAAA21lbQIACuQBAeEBAQN/IAEgAmohAwJAA0AgAUEIaiADSw0BIAAgASgCAHMhBCABKAIEIQUgBEH/AXFBAnQoAoA4IARBCHZB/wFxQQJ0KAKAMHMgBEEQdkH/AXFBAnQoAoAocyAEQRh2QQJ0KAKAIHMgBUH/AXFBAnQoAoAYcyAFQQh2Qf8BcUECdCgCgBBzIAVBEHZB/wFxQQJ0KAKACHMgBUEYdkECdCgCAHMhACABQQhqIQEMAAsLAkADQCABIANPDQEgACABLQAAc0H/AXFBAnQoAgAgAEEIdnMhACABQQFqIQEMAAsLIAAL';
/** Where the data goes in the module's memory, and how much at a time. */
const DATA_OFF = 8 * 1024;
const CHUNK = 32 * 1024;

/**
 * The instantiated module. A class, not an object literal: every literal of
 * two properties whose first is `bytes` shares V8's hidden class (and its
 * field's constness) with this one, and when another such object's `bytes`
 * was written again (mm/page-array.ts's, once a preloaded successor had
 * rehearsed), the optimized crc32c was thrown away and compiled again in
 * the handover's downtime.
 */
class WasmCrc {
  constructor(
    readonly bytes: Uint8Array,
    /** (state, address, length) -> state. */
    readonly run: (c: number, at: number, n: number) => number,
  ) {}
}

let wasm: WasmCrc | null | undefined;

interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (m: object) => { exports: Record<string, unknown> };
}

function loadWasm(): WasmCrc | null {
  const api = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  // Wasm loads are little-endian; the tables are copied in host order.
  if (api === undefined || new Uint8Array(Uint32Array.of(1).buffer)[0] !== 1) return null;
  try {
    const module = new api.Module(Buffer.from(CRC32C_MODULE, 'base64'));
    const { exports } = new api.Instance(module);
    const bytes = new Uint8Array((exports.mem as { buffer: ArrayBuffer }).buffer);
    new Uint32Array(bytes.buffer, 0, TABLES.length).set(TABLES);
    return new WasmCrc(bytes, exports.crc as WasmCrc['run']);
  } catch {
    return null;
  }
}
