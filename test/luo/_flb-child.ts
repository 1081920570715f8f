/**
 * The successor of the FLB spawn test (flb-process.test.ts): links the same
 * FLB, finds the state the parent saved, is refused a finish while its gated
 * handler waits, then finishes; every call is reported as one JSON line.
 */
import { writeSync } from 'node:fs';
import { defaultHandlers, LiveUpdate, LuoError, memfdHandler } from '../../src/luo/index.js';
import { gatedMemfdHandler, recordingFlb } from './_flb.js';

const blob = Buffer.from(process.env.LIVEKEXEC_LUO ?? '', 'base64');
delete process.env.LIVEKEXEC_LUO;
let ready = false;
const handlers = [gatedMemfdHandler(() => ready), ...defaultHandlers()];
const lu = LiveUpdate.fromHandover(new Uint8Array(blob), { handlers });
const calls: string[] = [];
const flb = recordingFlb(calls);
lu.registerFlb(memfdHandler, flb);
const names = lu.flbGetIncoming(flb).names;
const plain = lu.retrieveSession('plain');
plain.retrieveFd(1);
plain.finish();
const afterPlain = [...calls];
const gated = lu.retrieveSession('gated');
let refused = '';
try {
  gated.finish();
} catch (err) {
  refused = err instanceof LuoError ? err.code : String(err);
}
const afterRefusal = [...calls];
ready = true;
gated.finish();
writeSync(
  1,
  `${JSON.stringify({ pid: process.pid, names, afterPlain, refused, afterRefusal, calls })}\n`,
);
lu.close();
