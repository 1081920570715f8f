/**
 * Cross-check against libfdt itself: thousands of good and broken blobs go
 * through test/fdt/libfdt-oracle.c (linked with the system's libfdt) and
 * through our reader; header check, full check and the whole walk (node
 * names, property names and lengths, and every error code on the way) must
 * print the same. Runs when cc and libfdt-dev are present; with
 * LIVEKEXEC_INTEROP=1 their absence is a failure.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FDT_ERR } from '../../src/fdt/errors.js';
import { badCases } from './_cases.js';
import {
  cuts,
  headerMangles,
  randomDamage,
  tokenMangles,
  unterminated,
  withU32,
} from './_mutate.js';
import { buildOracle, INTEROP_REQUIRED, oracleAvailability, runOracle } from './_oracle.js';
import {
  ALL_ORDERS,
  describeLikeOracle,
  FIXTURES,
  loadDtb,
  MODERN_FIXTURES,
  relayout,
} from './_support.js';

const missing = oracleAvailability();
if (missing && INTEROP_REQUIRED) throw new Error(`LIVEKEXEC_INTEROP=1 but ${missing}`);

/**
 * libfdt 1.6.1 (Debian 11/12) lacks the overflow check newer libfdt makes on
 * a property length (len + offset >= 2^31 is a premature end): it walks on
 * with a negative length. We follow the newer rule, so such blobs are left
 * out of the comparison, and so are blobs on which it faults (caught by the
 * oracle); they are few, and the count is bounded below.
 */
const OLD_LIBFDT_NEGATIVE_LENGTH = / P\d+:[0-9a-f]*:-\d+/;

function sameAsLibfdt(bin: string, blobs: Uint8Array[]): void {
  const theirs = runOracle(bin, blobs);
  let bad = 0;
  let skipped = 0;
  const report: string[] = [];
  blobs.forEach((b, i) => {
    if (OLD_LIBFDT_NEGATIVE_LENGTH.test(theirs[i]!) || theirs[i]!.endsWith(' CRASH')) {
      skipped++;
      return;
    }
    const ours = describeLikeOracle(b);
    if (ours !== theirs[i]) {
      bad++;
      if (report.length < 5) {
        report.push(
          `blob ${i} (${b.length} bytes)\n  libfdt: ${theirs[i]!.slice(0, 400)}\n  ours:   ${ours.slice(0, 400)}`,
        );
      }
    }
  });
  assert.equal(bad, 0, `${bad} of ${blobs.length} blobs differ from libfdt:\n${report.join('\n')}`);
  assert.ok(skipped <= blobs.length / 20, `${skipped} of ${blobs.length} blobs left out`);
}

describe('reader agrees with libfdt', { skip: missing }, () => {
  let oracle: { bin: string; cleanup: () => void };
  before(() => {
    oracle = buildOracle();
  });
  after(() => oracle?.cleanup());

  it('gives the code our table of broken blobs says', () => {
    const cases = badCases();
    const lines = runOracle(
      oracle.bin,
      cases.map((c) => c.bytes),
    );
    cases.forEach((c, i) => {
      const want = c.code === 'ok' ? 0 : -FDT_ERR[c.code];
      assert.match(lines[i]!, new RegExp(`^H-?\\d+ F${want}( |$)`), c.name);
    });
    sameAsLibfdt(
      oracle.bin,
      cases.map((c) => c.bytes),
    );
  });

  it('on every fixture, in every layout', () => {
    const blobs = FIXTURES.map(loadDtb);
    for (const name of MODERN_FIXTURES) {
      for (const order of ALL_ORDERS) {
        for (const version of [16, 17] as const) {
          blobs.push(relayout(loadDtb(name), { order, version, nopEvery: 3 }));
        }
      }
    }
    sameAsLibfdt(oracle.bin, blobs);
  });

  for (const name of ['basic', 'basic-v2', 'basic-v3', 'basic-v16', 'board']) {
    it(`on ${name} cut at every byte and with every smaller totalsize`, () => {
      sameAsLibfdt(oracle.bin, cuts(loadDtb(name)));
    });
    it(`on ${name} with mangled header fields`, () => {
      sameAsLibfdt(oracle.bin, headerMangles(loadDtb(name)));
    });
    it(`on ${name} with mangled tokens, lengths and name offsets`, () => {
      sameAsLibfdt(oracle.bin, tokenMangles(loadDtb(name)));
    });
    it(`on ${name} with random damage`, () => {
      sameAsLibfdt(oracle.bin, randomDamage(loadDtb(name), 3000, name.length));
    });
  }

  it('on unterminated names and strings', () => {
    sameAsLibfdt(oracle.bin, [
      ...unterminated(loadDtb('basic')),
      ...unterminated(loadDtb('board')),
    ]);
  });

  it('on v16/v17 relayouts with mangled headers and random damage', () => {
    const blobs: Uint8Array[] = [];
    for (const [i, order] of ALL_ORDERS.entries()) {
      for (const version of [16, 17] as const) {
        const b = relayout(loadDtb('basic'), { order, version, nopEvery: 2 });
        blobs.push(...headerMangles(b), ...randomDamage(b, 300, i * 100 + version));
        blobs.push(withU32(b, 4, b.length - 1));
      }
    }
    sameAsLibfdt(oracle.bin, blobs);
  });
});
