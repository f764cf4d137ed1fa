import { CpsError } from '@cps/core';
import { PLATFORM_ADDRESSES, platformAddress, platformLink, platformLinkPeer } from './address-plan.js';
import { deleteLink, ip, ipAdding, linkAlias, links } from './kernel.js';

/**
 * A platform's address in the root namespace, where the nodes of its host-mode networks reach its
 * NATS (which listens there and nowhere else but loopback, never on `0.0.0.0`). It sits on a veth
 * pair of its own (`cps-h<k>`, `cps-h<k>p`) whose alias is the platform's tag, so several platforms
 * on one machine each hold one, and a platform finds and deletes its own by name.
 */
export interface PlatformAddress {
  readonly address: string;
  /** The link holding it; deleting the link deletes the address. */
  readonly link: string;
}

const tagOf = (k: number): Promise<string | undefined> => linkAlias(undefined, platformLink(k));

/**
 * The platform address tagged `tag`: the one it holds already (after a restart), or the lowest free
 * one, claimed by creating its link (the kernel refuses a second link of the same name, so two
 * platforms never get the same address).
 */
export const claimPlatformAddress = async (tag: string): Promise<PlatformAddress> => {
  const held = await ownPlatformLinks(tag);
  for (let k = PLATFORM_ADDRESSES.first; k <= PLATFORM_ADDRESSES.last; k++) {
    const link = platformLink(k);
    if (held.length > 0 && !held.includes(link)) continue;
    const mine =
      held.includes(link) ||
      (await ipAdding(undefined, `link add ${link} type veth peer name ${platformLinkPeer(k)}`));
    if (!mine) continue;
    await ip(
      undefined,
      `link set ${link} alias ${tag}`,
      `address replace ${platformAddress(k)}/32 dev ${link}`,
      `link set ${platformLinkPeer(k)} up`,
      `link set ${link} up`,
    );
    return { address: platformAddress(k), link };
  }
  throw new CpsError('unavailable', 'every host-mode platform address is taken on this machine');
};

/** The platform links tagged `tag` (normally one). */
const ownPlatformLinks = async (tag: string): Promise<string[]> => {
  const out: string[] = [];
  for (const name of await links('cps-h')) {
    const m = /^cps-h(\d+)$/.exec(name);
    if (m && (await tagOf(Number(m[1]))) === tag) out.push(name);
  }
  return out;
};

/** Deletes every platform address tagged `tag`; none is fine. */
export const releasePlatformAddress = async (tag: string): Promise<void> => {
  for (const link of await ownPlatformLinks(tag)) await deleteLink(undefined, link);
};
