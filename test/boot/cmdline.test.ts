import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Cmdline, parameq, parseCmdline } from '../../src/boot/cmdline.js';
import { BootError } from '../../src/boot/errors.js';

const p = (name: string, value?: string) => ({ name, value });

test('whitespace separates tokens; leading, trailing and repeated whitespace is ignored', () => {
  assert.deepEqual(parseCmdline('  a=1\tb \n c=  ').params, [p('a', '1'), p('b'), p('c', '')]);
  assert.deepEqual(parseCmdline('').params, []);
  assert.deepEqual(parseCmdline(' \t ').params, []);
});

test('param=value splits at the first =; a bare param has no value; empty values stay empty', () => {
  assert.deepEqual(parseCmdline('a=b=c d= e').params, [p('a', 'b=c'), p('d', ''), p('e')]);
  // A leading '=' belongs to the name, as next_arg() leaves it.
  assert.deepEqual(parseCmdline('=x ==y').params, [p('=x'), p('=', 'y')]);
});

test('quotes around the value or the whole token are removed; inner quotes stay', () => {
  assert.deepEqual(parseCmdline('a="x y" "b=u v" c=q"r s"t').params, [
    p('a', 'x y'),
    p('b', 'u v'),
    p('c', 'q"r s"t'),
  ]);
  assert.deepEqual(parseCmdline('"bare name" e=""').params, [p('bare name'), p('e', '')]);
  // An unclosed quote runs to the end of the line.
  assert.deepEqual(parseCmdline('a="x y z').params, [p('a', 'x y z')]);
  assert.deepEqual(parseCmdline('a="b"c').params, [p('a', 'b"c')]);
});

test('-- ends kernel parameters; the rest is the program argv, rejoined without quotes', () => {
  const r = parseCmdline('kho=on -- --port=8080 name="a b" -- x');
  assert.deepEqual(r.params, [p('kho', 'on')]);
  assert.deepEqual(r.programArgs, ['--port=8080', 'name=a b', '--', 'x']);
  assert.deepEqual(parseCmdline('a "--" b').programArgs, ['b']);
  assert.deepEqual(parseCmdline('a --=1 b').params, [p('a'), p('--', '1'), p('b')]);
  assert.deepEqual(parseCmdline('a --').programArgs, []);
});

test('names compare with - and _ equal; get is the last occurrence, getAll every one', () => {
  assert.ok(parameq('kho_scratch', 'kho-scratch'));
  assert.ok(!parameq('kho_scratch', 'khoscratch'));
  assert.ok(!parameq('a_b', 'a.b'));
  const c = Cmdline.parse('reserve_mem=1M:4K:a reserve-mem=2M:4K:b quiet x=1 x=2');
  assert.equal(c.get('x'), '2');
  assert.deepEqual(
    c.getAll('reserve-mem').map((q) => q.value),
    ['1M:4K:a', '2M:4K:b'],
  );
  assert.ok(c.has('quiet'));
  assert.equal(c.get('quiet'), undefined);
  assert.deepEqual(c.find('quiet'), p('quiet'));
  assert.ok(!c.has('absent'));
  assert.deepEqual(
    c.unknown(['reserve_mem', 'x']).map((q) => q.name),
    ['quiet'],
  );
});

test('toString re-quotes values and names', () => {
  const c = new Cmdline([p('a', 'x y'), p('b'), p('c', ''), p('d e')], ['--x', 'a b', '']);
  assert.equal(c.toString(), 'a="x y" b c= "d e" -- --x "a b" ""');
  assert.deepEqual(parseCmdline(c.toString()), { params: c.params, programArgs: c.programArgs });
});

test('toString refuses what no quoting can express', () => {
  const refuse = (c: Cmdline) =>
    assert.throws(
      () => c.toString(),
      (e: unknown) => e instanceof BootError && e.code === 'EINVAL',
    );
  refuse(new Cmdline([p('--')]));
  refuse(new Cmdline([p('')]));
  // A value ending in whitespace then a lone quote leaves any spelling inside quotes.
  refuse(new Cmdline([p('a', 'x "'), p('b')]));
  // A bare name with '=' would come back split into name and value.
  refuse(new Cmdline([p('a=')]));
  refuse(new Cmdline([p('a')], ['x "', 'y']));
  // ... though the last token may end inside quotes.
  const last = new Cmdline([p('b'), p('a', 'x "')]);
  assert.deepEqual(parseCmdline(last.toString()).params, last.params);
});

const textArb = fc.string({
  unit: fc.constantFrom('a', 'b', '=', '"', ' ', '\t', '-', '_', 'x'),
  maxLength: 40,
});

test('property: parse(toString(parse(text))) === parse(text) for any text', () => {
  fc.assert(
    fc.property(textArb, (text) => {
      const first = Cmdline.parse(text);
      const again = parseCmdline(first.toString());
      assert.deepEqual(again.params, first.params);
      assert.deepEqual(again.programArgs, first.programArgs);
    }),
    { numRuns: 5000 },
  );
});

test('property: toString of arbitrary params either round-trips or throws EINVAL', () => {
  const word = fc.string({ unit: fc.constantFrom('a', '=', '"', ' ', '-'), maxLength: 6 });
  fc.assert(
    fc.property(
      fc.array(fc.record({ name: word, value: fc.option(word, { nil: undefined }) }), {
        maxLength: 5,
      }),
      fc.array(word, { maxLength: 3 }),
      (params, args) => {
        const c = new Cmdline(params, args);
        let text: string;
        try {
          text = c.toString();
        } catch (e) {
          assert.ok(e instanceof BootError && e.code === 'EINVAL');
          return;
        }
        const back = parseCmdline(text);
        assert.deepEqual(back.params, c.params);
        assert.deepEqual(back.programArgs, c.programArgs);
      },
    ),
    { numRuns: 3000 },
  );
});
