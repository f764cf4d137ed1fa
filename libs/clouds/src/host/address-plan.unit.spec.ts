import { describe, expect, it } from 'vitest';
import {
  bridgeNamespace,
  lowestFree,
  networkSubnet,
  nodeAddress,
  nodeNamespace,
  parseNodeAddress,
  platformAddress,
  platformLinkPeer,
  uplinkInnerAddress,
  uplinkName,
  uplinkRootAddress,
} from './address-plan.js';

const inTestRange = (a: string): boolean => /^198\.(18|19)\.\d{1,3}\.\d{1,3}$/.test(a);

describe('host-mode address plan', () => {
  it('derives every address from 198.18.0.0/15 and every name within the kernel limit of 15 characters', () => {
    for (const network of [1, 254])
      for (const host of [2, 254]) {
        for (const a of [
          nodeAddress(network, host),
          uplinkRootAddress(network),
          uplinkInnerAddress(network),
          platformAddress(250),
        ])
          expect(inTestRange(a), a).toBe(true);
        expect(networkSubnet(network)).toMatch(/^198\.18\.\d+\.0\/24$/);
        for (const name of [uplinkName(network), platformLinkPeer(250)])
          expect(name.length, name).toBeLessThanOrEqual(15);
        expect(nodeNamespace(network, host)).toMatch(/^cps-/);
        expect(bridgeNamespace(network)).toMatch(/^cps-/);
      }
  });

  it('reads a node address back, and nothing else', () => {
    expect(parseNodeAddress(nodeAddress(7, 12))).toEqual({ network: 7, host: 12 });
    for (const a of ['198.18.7.1', '198.18.0.5', '198.18.255.5', '198.19.7.12', '127.0.0.1', '198.18.7.255'])
      expect(parseNodeAddress(a), a).toBeUndefined();
  });

  it('hands out the lowest free number', () => {
    expect(lowestFree({ first: 2, last: 4 }, new Set([2, 4]))).toBe(3);
    expect(lowestFree({ first: 2, last: 3 }, new Set([2, 3]))).toBeUndefined();
  });
});
