/**
 * Untrusted handovers: fast-check mutations of a good handover FDT (bytes
 * flipped, cut, properties dropped or replaced, nodes renamed or repeated)
 * only ever raise LuoError from fromHandover and retrieve.
 */
import assert from 'node:assert/strict';
import { closeSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { Fdt, FdtWriter } from '../../src/fdt/index.js';
import { createMemfd, LiveUpdate, LuoError, memfdHandler } from '../../src/luo/index.js';
import { recordingFlb } from './_flb.js';
import { closeServer, openFile, serverFd, tcpServer, tempDir } from './_support.js';

interface Node {
  name: string;
  props: [string, Uint8Array][];
  children: Node[];
}

function toModel(fdt: Fdt, offset: number): Node {
  const props: [string, Uint8Array][] = [];
  for (let p = fdt.firstPropertyOffset(offset); p >= 0; p = fdt.nextPropertyOffset(p)) {
    const { name, value } = fdt.getPropertyByOffset(p);
    props.push([name, value.slice()]);
  }
  const children = [...fdt.subnodes(offset)].map((c) => toModel(fdt, c));
  return { name: fdt.getName(offset), props, children };
}

function fromModel(root: Node): Uint8Array {
  const w = new FdtWriter({ checkNames: false });
  w.finishReservations();
  const emit = (n: Node): void => {
    w.beginNode(n.name);
    for (const [name, value] of n.props) w.property(name, value);
    for (const c of n.children) emit(c);
    w.endNode();
  };
  emit(root);
  return w.finish();
}

/** Every node of the model, depth first. */
function nodes(n: Node): Node[] {
  return [n, ...n.children.flatMap(nodes)];
}

/** Try a handover as a successor would, without closing anything; only LuoError may escape. */
function tryHandover(bytes: Uint8Array): 'ok' | 'refused' {
  let lu: LiveUpdate | undefined;
  try {
    lu = LiveUpdate.fromHandover(bytes);
    const flb = recordingFlb([]);
    lu.registerFlb(memfdHandler, flb);
    try {
      lu.flbGetIncoming(flb);
    } catch (e) {
      if (!(e instanceof LuoError)) throw e;
    }
    for (const s of lu.sessions()) {
      for (const f of s.files()) {
        try {
          s.retrieveFd(f.token);
        } catch (e) {
          if (!(e instanceof LuoError)) throw e;
        }
      }
    }
    return 'ok';
  } catch (e) {
    if (e instanceof LuoError) {
      assert.ok(['EFAULT', 'ESRCH', 'EBUSY', 'ENOENT', 'EINVAL'].includes(e.code), e.message);
      return 'refused';
    }
    throw e;
  } finally {
    lu?.close();
  }
}

const bytesArb = fc.uint8Array({ maxLength: 24 });
const valueArb = fc.oneof(
  bytesArb,
  fc.constantFrom(
    new Uint8Array(0),
    new Uint8Array([0]),
    new Uint8Array([0xff, 0xff, 0xff, 0xff]),
    new Uint8Array([0, 0, 0, 7]),
    new Uint8Array(8).fill(0xff),
    new TextEncoder().encode('livekexec,luo-file-v1\0'),
    new TextEncoder().encode('livekexec,luo-v2\0'),
    new TextEncoder().encode(`${'x'.repeat(65)}\0`),
    new Uint8Array([0xc3, 0x28, 0]),
  ),
);

type Mutation =
  | { kind: 'drop'; node: number; prop: number }
  | { kind: 'set'; node: number; prop: number; value: Uint8Array }
  | { kind: 'rename'; node: number; name: string }
  | { kind: 'repeat'; node: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('drop' as const), node: fc.nat(), prop: fc.nat() }),
  fc.record({ kind: fc.constant('set' as const), node: fc.nat(), prop: fc.nat(), value: valueArb }),
  fc.record({
    kind: fc.constant('rename' as const),
    node: fc.nat(),
    name: fc.constantFrom('x', 'session@9', 'file@9', 'flb@9', ''),
  }),
  fc.record({ kind: fc.constant('repeat' as const), node: fc.nat() }),
);

function mutate(good: Uint8Array, ms: Mutation[]): Uint8Array {
  const root = toModel(Fdt.from(good), 0);
  for (const m of ms) {
    const all = nodes(root);
    const n = all[m.node % all.length]!;
    if (m.kind === 'rename') {
      if (n !== root) n.name = m.name;
    } else if (m.kind === 'repeat') {
      const parent = all.find((p) => p.children.includes(n));
      parent?.children.push(structuredClone(n));
    } else if (n.props.length > 0) {
      const i = m.prop % n.props.length;
      if (m.kind === 'drop') n.props.splice(i, 1);
      else n.props[i] = [n.props[i]![0], m.value];
    }
  }
  return fromModel(root);
}

describe('corrupt handovers', () => {
  const { dir, remove } = tempDir();
  let good: Uint8Array;
  const fds: number[] = [];
  let server: Awaited<ReturnType<typeof tcpServer>>;

  before(async () => {
    server = await tcpServer();
    const lu = new LiveUpdate();
    // With an FLB: the handover is v2 and carries an flb@ node to corrupt too.
    lu.registerFlb(memfdHandler, recordingFlb([]));
    const a = lu.createSession('a');
    fds.push(createMemfd('m', 64), openFile(dir));
    a.preserveFd(fds[0]!, 1);
    a.preserveFd(fds[1]!, 2);
    lu.createSession('b').preserveFd(serverFd(server), 3);
    lu.freeze();
    good = lu.serialize();
    lu.close();
  });

  after(async () => {
    for (const fd of fds) closeSync(fd);
    await closeServer(server);
    remove();
  });

  test('the unmutated handover is accepted', () => {
    assert.equal(tryHandover(good), 'ok');
  });

  test('byte flips and cuts only raise LuoError', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 6,
        }),
        fc.option(fc.nat(), { nil: undefined }),
        (flips, cut) => {
          let b = good.slice();
          for (const [at, v] of flips) b[at % b.length] = v;
          if (cut !== undefined) b = b.subarray(0, cut % b.length);
          tryHandover(b);
        },
      ),
      { numRuns: 3000 },
    );
  });

  test('tree mutations only raise LuoError, and most are refused', () => {
    let refused = 0;
    let runs = 0;
    fc.assert(
      fc.property(fc.array(mutationArb, { minLength: 1, maxLength: 4 }), (ms) => {
        runs++;
        if (tryHandover(mutate(good, ms)) === 'refused') refused++;
      }),
      { numRuns: 2000 },
    );
    assert.ok(refused > runs / 2, `${refused} of ${runs} refused`);
  });
});
