import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { generateKeyPair, hasErrorCode, ForbiddenError } from '@cps/core';
import { Bus, subjects, createManagerNode, createNode, destroyNode, issueNodeCertificate } from '@cps/bus';
import { InMemoryEventStore } from '@cps/events';
import { eventually, TestHost, ViolationLog } from '@cps/testing';
import { Provisioner, type BaseCloud } from '@cps/clouds';

/**
 * The Provisioner over the bus, as managers and supervisors use it: real nats-server, real
 * identities, real local processes (a node here is an idle Node process: what it runs is the
 * agent runtime's business, tested elsewhere).
 */
/** The live processes started as node `nodeId`, wherever their records say they are. */
const processesOf = (nodeId: string): number[] =>
  readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/environ`, 'utf8').split('\0').includes(`CPS_NODE_ID=${nodeId}`);
      } catch {
        return false;
      }
    })
    .map(Number);

describe('Provisioner: nodes for managers, manager processes for supervisors', () => {
  let host: TestHost;
  let dir: string;
  let manager: Bus;
  let other: Bus;
  let refuse = false;
  const mine = subjects.provisioner('a1', 's1');
  const agent = (nodeId: string) => ({
    nodeId,
    kind: 'agent' as const,
    serviceType: 'helloworld',
    role: 'node',
  });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cps-prov-'));
    const idle = join(dir, 'idle.mjs');
    writeFileSync(idle, 'setInterval(() => {}, 1000);\n');
    host = await TestHost.start({
      agentEntry: idle,
      managerEntry: idle,
      stopGraceMs: 500,
      policy: {
        check: () =>
          refuse ? Promise.reject(new ForbiddenError('quota: no nodes left')) : Promise.resolve(),
      },
    });
    manager = new Bus(await host.nats.connect({ role: 'manager', id: 's1', appId: 'a1', serviceId: 's1' }));
    other = new Bus(await host.nats.connect({ role: 'manager', id: 's2', appId: 'a1', serviceId: 's2' }));
  });
  afterAll(async () => {
    await manager?.close();
    await other?.close();
    await host?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates an agent once per node id, however often the request is retried', async () => {
    const [a, b] = await Promise.all([
      manager.request(mine, createNode, agent('n1'), { requestId: 'create:n1', timeoutMs: 20_000 }),
      manager.request(mine, createNode, agent('n1'), { requestId: 'create:n1-retry', timeoutMs: 20_000 }),
    ]);
    expect(a.instanceId).toBe(b.instanceId);
    const live = (await host.cloud.list()).filter((n) => n.nodeId === 'n1');
    expect(live).toHaveLength(1);
    expect(host.provisioner.get('n1')).toMatchObject({ kind: 'agent', appId: 'a1', serviceId: 's1' });
  });

  it("hands the cloud the Debian packages of an agent's service type, none for a manager", async () => {
    const seen: { nodeId: string; software?: readonly string[] }[] = [];
    const cloud: BaseCloud = {
      name: host.cloud.name,
      driver: host.cloud.driver,
      create: (spec) => {
        seen.push({ nodeId: spec.nodeId, ...(spec.software ? { software: spec.software } : {}) });
        return host.cloud.create(spec);
      },
      list: () => host.cloud.list(),
      get: (id) => host.cloud.get(id),
      destroy: (id) => host.cloud.destroy(id),
    };
    const p = new Provisioner({
      store: new InMemoryEventStore(),
      clouds: [cloud],
      identities: { contextualize: async () => ({ env: {}, files: {} }) },
      software: (type) => (type === 'redis' ? ['redis-server'] : []),
    });
    const base = { appId: 'a1', serviceId: 's1', cloud: host.cloud.name };
    await p.create({ ...base, nodeId: 'sw1', kind: 'agent', role: 'server', serviceType: 'redis' }, 'sw1');
    await p.create({ ...base, nodeId: 'sw2', kind: 'manager', serviceType: 'redis' }, 'sw2');
    expect(seen).toEqual([{ nodeId: 'sw1', software: ['redis-server'] }, { nodeId: 'sw2' }]);
    for (const id of ['sw1', 'sw2']) await p.destroy(id, undefined, `rm-${id}`);
  });

  it('refuses a manager asking for a manager process, or for nodes of another service', async () => {
    await expect(
      manager.request(mine, createNode, { ...agent('m1'), kind: 'manager' } as never),
    ).rejects.toSatisfy((e) => hasErrorCode(e, 'validation') && e.issues[0]?.path === '$.kind');

    const log = ViolationLog.watch(manager.connection);
    const theirs = `${subjects.managerProvisioner('a1', 's1')}.${createManagerNode.name}`;
    manager.connection.publish(theirs, '{}');
    await log.expect('Publish', theirs);
    const foreign = `${subjects.provisioner('a1', 's2')}.${createNode.name}`;
    manager.connection.publish(foreign, '{}');
    await log.expect('Publish', foreign);

    // n1 is s1's: s2's manager can neither destroy nor claim it
    await expect(
      other.request(subjects.provisioner('a1', 's2'), destroyNode, { nodeId: 'n1' }),
    ).rejects.toSatisfy((e) => hasErrorCode(e, 'forbidden'));
    await expect(other.request(subjects.provisioner('a1', 's2'), createNode, agent('n1'))).rejects.toSatisfy(
      (e) => hasErrorCode(e, 'forbidden'),
    );
    expect(host.provisioner.get('m1')).toBeUndefined();
  });

  it("signs an HTTPS certificate for its own service's node only, naming the node's address, from the services CA alone", async () => {
    const key = generateKeyPair();
    const n1 = host.provisioner.get('n1');
    expect(n1?.address).toBeDefined();
    const r = await manager.request(mine, issueNodeCertificate, {
      nodeId: 'n1',
      publicKeyPem: key.publicKeyPem,
    });
    const cert = new X509Certificate(r.certificate);
    expect(cert.verify(new X509Certificate(r.ca).publicKey)).toBe(true);
    expect(cert.subjectAltName).toContain(`IP Address:${n1!.address}`);
    expect(cert.checkPrivateKey(createPrivateKey(key.privateKeyPem))).toBe(true);
    // nothing of the platform trusts it: neither the bus CA nor the platform's root signed it
    for (const platformCa of [host.nats.secrets.busCa, host.nats.secrets.root])
      expect(cert.verify(new X509Certificate(platformCa.certPem).publicKey)).toBe(false);

    // s2's manager cannot have a certificate for s1's node, nor one for a node that is nobody's
    await expect(
      other.request(subjects.provisioner('a1', 's2'), issueNodeCertificate, {
        nodeId: 'n1',
        publicKeyPem: key.publicKeyPem,
      }),
    ).rejects.toSatisfy((e) => hasErrorCode(e, 'forbidden'));
    await expect(
      manager.request(mine, issueNodeCertificate, { nodeId: 'nobody', publicKeyPem: key.publicKeyPem }),
    ).rejects.toSatisfy((e) => hasErrorCode(e, 'not_found'));
    await expect(
      manager.request(mine, issueNodeCertificate, { nodeId: 'n1', publicKeyPem: 'not a key' }),
    ).rejects.toSatisfy((e) => hasErrorCode(e, 'validation') && e.issues[0]?.path === '$.publicKeyPem');
  });

  it("starts a service's manager process for a supervisor; its manager cannot destroy it", async () => {
    const r = await host.bus.request(
      subjects.managerProvisioner('a1', 's1'),
      createManagerNode,
      { nodeId: 'mgr-s1', serviceType: 'helloworld' },
      { timeoutMs: 20_000 },
    );
    expect((await host.cloud.get('mgr-s1'))?.instanceId).toBe(r.instanceId);
    expect(host.provisioner.get('mgr-s1')).toMatchObject({ kind: 'manager', serviceId: 's1' });
    await expect(manager.request(mine, destroyNode, { nodeId: 'mgr-s1' })).rejects.toSatisfy((e) =>
      hasErrorCode(e, 'forbidden'),
    );
    await expect(
      host.bus.request(subjects.managerProvisioner('a1', 's1'), destroyNode, { nodeId: 'n1' }),
    ).rejects.toSatisfy((e) => hasErrorCode(e, 'forbidden'));
    await host.bus.request(subjects.managerProvisioner('a1', 's1'), destroyNode, { nodeId: 'mgr-s1' });
    expect(await host.cloud.get('mgr-s1')).toBeUndefined();
    expect(host.provisioner.get('mgr-s1')?.status).toBe('destroyed');
  });

  it('records nothing and starts nothing when the policy refuses', async () => {
    const before = (await host.cloud.list()).length;
    refuse = true;
    try {
      await expect(manager.request(mine, createNode, agent('n9'))).rejects.toSatisfy(
        (e) => hasErrorCode(e, 'forbidden') && /quota/.test(e.message),
      );
    } finally {
      refuse = false;
    }
    expect(host.provisioner.get('n9')).toBeUndefined();
    expect((await host.cloud.list()).length).toBe(before);
  });

  it('reconciles: destroys an orphan process, starts a recorded node that died again with its directory', async () => {
    const orphan = await host.cloud.create({
      nodeId: 'orphan1',
      kind: 'agent',
      appId: 'a1',
      serviceId: 's1',
      contextualization: { env: {}, files: {} },
    });
    const n1 = (await host.cloud.get('n1'))!;
    const kept = join(host.dir, 'cloud', 'nodes', 'n1', 'work', 'kept.txt');
    writeFileSync(kept, 'data');
    process.kill(Number(n1.instanceId), 'SIGKILL');
    await eventually(
      () => host.cloud.get('n1'),
      (n) => n?.state !== 'running',
      5_000,
    );

    const report = await host.provisioner.reconcile();
    expect(report.orphansDestroyed).toEqual([orphan.nodeId]);
    expect(report.restarted).toEqual(['n1']);
    expect(report.recreated).toEqual([]);
    expect(await host.cloud.get('orphan1')).toBeUndefined();
    const again = (await host.cloud.get('n1'))!;
    expect(again.state).toBe('running');
    expect(again.instanceId).not.toBe(n1.instanceId);
    expect(readFileSync(kept, 'utf8')).toBe('data');
    expect(host.provisioner.get('n1')?.status).toBe('provisioned');

    // a second pass finds nothing to do
    expect(await host.provisioner.reconcile()).toEqual({
      orphansDestroyed: [],
      restarted: [],
      recreated: [],
      forgotten: [],
    });
  });

  it('re-creates a dead node once when a manager asks for it while the reconciler does', async () => {
    for (let round = 0; round < 8; round++) {
      const before = (await host.cloud.get('n1'))!;
      process.kill(Number(before.instanceId), 'SIGKILL');
      await eventually(
        () => host.cloud.get('n1'),
        (n) => n?.state !== 'running',
        5_000,
      );
      const asking = manager.request(mine, createNode, agent('n1'), {
        requestId: `create:n1:${round}`,
        timeoutMs: 20_000,
      });
      // the reconciler starts a little later each round, so its steps meet the creation's
      await new Promise((r) => setTimeout(r, round * 4));
      const [, asked] = await Promise.all([host.provisioner.reconcile(), asking]);
      const live = (await host.cloud.get('n1'))!;
      expect(live.state).toBe('running');
      expect(asked.instanceId).toBe(live.instanceId);
      expect(processesOf('n1')).toEqual([Number(live.instanceId)]);
    }
  });

  /** A manager node and an agent node of a1/s1, both created and then killed with -9. */
  const killedManagerAndAgent = async (managerId: string, agentId: string): Promise<void> => {
    const mgr = await host.bus.request(
      subjects.managerProvisioner('a1', 's1'),
      createManagerNode,
      { nodeId: managerId, serviceType: 'helloworld' },
      { timeoutMs: 20_000 },
    );
    const node = await manager.request(mine, createNode, agent(agentId), { timeoutMs: 20_000 });
    for (const n of [mgr, node]) process.kill(Number(n.instanceId), 'SIGKILL');
    for (const id of [managerId, agentId])
      await eventually(
        () => host.cloud.get(id),
        (n) => n?.state !== 'running',
        5_000,
      );
  };

  it('starts the agents again before their manager (cps up): the manager hears them at once', async () => {
    await killedManagerAndAgent('mgr-up', 'after-mgr');
    const report = await host.provisioner.reconcile();
    expect(report.restarted).toEqual(['after-mgr', 'mgr-up']);
    await host.bus.request(subjects.managerProvisioner('a1', 's1'), destroyNode, { nodeId: 'mgr-up' });
    await manager.request(mine, destroyNode, { nodeId: 'after-mgr' });
  });

  it('leaves dead agents to their managers in a periodic pass, and brings back a dead manager', async () => {
    await killedManagerAndAgent('mgr-left', 'left');
    const report = await host.provisioner.reconcile({ agents: 'leave' });
    expect(report.restarted).toEqual(['mgr-left']);
    expect((await host.cloud.get('left'))?.state).toBe('stopped');
    expect(host.provisioner.get('left')?.status).toBe('provisioned');
    await host.bus.request(subjects.managerProvisioner('a1', 's1'), destroyNode, { nodeId: 'mgr-left' });
    await manager.request(mine, destroyNode, { nodeId: 'left' });
  });

  it('never brings back a dead node its manager destroys while the reconciler revives others', async () => {
    for (let round = 0; round < 4; round++) {
      // the reconciler takes the records in order: reviving the first gives the destroy its time
      const first = `keep${round}`;
      const nodeId = `gone${round}`;
      for (const id of [first, nodeId]) {
        const made = await manager.request(mine, createNode, agent(id), { timeoutMs: 20_000 });
        process.kill(Number(made.instanceId), 'SIGKILL');
        await eventually(
          () => host.cloud.get(id),
          (n) => n?.state !== 'running',
          5_000,
        );
      }
      const reconciling = host.provisioner.reconcile();
      await new Promise((r) => setTimeout(r, round * 5));
      await Promise.all([
        reconciling,
        manager.request(mine, destroyNode, { nodeId }, { requestId: `destroy:${nodeId}`, timeoutMs: 20_000 }),
      ]);
      expect(host.provisioner.get(nodeId)?.status).toBe('destroyed');
      expect(await host.cloud.get(nodeId)).toBeUndefined();
      expect(processesOf(nodeId)).toEqual([]);
      expect((await host.cloud.get(first))?.state).toBe('running');
    }
  });
});
