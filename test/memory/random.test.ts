import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomBytes, randomUUID } from '../../src/memory/random.js';

test('randomBytes gives n bytes, different each time', () => {
  for (const n of [0, 1, 16, 4097]) assert.equal(randomBytes(n).length, n);
  const a = randomBytes(32);
  const b = randomBytes(32);
  assert.notDeepEqual(a, b);
  assert.ok(a.some((x) => x !== 0));
});

test('randomUUID is a version 4, variant 1 UUID, unique', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const u = randomUUID();
    assert.match(u, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    seen.add(u);
  }
  assert.equal(seen.size, 200);
});
