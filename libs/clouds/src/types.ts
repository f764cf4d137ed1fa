/**
 * The cloud contract: every driver (local processes, EC2, OpenNebula, ...) creates, lists, inspects
 * and destroys nodes the same way. The Provisioner records a node (with its id) before it calls
 * `create`, so drivers must be idempotent per `nodeId`: a retried create returns the same node.
 */

/** What a node needs to start, handed to it by the cloud (user-data, environment, files). */
export interface Contextualization {
  /** Environment of the node's main process (a clean environment: nothing else is inherited). */
  readonly env: Readonly<Record<string, string>>;
  /** Files written into the node's working directory before it starts (relative path -> content). */
  readonly files: Readonly<Record<string, string>>;
}

export type NodeKind = 'manager' | 'agent';

export interface NodeSpec {
  /** Chosen by the Provisioner, unique on the platform, one NATS token (`[a-z0-9][a-z0-9_-]*`). */
  readonly nodeId: string;
  readonly kind: NodeKind;
  readonly appId: string;
  readonly serviceId: string;
  readonly role?: string;
  readonly contextualization: Contextualization;
  /**
   * The Debian packages the node's service type needs. A cloud whose machines start bare (EC2,
   * OpenNebula) installs them at boot; the local cloud's machine was set up with them.
   */
  readonly software?: readonly string[];
}

export const CloudNodeStates = {
  pending: 'pending',
  running: 'running',
  stopped: 'stopped',
  failed: 'failed',
  terminated: 'terminated',
} as const;
export type CloudNodeState = (typeof CloudNodeStates)[keyof typeof CloudNodeStates];

export interface CloudNode {
  readonly nodeId: string;
  readonly cloud: string;
  /** The cloud's own id (a pid for `local`, an instance id for EC2, a VM id for OpenNebula). */
  readonly instanceId: string;
  readonly state: CloudNodeState;
  readonly kind: NodeKind;
  readonly appId: string;
  readonly serviceId: string;
  readonly address?: string;
  /** Ports the node may listen on (local driver: a range of its own). */
  readonly ports?: { readonly from: number; readonly to: number };
  readonly createdAt: string;
}

export interface BaseCloud {
  /** The name this cloud is configured under (`local`, `ec2-eu`, ...). */
  readonly name: string;
  readonly driver: 'local' | 'ec2' | 'opennebula';
  /**
   * How the cloud makes its nodes, when it has more than one way (`local`: `host`, each node a
   * network namespace with its own address, or `process`, processes on 127.0.0.1).
   */
  readonly mode?: string;
  /** Starts a node; idempotent per `spec.nodeId`. */
  create(spec: NodeSpec): Promise<CloudNode>;
  /** Every node this cloud holds for this platform, whatever its state. */
  list(): Promise<CloudNode[]>;
  get(nodeId: string): Promise<CloudNode | undefined>;
  /** Stops and removes a node, its disk too; idempotent (destroying an unknown node is not an error). */
  destroy(nodeId: string): Promise<void>;
  /**
   * Stops a node and keeps its disk (a platform going down). Drivers that cannot keep a stopped
   * node's disk leave it out: their nodes run on while the platform is down.
   */
  stop?(nodeId: string): Promise<void>;
  /**
   * Starts a stopped node again with its disk as it was, under the contextualization of `spec` (a
   * fresh identity). Drivers without it have a stopped node destroyed and created afresh, its data lost.
   */
  start?(spec: NodeSpec): Promise<CloudNode>;
}
