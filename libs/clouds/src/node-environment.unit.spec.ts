import { describe, expect, it } from 'vitest';
import { CpsError } from '@cps/core';
import { nodeSpec } from './cloud-contract.spec-helpers.js';
import { bootScript } from './iaas/iaas-node.js';
import {
  IAAS_NODE_PORTS,
  NODE_ENVIRONMENT_VARIABLES,
  nodeEnvironment,
  parseNodeEnvironment,
} from './node-environment.js';

const issuesOf = (fn: () => unknown): { code: string; issues: { path: string; code: string }[] } => {
  try {
    fn();
  } catch (e) {
    if (e instanceof CpsError)
      return { code: e.code, issues: e.issues.map(({ path, code }) => ({ path, code })) };
    throw e;
  }
  throw new Error('did not throw');
};

const without = (r: Record<string, string>, ...names: string[]): Record<string, string> =>
  Object.fromEntries(Object.entries(r).filter(([k]) => !names.includes(k)));

/** The `export NAME='value'` lines of a script, as a record (values unexpanded). */
const exportsOf = (script: string): Record<string, string> =>
  Object.fromEntries([...script.matchAll(/^export ([A-Z_]+)='([^']*)'$/gm)].map((m) => [m[1], m[2]]));

describe('node environment', () => {
  const env = {
    nodeId: 'n1',
    nodeDir: '/nodes/n1',
    address: '192.0.2.1',
    ports: { from: 20_040, to: 20_059 },
  };

  it('reads back what nodeEnvironment writes', () => {
    expect(parseNodeEnvironment(nodeEnvironment(env))).toEqual(env);
    expect(Object.keys(nodeEnvironment(env))).toEqual([...NODE_ENVIRONMENT_VARIABLES]);
  });

  it('names every missing or invalid variable', () => {
    const rest = without(nodeEnvironment(env), 'CPS_PORT_FROM', 'CPS_NODE_ADDRESS');
    expect(issuesOf(() => parseNodeEnvironment(rest))).toEqual({
      code: 'validation',
      issues: [
        { path: '$.CPS_NODE_ADDRESS', code: 'missing' },
        { path: '$.CPS_PORT_FROM', code: 'missing' },
      ],
    });
    expect(issuesOf(() => parseNodeEnvironment({ ...nodeEnvironment(env), CPS_PORT_TO: '70000' }))).toEqual({
      code: 'validation',
      issues: [{ path: '$.CPS_PORT_TO', code: 'invalid' }],
    });
    expect(issuesOf(() => parseNodeEnvironment({ ...nodeEnvironment(env), CPS_PORT_TO: '20000' }))).toEqual({
      code: 'validation',
      issues: [{ path: '$.CPS_PORT_FROM', code: 'invalid' }],
    });
    expect(() => parseNodeEnvironment({})).toThrow(/CPS_NODE_ID is not set/);
  });

  it('is what the IaaS boot script exports: exactly the variables the parser requires', () => {
    const exported = exportsOf(bootScript(nodeSpec('n-boot'), ['cps-agent']));
    expect(Object.keys(exported).sort()).toEqual([...NODE_ENVIRONMENT_VARIABLES].sort());
    expect(parseNodeEnvironment(exported)).toEqual({
      nodeId: 'n-boot',
      nodeDir: '$d',
      address: '$a',
      ports: IAAS_NODE_PORTS,
    });
    for (const name of NODE_ENVIRONMENT_VARIABLES) {
      expect(issuesOf(() => parseNodeEnvironment(without(exported, name))).issues).toEqual([
        { path: `$.${name}`, code: 'missing' },
      ]);
    }
  });
});
