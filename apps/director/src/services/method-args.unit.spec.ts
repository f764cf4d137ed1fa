import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { hasErrorCode } from '@cps/core';
import { parseMethodArgs } from './method-args.js';

const Args = z.object({
  parameters: z.array(z.string()).default([]),
  agents: z.array(z.object({ nodeId: z.string() })).optional(),
  settings: z.record(z.string(), z.string()).optional(),
  extra: z.looseObject({ a: z.number() }).optional(),
});

const issuesOf = (args: unknown) => {
  try {
    parseMethodArgs('run', Args, args);
  } catch (e) {
    if (hasErrorCode(e, 'validation')) return e.issues.map((i) => `${i.path} ${i.code}`);
    throw e;
  }
  return [];
};

describe('the arguments of a method call', () => {
  it('are parsed by the method schema, defaults filled in', () => {
    expect(parseMethodArgs('run', Args, {})).toEqual({ parameters: [] });
    expect(parseMethodArgs('run', Args, { settings: { ANY: 'x' }, extra: { a: 1, b: 2 } })).toEqual({
      parameters: [],
      settings: { ANY: 'x' },
      extra: { a: 1, b: 2 },
    });
  });

  it('refuse fields the schema does not name, at any depth, with their paths', () => {
    expect(issuesOf({ parameters: [], colour: 'red' })).toEqual(['$.colour unrecognized_keys']);
    expect(issuesOf({ agents: [{ nodeId: 'n1' }, { nodeId: 'n2', role: 'x' }] })).toEqual([
      '$.agents[1].role unrecognized_keys',
    ]);
  });

  it('refuse what the schema refuses', () => {
    expect(issuesOf({ parameters: 'a' })).toEqual(['$.parameters invalid_type']);
    expect(issuesOf([])).toEqual(['$ invalid_type']);
  });
});
