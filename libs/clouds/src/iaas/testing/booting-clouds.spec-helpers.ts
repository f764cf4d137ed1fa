import { execFileSync } from 'node:child_process';
import { Ec2Cloud } from '../../ec2/ec2-cloud.js';
import { ec2StandInCloudOptions, startEc2StandIn } from '../../ec2/testing/ec2-stand-in.spec-helpers.js';
import { BRIDGE, bridgeNamespace, networkSubnet } from '../../host/address-plan.js';
import { linkAlias, namespaceExists } from '../../host/kernel.js';
import { OpenNebulaCloud } from '../../opennebula/opennebula-cloud.js';
import {
  OneStates,
  oneStandInCloudOptions,
  startOneStandIn,
} from '../../opennebula/testing/opennebula-stand-in.spec-helpers.js';
import type { BaseCloud, CloudNode } from '../../types.js';
import type { StandInMachines } from './machines.spec-helpers.js';

/** A stand-in cloud whose instances boot for real, with what tests need of it. */
export interface BootingCloud {
  readonly cloud: BaseCloud;
  /** The machine of a node's instance, as the stand-in names it. */
  machineId(node: CloudNode): string;
  /** The instance's private address as the cloud's API reports it. */
  privateIp(node: CloudNode): string | undefined;
  /** Stops the node's instance through the stand-in (the drivers never stop one). */
  stop(node: CloudNode): void;
  close(): Promise<void>;
}

export type BootingCloudKind = 'ec2' | 'opennebula';

/** How the drivers start a node on a booted instance. */
export interface BootingCloudOptions {
  readonly startCommand: readonly string[];
  readonly readyTimeoutMs: number;
}

/** Starts the stand-in of `kind` booting its instances as `machines`, and a driver of it. */
export const bootingClouds: Record<
  BootingCloudKind,
  (machines: StandInMachines, o: BootingCloudOptions) => Promise<BootingCloud>
> = {
  ec2: async (machines, o) => {
    const s = await startEc2StandIn({ machines });
    return {
      cloud: new Ec2Cloud({ ...ec2StandInCloudOptions(s), ...o }),
      machineId: (node) => node.instanceId,
      privateIp: (node) => s.instance(node.instanceId)?.privateIp,
      stop: (node) => s.setState(node.instanceId, 'stopped'),
      close: () => s.close(),
    };
  },
  opennebula: async (machines, o) => {
    const s = await startOneStandIn({ machines });
    return {
      cloud: new OpenNebulaCloud({ ...oneStandInCloudOptions(s), ...o }),
      machineId: (node) => `one-${node.instanceId}`,
      privateIp: (node) => s.vm(Number(node.instanceId))?.ip,
      stop: (node) => s.setState(Number(node.instanceId), OneStates.POWEROFF),
      close: () => s.close(),
    };
  },
};

/**
 * What is left of the machines' network `n` and of the links tagged `tags`: links in this namespace,
 * the bridge namespace while it is ours, the machines' namespaces, and the network's route while no
 * one else holds the network.
 */
export const leftovers = async (
  network: number,
  tags: readonly string[],
  machineNamespaces: readonly string[],
): Promise<string[]> => {
  const all = JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' })) as {
    ifname: string;
    ifalias?: string;
  }[];
  const left = all.filter((l) => tags.includes(l.ifalias ?? '')).map((l) => l.ifname);
  left.push(...machineNamespaces.filter(namespaceExists));
  const bridge = bridgeNamespace(network);
  if (!namespaceExists(bridge))
    left.push(
      ...execFileSync('ip', ['route', 'show', networkSubnet(network)], { encoding: 'utf8' }).split('\n'),
    );
  else if (tags.includes((await linkAlias(bridge, BRIDGE)) ?? '')) left.push(bridge);
  return left.filter((l) => l !== '');
};
