import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasErrorCode } from '@cps/core';
import { eventually as waitFor } from '@cps/testing';
import type { BaseCloud, CloudNode, NodeSpec } from './types.js';

/** A driver prepared for {@link cloudContract}, with two ways to look behind its back. */
export interface CloudUnderTest {
  readonly cloud: BaseCloud;
  /** Whether the node's instance really runs, asked outside the driver (local: its pid). */
  isRunning(node: CloudNode): Promise<boolean>;
  /** Makes the node's instance die outside the driver (local: kill -9 of its pid). */
  crash(node: CloudNode): Promise<void>;
  cleanup(): Promise<void>;
}

/** The testing library's `eventually` (throws with the last value read), waiting 10 s by default. */
export const eventually = <T>(read: () => Promise<T>, accept: (v: T) => boolean, ms = 10_000): Promise<T> =>
  waitFor(read, accept, ms);

let n = 0;
/** A node id no other test of this run uses. */
export const freshNodeId = (): string => `n${Date.now().toString(36)}${(n++).toString(36)}`;

/** A minimal valid spec; `over` replaces top-level fields. */
export const nodeSpec = (nodeId = freshNodeId(), over: Partial<NodeSpec> = {}): NodeSpec => ({
  nodeId,
  kind: 'agent',
  appId: 'app1',
  serviceId: 'svc1',
  role: 'web',
  contextualization: { env: {}, files: {} },
  ...over,
});

const gone = (n: CloudNode | undefined): boolean => n === undefined || n.state === 'terminated';
const isValidation = (e: unknown): boolean => hasErrorCode(e, 'validation');
const overlap = (a: CloudNode, b: CloudNode): boolean =>
  a.ports !== undefined && b.ports !== undefined && a.ports.from <= b.ports.to && b.ports.from <= a.ports.to;

/** The behaviour every BaseCloud driver must show. Run it against each one. */
export const cloudContract = (name: string, start: () => Promise<CloudUnderTest>): void => {
  describe(`BaseCloud contract: ${name}`, () => {
    let t: CloudUnderTest;
    beforeAll(async () => {
      t = await start();
    });
    afterAll(async () => {
      if (!t) return;
      for (const node of await t.cloud.list()) await t.cloud.destroy(node.nodeId);
      await t.cleanup();
    });

    const liveIds = async (): Promise<string[]> =>
      (await t.cloud.list()).filter((x) => !gone(x)).map((x) => x.nodeId);

    it('creates a running node that list and get show', async () => {
      const spec = nodeSpec();
      const node = await t.cloud.create(spec);
      expect(node).toMatchObject({
        nodeId: spec.nodeId,
        cloud: t.cloud.name,
        state: 'running',
        kind: 'agent',
        appId: 'app1',
        serviceId: 'svc1',
      });
      expect(node.instanceId).not.toBe('');
      expect(await t.isRunning(node)).toBe(true);
      expect(await t.cloud.get(spec.nodeId)).toEqual(node);
      expect((await t.cloud.list()).filter((x) => x.nodeId === spec.nodeId)).toEqual([node]);
      expect(await t.cloud.get(freshNodeId())).toBeUndefined();
    });

    it('creates once per node id: a retry, even a concurrent one, returns the same node', async () => {
      const spec = nodeSpec();
      const [a, b] = await Promise.all([t.cloud.create(spec), t.cloud.create(spec)]);
      const c = await t.cloud.create(spec);
      expect(b.instanceId).toBe(a.instanceId);
      expect(c).toEqual(a);
      expect((await t.cloud.list()).filter((x) => x.nodeId === spec.nodeId)).toHaveLength(1);
    });

    it('destroys a node: its instance stops and it leaves list; destroying again is fine', async () => {
      const spec = nodeSpec();
      const node = await t.cloud.create(spec);
      await t.cloud.destroy(spec.nodeId);
      expect(await t.isRunning(node)).toBe(false);
      expect(gone(await t.cloud.get(spec.nodeId))).toBe(true);
      expect(await liveIds()).not.toContain(spec.nodeId);
      await t.cloud.destroy(spec.nodeId);
      await t.cloud.destroy(freshNodeId());
    });

    it.each(['*', '>', 'a.b', '..', '.', 'a/b', '../x', 'A', '', ' a', 'a'.repeat(64)])(
      'refuses the node id %j with code validation and creates nothing',
      async (nodeId) => {
        const before = await t.cloud.list();
        await expect(t.cloud.create(nodeSpec(nodeId))).rejects.toSatisfy(isValidation);
        await expect(t.cloud.get(nodeId)).rejects.toSatisfy(isValidation);
        await expect(t.cloud.destroy(nodeId)).rejects.toSatisfy(isValidation);
        expect(await t.cloud.list()).toEqual(before);
      },
    );

    it.each(['/x', '../x', 'a/../../x', 'a/./b', 'a//b', ''])(
      'refuses the file path %j with code validation, naming it, and creates nothing',
      async (file) => {
        const spec = nodeSpec(freshNodeId(), {
          contextualization: { env: {}, files: { ok: '1', [file]: 'x' } },
        });
        const error: unknown = await t.cloud.create(spec).catch((e: unknown) => e);
        expect(isValidation(error)).toBe(true);
        expect(hasErrorCode(error, 'validation') && error.issues.map((i) => i.path)).toEqual([
          `$.contextualization.files[${JSON.stringify(file)}]`,
        ]);
        expect(await t.cloud.get(spec.nodeId)).toBeUndefined();
      },
    );

    it('gives nodes on the same address disjoint port ranges', async () => {
      const a = await t.cloud.create(nodeSpec());
      const b = await t.cloud.create(nodeSpec());
      if (a.address !== undefined && a.address === b.address) expect(overlap(a, b)).toBe(false);
      const all = (await t.cloud.list()).filter((x) => !gone(x) && x.address === a.address);
      for (const x of all) for (const y of all) if (x !== y) expect(overlap(x, y)).toBe(false);
    });

    it('lists a node whose instance died as stopped, and still destroys it', async () => {
      const spec = nodeSpec();
      const node = await t.cloud.create(spec);
      await t.crash(node);
      const seen = await eventually(
        () => t.cloud.get(spec.nodeId),
        (x) => x?.state === 'stopped',
      );
      expect(seen?.state).toBe('stopped');
      expect((await t.cloud.list()).find((x) => x.nodeId === spec.nodeId)?.state).toBe('stopped');
      expect((await t.cloud.create(spec)).state).toBe('stopped');
      await t.cloud.destroy(spec.nodeId);
      expect(gone(await t.cloud.get(spec.nodeId))).toBe(true);
    });
  });
};
