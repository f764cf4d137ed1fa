import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CpsError, ID_PATTERN } from '@cps/core';
import {
  BRIDGE,
  bridgeAddress,
  bridgeNamespace,
  NETWORKS,
  NODE_LINK,
  nodeAddress,
  nodeNamespace,
  nodePort,
  networkSubnet,
  UPLINK_INNER,
  uplinkInnerAddress,
  uplinkName,
  uplinkRootAddress,
} from './address-plan.js';
import {
  addNamespace,
  deleteLink,
  deleteNamespace,
  enableForwarding,
  ip,
  ipAdding,
  linkAlias,
  loadRuleset,
  namespaceExists,
  namespaces,
} from './kernel.js';

/** An address and port in the root namespace that nodes may open connections to (NATS). */
export interface NatsEndpoint {
  readonly address: string;
  readonly port: number;
}

/**
 * The rules of a network's bridge namespace: nodes reach each other (bridged), the platform reaches
 * them (through the uplink), and a node reaches nothing beyond its network but NATS. Everything else
 * a node starts is refused at once (a TCP reset, or ICMP administratively prohibited); no route
 * leads to another network's nodes either. They live and die with the namespace.
 */
const ruleset = (reach: readonly NatsEndpoint[]): string => `
table inet cps {
  chain input {
    type filter hook input priority 0; policy accept;
    ct state established,related accept
    iifname "lo" accept
    meta l4proto tcp reject with tcp reset
    reject with icmpx type admin-prohibited
  }
  chain forward {
    type filter hook forward priority 0; policy accept;
    ct state established,related accept
    iifname "${BRIDGE}" oifname "${BRIDGE}" accept
    iifname "${UPLINK_INNER}" oifname "${BRIDGE}" accept
${reach.map((e) => `    iifname "${BRIDGE}" oifname "${UPLINK_INNER}" ip daddr ${e.address} tcp dport ${e.port} accept\n`).join('')}    meta l4proto tcp reject with tcp reset
    reject with icmpx type admin-prohibited
  }
}
`;

/** The bridge's MAC address: locally administered, from the network number. */
export const bridgeMac = (n: number): string =>
  ['02', '63', '70', '73', (n >> 8) & 0xff, n & 0xff]
    .map((b) => (typeof b === 'string' ? b : b.toString(16).padStart(2, '0')))
    .join(':');

interface NetworkRecord {
  readonly appId: string;
  readonly network: number;
}

/**
 * The host-mode networks of one local cloud: one per application, a bridge inside a namespace of
 * its own. Which application holds which network number is recorded in `<dir>/<appId>.json`, so
 * nodes keep their addresses across a platform restart; the kernel objects exist only while a node
 * of the network runs (see {@link up} and {@link downIfIdle}). Every bridge carries the cloud's
 * `tag` as its alias: nothing that is not tagged so is ever deleted. Callers serialize calls.
 */
export class AppNetworks {
  private readonly reach: readonly NatsEndpoint[];

  /**
   * `reach`: what nodes may connect to beyond their network, all on one address of the root
   * namespace (the platform's: its NATS; an IaaS stand-in's machines also reach the director there).
   */
  constructor(
    private readonly dir: string,
    private readonly tag: string,
    reach: NatsEndpoint | readonly NatsEndpoint[],
  ) {
    this.reach = Array.isArray(reach) ? reach : [reach as NatsEndpoint];
    if (new Set(this.reach.map((e) => e.address)).size !== 1)
      throw new CpsError('internal', 'the endpoints nodes reach must share one address');
  }

  /** The network number recorded for `appId`, if any. */
  recorded(appId: string): number | undefined {
    return this.records().find((r) => r.appId === appId)?.network;
  }

  /**
   * Makes sure `appId`'s network is up and returns its number: the recorded one when its namespace
   * is ours or can be made again, else the lowest number no one on the machine holds (recorded).
   */
  async up(appId: string): Promise<number> {
    const recorded = this.recorded(appId);
    if (recorded !== undefined) {
      if (await this.isOurs(recorded)) return recorded;
      if (await this.make(recorded)) return recorded;
    }
    const held = new Set(this.records().map((r) => r.network));
    for (let n = NETWORKS.first; n <= NETWORKS.last; n++) {
      if (held.has(n) || namespaceExists(bridgeNamespace(n))) continue;
      this.write({ appId, network: n });
      if (await this.make(n)) return n;
    }
    this.forget(appId);
    throw new CpsError('unavailable', 'every host-mode network number is taken on this machine');
  }

