import { ValidationError, type Issue } from '@cps/core';

/** Consecutive ports a node may listen on, `from` to `to` inclusive. */
export interface PortRange {
  readonly from: number;
  readonly to: number;
}

/**
 * What every cloud tells a node's process about the node, the same way whatever the driver: the
 * local cloud puts it in the process's environment, the IaaS boot script writes it into the node's
 * env file at boot (after the contextualization env, so these win in both).
 */
export interface NodeEnvironment {
  /** `CPS_NODE_ID`. */
  readonly nodeId: string;
  /** `CPS_NODE_DIR`: the node's directory (its identity, files, workloads' `work`). */
  readonly nodeDir: string;
  /** `CPS_NODE_ADDRESS`: the address the other nodes of the application reach this node at. */
  readonly address: string;
  /** `CPS_PORT_FROM`, `CPS_PORT_TO`: the ports the node's workloads may listen on. */
  readonly ports: PortRange;
}

/**
 * The ports of a node on an IaaS cloud: the node is a whole machine of its own, so every such node
 * gets the same fixed range (the range the local cloud hands out first).
 */
export const IAAS_NODE_PORTS: PortRange = { from: 20_000, to: 20_019 };

/** The environment variables that carry a {@link NodeEnvironment}, in the order they are written. */
export const NODE_ENVIRONMENT_VARIABLES = [
  'CPS_NODE_ID',
  'CPS_NODE_DIR',
  'CPS_NODE_ADDRESS',
  'CPS_PORT_FROM',
  'CPS_PORT_TO',
] as const;

/** The environment variables of a node (see {@link NodeEnvironment}); the one writer every driver uses. */
export const nodeEnvironment = (n: NodeEnvironment): Record<string, string> => ({
  CPS_NODE_ID: n.nodeId,
  CPS_NODE_DIR: n.nodeDir,
  CPS_NODE_ADDRESS: n.address,
  CPS_PORT_FROM: String(n.ports.from),
  CPS_PORT_TO: String(n.ports.to),
});

const PORT = /^[0-9]{1,5}$/;

/**
 * Reads a node's environment as {@link nodeEnvironment} wrote it. Throws a ValidationError (code
 * `validation`) with one issue per variable that is missing (`missing`, path `$.CPS_PORT_FROM`) or
 * is not a port from 1 to 65535 (`invalid`), or when `CPS_PORT_FROM` is above `CPS_PORT_TO`.
 */
export const parseNodeEnvironment = (
  env: Readonly<Record<string, string | undefined>> = process.env,
): NodeEnvironment => {
  const issues: Issue[] = [];
  const text = (name: (typeof NODE_ENVIRONMENT_VARIABLES)[number]): string => {
    const v = env[name];
    if (v === undefined || v === '')
      issues.push({ path: `$.${name}`, code: 'missing', message: `environment variable ${name} is not set` });
    return v ?? '';
  };
  const port = (name: 'CPS_PORT_FROM' | 'CPS_PORT_TO'): number => {
    const v = text(name);
    if (v === '') return 0;
    const n = Number(v);
    if (!PORT.test(v) || n < 1 || n > 65_535)
      issues.push({ path: `$.${name}`, code: 'invalid', message: `${name} must be a port from 1 to 65535` });
    return n;
  };
  const nodeId = text('CPS_NODE_ID');
  const nodeDir = text('CPS_NODE_DIR');
  const address = text('CPS_NODE_ADDRESS');
  const ports = { from: port('CPS_PORT_FROM'), to: port('CPS_PORT_TO') };
  if (issues.length === 0 && ports.from > ports.to)
    issues.push({
      path: '$.CPS_PORT_FROM',
      code: 'invalid',
      message: 'CPS_PORT_FROM must not be above CPS_PORT_TO',
    });
  if (issues.length > 0)
    throw new ValidationError(`node environment: ${issues.map((i) => i.message).join('; ')}`, issues);
  return { nodeId, nodeDir, address, ports };
};
