/**
 * The `@throws` doc comments of the main entry points are true: each code a
 * comment names is provoked here and comes out as that class with that code,
 * and each code provoked here is in the comment. A comment that promises a
 * code the entry point never throws, or omits one it does, fails.
 */
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import { LiveUpdate } from '../src/luo/liveupdate.js';
import { Machine } from '../src/machine.js';
import { INTENT_ALLOC, INTENT_OP } from '../src/pmpool/abi.js';
import { REPO_ROOT } from './_helpers/paths.js';

const MiB = 1024 * 1024;

/** `Class.member` of `file`: the classes and codes its @throws tags name, as 'KhoError EINVAL'. */
function documented(file: string, cls: string, member: string): string[] {
  const path = join(REPO_ROOT, 'src', file);
  const source = ts.createSourceFile(
    path,
    readFileSync(path, 'utf8'),
    ts.ScriptTarget.Latest,
    true,
  );
  let found: ts.Node | undefined;
  const visit = (node: ts.Node): void => {
    if (ts.isClassDeclaration(node) && node.name?.text === cls) {
      for (const m of node.members) {
        const name = m.name && ts.isIdentifier(m.name) ? m.name.text : undefined;
        if (name === member && (m as ts.FunctionLikeDeclaration).body) found = m;
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  assert.ok(found, `${cls}.${member} in src/${file}`);
  const out = new Set<string>();
  for (const tag of ts.getJSDocTags(found)) {
    if (tag.tagName.text !== 'throws') continue;
    const text = ts.getTextOfJSDocComment(tag.comment) ?? '';
    let current = '';
    for (const m of text.matchAll(/\b([A-Z][A-Za-z]*Error)\b|\b(E[A-Z0-9]{2,})\b/g)) {
      if (m[1]) current = m[1];
      else if (current) out.add(`${current} ${m[2]}`);
    }
  }
  return [...out].sort();
}

/** What `fn` threw, as 'Class CODE'. */
function thrown(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    const e = err as { name?: string; code?: string };
    return `${e.name} ${e.code}`;
  }
  return 'nothing thrown';
}

type Provokers = Record<string, () => unknown>;

/** Each documented code of `cls.member` is what its provoker throws, and there is one for each. */
function check(file: string, cls: string, member: string, provokers: Provokers): void {
  const docs = documented(file, cls, member);
  assert.deepEqual(docs, Object.keys(provokers).sort(), `${cls}.${member}: @throws vs provoked`);
  for (const [want, fn] of Object.entries(provokers)) {
    assert.equal(thrown(fn), want, `${cls}.${member}: ${want}`);
  }
}

const kernel = (cmdline = '') => Machine.create({ size: 16 * MiB }).boot(cmdline);

test('Machine.create and Machine.boot throw what their doc comments say', () => {
  check('machine.ts', 'Machine', 'create', {
    'DeviceError EINVAL': () => Machine.create({ size: 4097 }),
  });
  // A bad command line: the parameter is named, EINVAL.
  assert.equal(
    thrown(() => kernel('memmap=bogus')),
    'BootError EINVAL',
  );
});

test('kernel.kho.preserveFolio and finalize throw what their doc comments say', () => {
  check('kho/kho.ts', 'Kho', 'preserveFolio', {
    'KhoError EBUSY': () => {
      const k = kernel();
      const f = k.allocPages(0)!;
      k.kho.finalize();
      k.kho.preserveFolio(f);
    },
    'KhoError EINVAL': () => {
      const k = kernel();
      k.kho.preserveFolio({ pfn: k.allocPages(1)!.pfn, order: 0 });
    },
    'KhoError EEXIST': () => {
      const k = kernel();
      const f = k.allocPages(0)!;
      k.kho.preservePages(f.pfn, 1);
      k.kho.preserveFolio(f);
    },
    'KhoError EOPNOTSUPP': () => {
      const k = kernel('kho=off');
      k.kho.preserveFolio(k.allocPages(0)!);
    },
  });
  check('kho/kho.ts', 'Kho', 'finalize', {
    'KhoError EEXIST': () => {
      const k = kernel();
      k.kho.finalize();
      k.kho.finalize();
    },
    'KhoError EOPNOTSUPP': () => kernel('kho=off').kho.finalize(),
    'KhoError ENOMEM': () => {
      // The successor carries the predecessor's unclaimed folio into its map,
      // which needs a page, and none is left.
      const k1 = kernel();
      k1.kho.preserveFolio(k1.allocPages(0)!);
      k1.kexec.load();
      const k = k1.kexec.exec();
      while (k.allocPages(0) !== null);
      while (k.allocPages(0, { transient: true }) !== null);
      k.kho.finalize();
    },
  });
});

test('kernel.pkram.prepareSave and prepareLoad throw what their doc comments say', () => {
  check('pkram/kernel-pkram.ts', 'KernelPkram', 'prepareSave', {
    'PkramError ENODEV': () => kernel('kho=off').pkram.prepareSave('a'),
    'PkramError EINVAL': () => kernel().pkram.prepareSave(''),
    'PkramError ENAMETOOLONG': () => kernel().pkram.prepareSave('n'.repeat(300)),
    'PkramError EEXIST': () => {
      const k = kernel();
      k.pkram.prepareSave('a').finishSave();
      k.pkram.prepareSave('a');
    },
    'PkramError ENOMEM': () => {
      const k = kernel();
      while (k.allocPages(0) !== null);
      k.pkram.prepareSave('a');
    },
    'KexecError ESRCH': () => {
      const k = kernel();
      k.kexec.load();
      k.kexec.exec();
      k.pkram.prepareSave('a');
    },
  });
  check('pkram/kernel-pkram.ts', 'KernelPkram', 'prepareLoad', {
    'PkramError ENODEV': () => kernel('kho=off').pkram.prepareLoad('a'),
    'PkramError ENOENT': () => kernel().pkram.prepareLoad('a'),
    'PkramError EINVAL': () => kernel().pkram.prepareLoad(''),
  });
});

test('a pmpool alloc throws what its doc comment says', () => {
  check('pmpool/pools.ts', 'Pmpool', 'alloc', {
    'PmpoolError EINVAL': () => kernel('pmpool=4M,4M').pmpools.default!.alloc(0),
    'PmpoolError EFAULT': () => {
      const k = kernel('pmpool=4M,4M');
      // An operation left in flight (a writer killed between intent and commit).
      k.device.view(4 * MiB, 4096).setUint32(INTENT_OP * 4, INTENT_ALLOC, true);
      k.pmpools.default!.alloc(1);
    },
    'KexecError ESRCH': () => {
      const k = kernel('pmpool=4M,4M');
      const pool = k.pmpools.default!;
      k.kexec.load();
      k.kexec.exec();
      pool.alloc(1);
    },
  });
});

test('kernel.kexec.load throws what its doc comment says', () => {
  check('kexec/kexec.ts', 'Kexec', 'load', {
    'BootError EINVAL': () => kernel().kexec.load({ cmdline: 'memmap=bogus' }),
    'KexecError EINVAL': () => kernel().kexec.load({ reserveBytes: -1 }),
    'KexecError ENOMEM': () => kernel().kexec.load({ reserveBytes: 15 * MiB }),
    'KexecError ESRCH': () => {
      const k = kernel();
      k.kexec.load();
      k.kexec.exec();
      k.kexec.load();
    },
  });
});

test('LiveUpdate.createSession and a session preserveFd throw what their doc comments say', () => {
  const lu = new LiveUpdate();
  try {
    check('luo/liveupdate.ts', 'LiveUpdate', 'createSession', {
      'LuoError EINVAL': () => lu.createSession(''),
      'LuoError EEXIST': () => {
        lu.createSession('taken');
        lu.createSession('taken');
      },
      'LuoError EBUSY': () => {
        lu.freeze();
        try {
          lu.createSession('late');
        } finally {
          lu.unfreeze();
        }
      },
    });
    const s = lu.createSession('fds');
    const dir = mkdtempSync(join(tmpdir(), 'livekexec-throws-'));
    const a = openSync(join(dir, 'a'), 'w+');
    const b = openSync(join(dir, 'b'), 'w+');
    const d = openSync(dir, 'r');
    check('luo/session.ts', 'LuoSession', 'preserveFd', {
      'LuoError EINVAL': () => s.preserveFd(-1, 1n),
      'LuoError EEXIST': () => {
        s.preserveFd(a, 7n);
        s.preserveFd(b, 7n);
      },
      'LuoError EBUSY': () => s.preserveFd(a, 8n),
      'LuoError ENOENT': () => s.preserveFd(d, 9n),
    });
    for (const fd of [a, b, d]) closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  } finally {
    lu.close();
  }
});
