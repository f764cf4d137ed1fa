import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '@cps/testing';
import type { Director } from '../director.js';
import { tarOf } from '../../../../libs/archives/src/extract/archives.spec-helpers.js';
import { DirectorHarness, type Client } from '../director.spec-helpers.js';
import { ARCHIVE_ALLOW_ENV } from '../manifests/manifests.feature.js';

/** A generic service whose run.sh says where its linked cache is. */
const CODE = gzipSync(
  tarOf([{ path: 'run.sh', data: 'echo "cache at $LINK_CACHE_REDIS ($1)"\n', mode: 0o755 }]),
);
const pathsAndCodes = (issues: { path: string; code: string }[]) =>
  issues.map((i) => ({ path: i.path, code: i.code }));

describe('links: a service names another of its application, and its nodes follow that one’s endpoints', () => {
  let h: DirectorHarness;
  let d: Director;
  let alice: Client;
  let codeServer: Server;
  let codeUrl: string;
  const allowBefore = process.env[ARCHIVE_ALLOW_ENV];
  const svc = (name: string) => `/v1/applications/linked/services/${name}`;

  const settled = async (c: Client, operationId: string) =>
    (
      await eventually(
        () => c.get(`/v1/operations/${operationId}`),
        (r) => r.body?.state !== 'running',
        150_000,
      )
    ).body as { state: string; reason?: string };

  /** Runs run.sh on the app's nodes with a marker; answers what it printed on its master. */
  const cacheSeenByRun = async (marker: string): Promise<string> => {
    // the code reaches a node shortly after it runs: until then run.sh does not start there
    await eventually(
      () => alice.post(`${svc('app')}/calls/run`, { parameters: [marker] }),
      (r) =>
        r.status === 200 &&
        (r.body.result.nodes as { nodeId: string; started: boolean }[]).some(
          (n) => n.nodeId === masterOf() && n.started,
        ),
      20_000,
    );
    const log = await eventually(
      () => alice.get(`${svc('app')}/logs?workload=run&node=${masterOf()}`),
      (r) => typeof r.body?.text === 'string' && (r.body.text as string).includes(`(${marker})`),
      20_000,
    );
    const line = (log.body.text as string).split('\n').find((l) => l.includes(`(${marker})`)) ?? '';
    return /cache at (\S*) /.exec(line)?.[1] ?? '';
  };
  let master = '';
  const masterOf = () => master;

  beforeAll(async () => {
    codeServer = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/gzip' });
      res.end(CODE);
    });
    await new Promise<void>((r) => codeServer.listen(0, '127.0.0.1', r));
    codeUrl = `http://127.0.0.1:${(codeServer.address() as AddressInfo).port}/code.tar.gz`;
    process.env[ARCHIVE_ALLOW_ENV] = `http://127.0.0.1:${(codeServer.address() as AddressInfo).port}/`;
    h = await DirectorHarness.start();
    d = await h.startDirector();
    alice = await h.user(d, 'alice');
  });
  afterAll(async () => {
    if (allowBefore === undefined) delete process.env[ARCHIVE_ALLOW_ENV];
    else process.env[ARCHIVE_ALLOW_ENV] = allowBefore;
    await new Promise((r) => codeServer?.close(r));
    await h?.cleanup();
  });

  it('refuses bad links with their paths and creates nothing', async () => {
    const before = (await alice.get('/v1/applications')).body.applications as unknown[];
    const manifest = (services: object[]) => ({ Application: 'bad-links', Services: services });
    const cases: [object[], { path: string; code: string }[]][] = [
      [
        [{ ServiceName: 'a', Type: 'generic', Links: { db: 'nowhere' } }],
        [{ path: '$.Services[0].Links.db', code: 'unknown_service' }],
      ],
      [
        [{ ServiceName: 'a', Type: 'generic', Links: { me: 'a' } }],
        [{ path: '$.Services[0].Links.me', code: 'link_cycle' }],
      ],
      [
        [
          { ServiceName: 'a', Type: 'generic', Links: { b: 'b' } },
          { ServiceName: 'b', Type: 'redis', Links: { c: 'c' } },
          { ServiceName: 'c', Type: 'generic', Links: { a: 'a' } },
        ],
        [{ path: '$.Services[2].Links.a', code: 'link_cycle' }],
      ],
      [
        [{ ServiceName: 'a', Type: 'redis', Config: { maxmemory: 1 } }],
        [{ path: '$.Services[0].Config.maxmemory', code: 'unrecognized_keys' }],
      ],
      [
        [{ ServiceName: 'a', Type: 'redis', StartRole: 'x' }],
        [{ path: '$.Services[0].StartRole', code: 'not_for_type' }],
      ],
    ];
    for (const [services, expected] of cases) {
      const r = await alice.post('/v1/manifests', manifest(services));
      expect(r.status, r.text).toBe(400);
      expect(pathsAndCodes(r.body.issues as never)).toEqual(expected);
    }
    // through the API: a service of another application, or one that does not exist
    expect((await alice.post('/v1/applications', { name: 'other' })).status).toBe(201);
    expect(
      (await alice.post('/v1/applications/other/services', { type: 'redis', name: 'theirs' })).status,
    ).toBe(201);
    expect((await alice.post('/v1/applications', { name: 'mine' })).status).toBe(201);
    for (const target of ['theirs', 'nothing']) {
      const r = await alice.post('/v1/applications/mine/services', {
        type: 'generic',
        name: 'g',
        links: { db: target },
      });
      expect(r.status, r.text).toBe(400);
      expect(pathsAndCodes(r.body.issues as never)).toEqual([
        { path: '$.links.db', code: 'unknown_service' },
      ]);
    }
    expect((await alice.get('/v1/applications/mine/services')).body.services).toEqual([]);
    expect(((await alice.get('/v1/applications')).body.applications as unknown[]).length).toBe(
      before.length + 2,
    );
  });

  it('deploys a manifest whose first service links a later one (added and started first), its type’s keys reaching the plugin', async () => {
    const r = await alice.post('/v1/manifests', {
      Application: 'linked',
      Services: [
        { ServiceName: 'app', Type: 'generic', Archive: codeUrl, Start: 1, Links: { cache: 'sessions' } },
        { ServiceName: 'sessions', Type: 'redis', Start: 1, Password: 'sessions-secret-1' },
      ],
    });
    expect(r.status, r.text).toBe(202);
    const op = await settled(alice, r.body.operationId as string);
    expect(op.state, op.reason).toBe('succeeded');

    const sessions = (await alice.get(svc('sessions'))).body as {
      serviceId: string;
      endpoints: Record<string, { address: string; port: number; nodeId: string }>;
    };
    const redis = sessions.endpoints['redis']!;
    expect(redis.address).toBe('127.0.0.1');
    // the link shows the linked service's endpoint once the app's manager has it
    const app = await eventually(
      () => alice.get(svc('app')),
      (x) => x.body?.links?.cache?.endpoints?.redis?.port === redis.port,
      20_000,
    );
    expect(app.body.links.cache.serviceId).toBe(sessions.serviceId);
    master = ((await alice.get(`${svc('app')}/nodes`)).body.nodes as { nodeId: string; role: string }[]).find(
      (n) => n.role === 'master',
    )!.nodeId;
    expect(await cacheSeenByRun('first')).toBe(`127.0.0.1:${redis.port}`);

    // the manifest's Password reached the redis plugin: its servers want it, and its methods give it
    const ping = (...auth: string[]) =>
      execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', String(redis.port), ...auth, 'PING'], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      }).trim();
    expect(ping()).toMatch(/NOAUTH/);
    expect(ping('--no-auth-warning', '-a', 'sessions-secret-1')).toBe('PONG');
    // a replica acknowledges writes once its first sync is done
    await eventually(
      () => alice.post(`${svc('sessions')}/calls/get_replication`, {}),
      (r) =>
        r.status === 200 &&
        (r.body.result.nodes as { role?: string; link?: string }[]).some(
          (n) => n.role === 'replica' && n.link === 'up',
        ),
      30_000,
    );
    const set = await alice.post(`${svc('sessions')}/calls/set`, { key: 'k', value: 'v' });
    expect(set.status, set.text).toBe(200);
    expect(set.body.result).toEqual({ replicas: 1 });

    // the exported manifest deploys the same links again
    const exported = (await alice.get('/v1/applications/linked/manifest')).body as {
      Services: { ServiceName: string; Links?: Record<string, string>; Password?: string }[];
    };
    expect(exported.Services.find((s) => s.ServiceName === 'app')?.Links).toEqual({ cache: 'sessions' });
    // the secret is exported as a reference, never as its value
    expect(exported.Services.find((s) => s.ServiceName === 'sessions')).toMatchObject({
      Password: `secret:${sessions.serviceId}/Password`,
    });
    // a linked service is not removed from under its linking one
    const removal = await alice.request('DELETE', svc('sessions'));
    expect(removal.status, removal.text).toBe(409);
  });

  it('moves the link when the linked service moves its endpoint (a promotion): the nodes get the new address', async () => {
    const before = (await alice.get(svc('sessions'))).body.endpoints.redis as {
      port: number;
      nodeId: string;
    };
    const replica = ((await alice.get(`${svc('sessions')}/nodes`)).body.nodes as { nodeId: string }[]).find(
      (n) => n.nodeId !== before.nodeId,
    )!.nodeId;
    const promoted = await alice.post(`${svc('sessions')}/calls/promote`, { nodeId: replica });
    expect(promoted.status, promoted.text).toBe(200);
    const after = (
      await eventually(
        () => alice.get(svc('sessions')),
        (x) => x.body?.endpoints?.redis?.nodeId === replica,
        20_000,
      )
    ).body.endpoints.redis as { port: number };
    expect(after.port).not.toBe(before.port);
    await eventually(
      () => alice.get(svc('app')),
      (x) => x.body?.links?.cache?.endpoints?.redis?.port === after.port,
      20_000,
    );
    expect(await cacheSeenByRun('second')).toBe(`127.0.0.1:${after.port}`);
  });
});
