import { statSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Identity } from '@cps/core';
import { OperatorModeAuthority } from '@cps/bus';
import { EventCatalog, ensureEventStream, JetStreamEventStore } from '@cps/events';
import {
  busTrustPem,
  ENROLL_PATH,
  EnrollingNodeIdentities,
  handleEnrollment,
  IdentityIssuer,
  identityEvents,
  issueServerCert,
} from '@cps/platform';
import { sourceCommand, TestNats } from '@cps/testing';
import { eventually, freshNodeId, nodeSpec } from '../cloud-contract.spec-helpers.js';
import { Ec2Cloud } from '../ec2/ec2-cloud.js';
import {
  ec2StandInCloudOptions,
  startEc2StandIn,
  type Ec2StandIn,
} from '../ec2/testing/ec2-stand-in.spec-helpers.js';
import {
  claimPlatformAddress,
  releasePlatformAddress,
  type PlatformAddress,
} from '../host/platform-address.js';
import { LocalCloud } from '../local/local-cloud.js';
import { isAlive } from '../local/proc.js';
import { StandInMachines } from './testing/machines.spec-helpers.js';

const NODE_ENTRY = fileURLToPath(new URL('./testing/enrolling-node.spec-helpers.ts', import.meta.url));

/** The director's enrollment route over HTTPS on `host`, with a certificate of the bus CA naming it. */
const serveEnrollment = async (nats: TestNats, issuer: IdentityIssuer, host: string): Promise<Server> => {
  const key = nats.keys.next();
  const cert =
    issueServerCert(nats.secrets, 'director', new Date(), key, [host]) + nats.secrets.busCa.certPem;
  const server = createServer({ cert, key: key.privateKeyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== ENROLL_PATH) return void res.writeHead(404).end();
      handleEnrollment(issuer, JSON.parse(Buffer.concat(chunks).toString('utf8'))).then(
        (r) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(r)),
        (e: unknown) => res.writeHead(400).end(String(e)),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return server;
};

const portOf = (s: Server): number => (s.address() as AddressInfo).port;

/** The addresses nats-server sees the connections named `name` come from (its loopback monitoring port). */
const clientAddresses = async (nats: TestNats, name: string): Promise<string[]> => {
  const { connections } = (await (
    await fetch(`http://127.0.0.1:${nats.servers.nodes[0]?.monitorPort}/connz`)
  ).json()) as { connections: { name?: string; ip: string }[] };
  return connections.filter((c) => c.name === name).map((c) => c.ip);
};
const hostMode = LocalCloud.hostModeUnavailable() === undefined;

describe.skipIf(!hostMode)(
  'an EC2 instance booted by the stand-in joins the bus over its own address',
  () => {
    const tag = `cps-e${process.pid.toString(36)}`;
    let platform: PlatformAddress;
    let nats: TestNats;
    let issuer: IdentityIssuer;
    let director: Server;
    let machines: StandInMachines;
    let s: Ec2StandIn;

    beforeAll(async () => {
      platform = await claimPlatformAddress(tag);
      nats = await TestNats.start({ host: platform.address });
      const nc = await nats.connect({ role: 'director', id: 'd1' });
      await ensureEventStream(nc);
      issuer = new IdentityIssuer({
        secrets: nats.secrets,
        store: new JetStreamEventStore(nc, { catalog: new EventCatalog(identityEvents) }),
        authority: new OperatorModeAuthority(nats.secrets.operator, () => nats.system()),
      });
      director = await serveEnrollment(nats, issuer, platform.address);
      const natsPort = nats.servers.nodes[0]?.port as number;
      machines = StandInMachines.create({
        name: 'ec2',
        reach: [
          { address: platform.address, port: natsPort },
          { address: platform.address, port: portOf(director) },
        ],
      });
      s = await startEc2StandIn({ machines });
    });
    afterAll(async () => {
      await machines?.close();
      await s?.close();
      director?.closeAllConnections();
      director?.close();
      await nats?.cleanup();
      await releasePlatformAddress(tag);
    });

    it('enrolls with its one-time token at the director on the platform address and joins NATS there (mTLS); terminating it ends its processes', async () => {
      const nodeId = freshNodeId();
      const identity: Identity = { role: 'agent', id: nodeId, appId: 'a1', serviceId: 's1', nodeId };
      const subject = `cps.node.a1.s1.${nodeId}.ping`;
      const pings: string[] = [];
      const dir = await nats.connect({ role: 'director', id: 'd2' });
      dir.subscribe(subject, {
        callback: (_e, m) => {
          pings.push(m.string());
          m.respond('pong');
        },
      });
      await dir.flush();
      const enrollUrl = `https://${platform.address}:${portOf(director)}`;
      const c = await new EnrollingNodeIdentities(
        issuer,
        nats.urls,
        enrollUrl,
        busTrustPem(nats.secrets),
      ).contextualize(identity);
      expect(nats.urls).toEqual([`tls://${platform.address}:${nats.servers.nodes[0]?.port}`]);
      const cloud = new Ec2Cloud({
        ...ec2StandInCloudOptions(s),
        startCommand: sourceCommand(NODE_ENTRY),
        readyTimeoutMs: 10_000,
      });
      const node = await cloud.create(
        nodeSpec(nodeId, {
          appId: 'a1',
          serviceId: 's1',
          contextualization: { env: { ...c.env, PING_SUBJECT: subject }, files: c.files },
        }),
      );
      expect(node.address).toMatch(/^198\.18\.\d+\.\d+$/);

      // the node asked the director, over the bus, with its own address
      expect(
        await eventually(
          async () => pings,
          (p) => p.length > 0,
          30_000,
        ),
      ).toEqual([node.address]);
      expect(await issuer.state(identity)).toMatchObject({ status: 'active' });
      // its identity is on its disk, where the node wrote it (the machine's /var/lib/cps/node)
      const machine = machines.machine(node.instanceId);
      expect(statSync(join(machine?.disk as string, 'node', 'identity.json')).mode & 0o777).toBe(0o600);
      // nats-server saw the node's connection come from the node's address
      expect(await clientAddresses(nats, `agent:${nodeId}`)).toEqual([node.address]);

      const pids = machines.processes(node.instanceId);
      await cloud.destroy(nodeId);
      expect(pids.filter((p) => isAlive(p))).toEqual([]);
      await eventually(
        async () => clientAddresses(nats, `agent:${nodeId}`),
        (a) => a.length === 0,
      );
    });
  },
);
