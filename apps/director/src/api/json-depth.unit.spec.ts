import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH, tooDeep } from './json-depth.js';

const arrays = (depth: number): unknown => JSON.parse(`${'['.repeat(depth)}1${']'.repeat(depth)}`);

describe('the nesting limit of JSON input', () => {
  it('takes scalars and values up to the limit', () => {
    for (const v of [null, 1, 'x', true, {}, [], { a: [{ b: 1 }] }, arrays(MAX_JSON_DEPTH)])
      expect(tooDeep(v)).toBeUndefined();
  });

  it('names the first object or array beyond the limit, in document order', () => {
    expect(tooDeep(arrays(MAX_JSON_DEPTH + 1))).toEqual({
      path: `$${'[0]'.repeat(MAX_JSON_DEPTH)}`,
      code: 'too_deep',
      message: `nested deeper than ${MAX_JSON_DEPTH} levels`,
    });
    expect(tooDeep({ a: 1, b: [[{ c: 1 }], [[[]]]], d: [[[[]]]] }, 3)).toMatchObject({ path: '$.b[0][0]' });
    expect(tooDeep({ a: { b: {} } }, 2)).toMatchObject({ path: '$.a.b' });
  });

  it('walks any depth without recursing', () => {
    expect(tooDeep(arrays(200_000))?.path).toBe(`$${'[0]'.repeat(MAX_JSON_DEPTH)}`);
  });
});
