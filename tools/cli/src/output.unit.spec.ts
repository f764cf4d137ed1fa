import { describe, expect, it } from 'vitest';
import { argsSummary } from './output.js';

describe("a method's arguments, summed up", () => {
  it('names each with its type, optional ones with ?', () => {
    expect(
      argsSummary({
        type: 'object',
        properties: {
          parameters: { type: 'array', items: { type: 'string' } },
          mode: { enum: ['soft', 'hard'] },
          count: { type: 'integer' },
          any: {},
          either: { anyOf: [{ type: 'string' }, { type: 'number' }] },
        },
        required: ['parameters'],
      }),
    ).toBe('parameters: string[], mode?: "soft"|"hard", count?: integer, any?: any, either?: string|number');
  });

  it('is empty for a method without arguments', () => {
    expect(argsSummary({ type: 'object', properties: {} })).toBe('');
    expect(argsSummary(undefined)).toBe('');
  });
});
