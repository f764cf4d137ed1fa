import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { hasErrorCode } from '@cps/core';
import {
  builtinServices,
  defineService,
  helloworldService,
  mapSecrets,
  redact,
  secret,
  ServiceRegistry,
} from '@cps/services';

const attempt = (f: () => unknown): unknown => {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
};

const base = {
  type: 'demo',
  description: 'd',
  roles: ['node'] as const,
  defaultRoles: { node: 1 },
  configSchema: z.object({}),
  manifestKeys: z.object({}),
  manager: { methods: {} },
  agent: { methods: {} },
};

describe('service plugin contract', () => {
  it('answers which types exist, their roles, methods and argument schemas', () => {
    const r = new ServiceRegistry([...builtinServices]);
    expect(r.types()).toContain('helloworld');
    const d = r.describe('helloworld');
    expect(d.roles).toEqual(['node']);
    expect(d.manager.map((m) => m.name)).toEqual(['get_helloworld']);
    expect(d.manager[0]?.args).toMatchObject({ type: 'object' });
    // argument schemas describe what a caller sends: a field with a default may be left out
    const run = r.describe('generic').manager.find((m) => m.name === 'run');
    expect(run?.args).toMatchObject({ properties: { parameters: { type: 'array', default: [] } } });
    expect((run?.args as { required?: string[] }).required ?? []).not.toContain('parameters');
    expect(r.managerMethod('helloworld', 'get_helloworld').description).toMatch(/greeting/);
    expect(
      hasErrorCode(
        attempt(() => r.get('nope')),
        'not_found',
      ),
    ).toBe(true);
    expect(
      hasErrorCode(
        attempt(() => r.agentMethod('helloworld', 'nope')),
        'not_found',
      ),
    ).toBe(true);
  });

  it('refuses a type registered twice, bad names, unknown roles and generic method names', () => {
    expect(
      hasErrorCode(
        attempt(() => new ServiceRegistry([helloworldService, helloworldService])),
        'conflict',
      ),
    ).toBe(true);
    for (const bad of [
      { ...base, type: 'Bad Type' },
      { ...base, roles: [] },
      { ...base, defaultRoles: { master: 1 } },
      {
        ...base,
        manager: {
          methods: {
            startup: { description: '', args: z.object({}), result: z.object({}), handle: () => ({}) },
          },
        },
      },
      {
        ...base,
        agent: {
          methods: {
            'bad-name': { description: '', args: z.object({}), result: z.object({}), handle: () => ({}) },
          },
        },
      },
    ]) {
      expect(
        hasErrorCode(
          attempt(() => defineService(bad as never)),
          'validation',
        ),
      ).toBe(true);
    }
  });

  it('finds secret fields anywhere in a schema: redacts them for logs, seals them for events', () => {
    const schema = z.object({
      user: z.string(),
      password: secret(z.string()),
      replicas: z.array(z.object({ host: z.string(), key: secret(z.string()).optional() })),
      tokens: z.record(z.string(), secret(z.string())),
    });
    const value = {
      user: 'u',
      password: 'p4ss',
      replicas: [{ host: 'h', key: 'k1' }, { host: 'h2' }],
      tokens: { a: 't1' },
    };
    expect(redact(schema, value)).toEqual({
      user: 'u',
      password: '[redacted]',
      replicas: [{ host: 'h', key: '[redacted]' }, { host: 'h2' }],
      tokens: { a: '[redacted]' },
    });
    const paths: string[] = [];
    mapSecrets(schema, value, (v, p) => (paths.push(p), `sealed(${String(v)})`));
    expect(paths).toEqual(['$.password', '$.replicas[0].key', '$.tokens.a']);
    expect(JSON.stringify(redact(schema, value))).not.toMatch(/p4ss|k1|t1/);
  });
});