  /**
   * Creates network `n`'s bridge namespace, uplink, routes and rules; false when another owner holds
   * the number (its namespace or its uplink exists). A half-made network is deleted again.
   */
  private async make(n: number): Promise<boolean> {
    const ns = bridgeNamespace(n);
    if (!(await addNamespace(ns))) return false;
    let uplink = false;
    try {
      await ip(
        ns,
        'link set lo up',
        `link add ${BRIDGE} type bridge`,
        // an address of its own: a bridge without one takes its lowest port's, which changes as nodes
        // come and go, and the nodes' ARP entries for their gateway go stale for seconds
        `link set ${BRIDGE} address ${bridgeMac(n)}`,
        `link set ${BRIDGE} alias ${this.tag}`,
        `address add ${bridgeAddress(n)}/24 dev ${BRIDGE}`,
        `link set ${BRIDGE} up`,
      );
      if (
        !(await ipAdding(
          undefined,
          `link add ${uplinkName(n)} type veth peer name ${UPLINK_INNER} netns ${ns}`,
        ))
      ) {
        await deleteNamespace(ns);
        return false;
      }
      uplink = true;
      await ip(
        undefined,
        `link set ${uplinkName(n)} alias ${this.tag}`,
        `address add ${uplinkRootAddress(n)}/30 dev ${uplinkName(n)}`,
        `link set ${uplinkName(n)} up`,
        `route replace ${networkSubnet(n)} via ${uplinkInnerAddress(n)} dev ${uplinkName(n)}`,
      );
      await ip(
        ns,
        `address add ${uplinkInnerAddress(n)}/30 dev ${UPLINK_INNER}`,
        `link set ${UPLINK_INNER} up`,
        `route add ${(this.reach[0] as NatsEndpoint).address}/32 via ${uplinkRootAddress(n)}`,
      );
      await enableForwarding(ns);
      await loadRuleset(ns, ruleset(this.reach));
      return true;
    } catch (e) {
      if (uplink) await deleteLink(undefined, uplinkName(n));
      await deleteNamespace(ns);
      throw e;
    }
  }

  private async isOurs(n: number): Promise<boolean> {
    return namespaceExists(bridgeNamespace(n)) && (await linkAlias(bridgeNamespace(n), BRIDGE)) === this.tag;
  }

  /**
   * Gives node `host` of network `n` its namespace, its address and its link on the bridge; a node
   * namespace left from before is made again.
   */
  async attach(n: number, host: number): Promise<void> {
    const ns = nodeNamespace(n, host);
    await this.detach(n, host);
    if (!(await addNamespace(ns))) throw new CpsError('conflict', `namespace ${ns} was taken meanwhile`);
    try {
      await ip(
        bridgeNamespace(n),
        `link add ${nodePort(host)} type veth peer name ${NODE_LINK} netns ${ns}`,
        `link set ${nodePort(host)} master ${BRIDGE}`,
        `link set ${nodePort(host)} up`,
      );
      await ip(
        ns,
        'link set lo up',
        `address add ${nodeAddress(n, host)}/24 dev ${NODE_LINK}`,
        `link set ${NODE_LINK} up`,
        `route add default via ${bridgeAddress(n)}`,
      );
    } catch (e) {
      await deleteNamespace(ns);
      throw e;
    }
  }

  /** Node `host` leaves network `n`: its namespace goes, and the network with it when it was the last. */
  async leave(n: number, host: number): Promise<void> {
    await this.detach(n, host);
    await this.downIfIdle(n);
  }

  /** Deletes node `host`'s namespace (its link on the bridge goes with it). */
  async detach(n: number, host: number): Promise<void> {
    await deleteLink(bridgeNamespace(n), nodePort(host));
    await deleteNamespace(nodeNamespace(n, host));
  }

  /**
   * Deletes network `n` (bridge namespace, uplink, route, rules: all go with the namespace) when no
   * node namespace of it is left, and when it is ours.
   */
  async downIfIdle(n: number): Promise<void> {
    if (namespaces(`${bridgeNamespace(n)}-n`).length > 0) return;
    if (await this.isOurs(n)) await this.delete(n);
  }

  private async delete(n: number): Promise<void> {
    await deleteLink(undefined, uplinkName(n));
    await deleteNamespace(bridgeNamespace(n));
  }

  /** Forgets `appId`'s network number (its last node was destroyed); deletes it if up. */
  async release(appId: string): Promise<void> {
    const n = this.recorded(appId);
    if (n === undefined) return;
    await this.downIfIdle(n);
    this.forget(appId);
  }

  /** Deletes every network of this cloud that is up, with its nodes' namespaces (`cps down` after a crash). */
  async downAll(): Promise<void> {
    for (const { network } of this.records()) {
      if (!(await this.isOurs(network))) continue;
      for (const ns of namespaces(`${bridgeNamespace(network)}-n`)) await deleteNamespace(ns);
      await this.delete(network);
    }
  }

  private records(): NetworkRecord[] {
    let entries: string[];
    try {
      entries = readdirSync(this.dir);
    } catch {
      return [];
    }
    return entries
      .filter((e) => e.endsWith('.json') && ID_PATTERN.test(e.slice(0, -5)))
      .flatMap((e) => {
        try {
          const r = JSON.parse(readFileSync(join(this.dir, e), 'utf8')) as Partial<NetworkRecord>;
          return typeof r.appId === 'string' && Number.isInteger(r.network) ? [r as NetworkRecord] : [];
        } catch {
          return [];
        }
      });
  }

  private write(r: NetworkRecord): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const file = join(this.dir, `${r.appId}.json`);
    writeFileSync(`${file}.tmp`, JSON.stringify(r) + '\n', { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  }

  private forget(appId: string): void {
    rmSync(join(this.dir, `${appId}.json`), { force: true });
  }
}
