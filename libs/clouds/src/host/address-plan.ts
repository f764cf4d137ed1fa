import { createHash } from 'node:crypto';

/**
 * Where host-mode nodes live on the network, derived from small numbers so that every name and
 * address can be found again from a record, never searched for. Only `198.18.0.0/15` is used:
 *
 * - application network `i` (1..254): nodes in `198.18.i.0/24`, its bridge at `198.18.i.1` in the
 *   namespace `cps-b<i>`, linked to the root namespace by `198.19.i.0/30` (root side `.1`, the
 *   bridge namespace's side `.2`, on the veth `cps-b<i>` / `up0`);
 * - node `h` (2..254) of network `i`: address `198.18.i.h`, namespace `cps-b<i>-n<h>`, its `eth0`
 *   paired with `n<h>` on the bridge;
 * - platform address `k` (1..250): `198.19.255.k/32` in the root namespace, on the veth `cps-h<k>`
 *   (peer `cps-h<k>p`): where the nodes of one platform reach its NATS.
 */

export const NETWORKS = { first: 1, last: 254 } as const;
export const HOSTS = { first: 2, last: 254 } as const;
export const PLATFORM_ADDRESSES = { first: 1, last: 250 } as const;

/** Everything host mode creates is named with this prefix (namespaces, links). */
export const NAME_PREFIX = 'cps-';

/**
 * The tag of what the owner of directory `dir` makes in the kernel (a platform home, a local cloud):
 * its cgroup, and the alias of its bridges, uplinks and platform link. Nothing untagged is deleted.
 */
export const ownerTag = (dir: string): string =>
  `${NAME_PREFIX}${createHash('sha256').update(dir).digest('hex').slice(0, 12)}`;

export const bridgeNamespace = (network: number): string => `cps-b${network}`;
export const uplinkName = (network: number): string => `cps-b${network}`;
/** The uplink's end inside the bridge namespace. */
export const UPLINK_INNER = 'up0';
export const BRIDGE = 'br0';
export const NODE_LINK = 'eth0';

export const networkSubnet = (network: number): string => `198.18.${network}.0/24`;
export const bridgeAddress = (network: number): string => `198.18.${network}.1`;
export const uplinkRootAddress = (network: number): string => `198.19.${network}.1`;
export const uplinkInnerAddress = (network: number): string => `198.19.${network}.2`;

export const nodeNamespace = (network: number, host: number): string => `cps-b${network}-n${host}`;
export const nodeAddress = (network: number, host: number): string => `198.18.${network}.${host}`;
/** The name of a node's link on its network's bridge. */
export const nodePort = (host: number): string => `n${host}`;

export const platformLink = (k: number): string => `cps-h${k}`;
export const platformLinkPeer = (k: number): string => `cps-h${k}p`;
export const platformAddress = (k: number): string => `198.19.255.${k}`;

/** The network and host of a node address of this plan, or undefined for any other address. */
export const parseNodeAddress = (address: string): { network: number; host: number } | undefined => {
  const m = /^198\.18\.(\d{1,3})\.(\d{1,3})$/.exec(address);
  if (!m) return undefined;
  const network = Number(m[1]);
  const host = Number(m[2]);
  const inRange = (n: number, r: { first: number; last: number }): boolean => n >= r.first && n <= r.last;
  return inRange(network, NETWORKS) && inRange(host, HOSTS) ? { network, host } : undefined;
};

/** The namespace of the node at a host-mode `address`, or undefined for any other address. */
export const namespaceOfAddress = (address: string): string | undefined => {
  const p = parseNodeAddress(address);
  return p && nodeNamespace(p.network, p.host);
};

/** The lowest number of `range` that `taken` does not hold, or undefined when all are taken. */
export const lowestFree = (
  range: { readonly first: number; readonly last: number },
  taken: ReadonlySet<number>,
): number | undefined => {
  for (let n = range.first; n <= range.last; n++) if (!taken.has(n)) return n;
  return undefined;
};
