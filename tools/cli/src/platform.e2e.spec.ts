import { spawn } from 'node:child_process';
import { request as httpsRequest } from 'node:https';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBus } from '@cps/bus';
import { JetStreamEventStore } from '@cps/events';
import { isRunning, PlatformHome } from '@cps/platform';
import { CLI, cliPlatform, run } from '@cps/testing';
import { aggregateIds } from '@cps/core';

describe('cps up / status / down: the local platform as a user runs it', () => {
  const platform = cliPlatform('cps-e2e-');
  const { root, home, env, cps } = platform;
  let director = '';
  let token = '';
  /** A request to the director, trusting only the platform's CA (as the CLI does). */
  const https = (method: string, path: string, json?: unknown): Promise<{ status: number; body: any }> =>
    new Promise((resolve, reject) => {
      const body = json === undefined ? undefined : Buffer.from(JSON.stringify(json));
      const req = httpsRequest(
        new URL(path, director),
        {
          method,
          ca: readFileSync(join(home, 'ca.pem'), 'utf8'),
          agent: false,
          headers: {
            ...(token ? { authorization: `Bearer ${token}` } : {}),
            ...(body ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined });
          });
        },
      );
      req.on('error', reject);
      if (body) req.write(body);
      req.end();
    });

  beforeAll(() => platform.init());
  afterAll(() => platform.cleanup());

  it('comes up healthy with mTLS, operator-mode JWT and JetStream, twice in a row', async () => {
    const first = await cps('up', '--json');
    const r = JSON.parse(first.stdout.slice(first.stdout.indexOf('{'))) as {
      health: {
        server: { tlsRequired: boolean; tlsVerify: boolean; version: string };
        jetstream: { snapshotBucket: boolean };
      };
      directorUrl: string;
      admin: { username: string; password: string };
    };
    const h = r.health;
    expect(h.server).toMatchObject({ tlsRequired: true, tlsVerify: true, version: '2.9.10' });
    expect(h.jetstream.snapshotBucket).toBe(true);
    expect(r.directorUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(r.admin.username).toBe('admin');
    director = r.directorUrl;
    const login = await https('POST', '/v1/sessions', { username: 'admin', password: r.admin.password });
    expect(login.status).toBe(201);
    token = login.body.token;
    const second = await cps('up');
    expect(second.stdout).toMatch(/already running/);
    expect(second.stdout).toContain(`director: ${director}`);
    // the generated password is shown once
    expect(second.stdout).not.toContain(r.admin.password);
    expect(statSync(join(home, 'secrets.sealed')).mode & 0o077).toBe(0);
    expect(statSync(join(home, 'master.key')).mode & 0o077).toBe(0);
    expect(readFileSync(join(home, 'secrets.sealed'), 'utf8')).not.toMatch(/PRIVATE KEY|SU[A-Z0-9]{20}/);
  });

  it('restarts nats-server after kill -9 with every acknowledged event kept', async () => {
    const p = PlatformHome.open(home, env);
    const id = await p.directorIdentity();
    const open = () =>
      connectBus({
        servers: p.natsUrls(),
        tls: id.tls,
        credentials: id.credentials,
        inboxPrefix: id.inboxPrefix,
      });
    const nc = await open();
    const store = new JetStreamEventStore(nc);
    for (let v = 0; v < 20; v++)
      await store.append('e2e.k1', [{ type: 'tick', data: { v } }], {
        expectedVersion: v,
        metadata: { actor: 't', correlationId: 'c', causationId: `r${v}` },
      });
    await nc.close();
    const natsPid = Number(readFileSync(join(home, 'run', 'nats.pid'), 'utf8'));
    process.kill(natsPid, 'SIGKILL');
    const deadline = Date.now() + 20_000;
    let status = '';
    while (Date.now() < deadline) {
      const again = Number(readFileSync(join(home, 'run', 'nats.pid'), 'utf8'));
      if (again !== natsPid) {
        status = (await cps('status').catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }))).stdout;
        if (status.includes('healthy')) break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toMatch(/healthy/);
    const nc2 = await open();
    expect((await new JetStreamEventStore(nc2).readAggregate('e2e.k1')).version).toBe(20);
    await nc2.close();
  });

  it('deploys the sample manifest with the CLI credentials kept by the first up, once', async () => {
    // the first up signed the CLI in: a context named after the data directory, mode 0600
    const config = join(root, 'config', 'config.json');
    expect(statSync(config).mode & 0o077).toBe(0);
    expect(JSON.parse(readFileSync(config, 'utf8'))).toMatchObject({
      current: 'home',
      contexts: { home: { user: 'admin', ca: join(home, 'ca.pem') } },
    });
    const sample = join(process.cwd(), 'examples', 'generic-hello.json');
    const first = await cps('deploy', sample, '--if-missing');
    expect(first.stdout).toMatch(/deployed: https:\/\/127\.0\.0\.1:\d+\/v1\/applications\//);
    expect((await cps('deploy', sample, '--if-missing')).stdout).toMatch(/already deployed/);
    await expect(cps('deploy', sample)).rejects.toMatchObject({
      stderr: expect.stringMatching(/name_taken/),
    });
    const apps = await cps('app', 'list');
    expect(apps.stdout).toMatch(/generic-hello\s+a[0-9a-f]+\s+hello:RUNNING/);
  });

  it('restarts the director after kill -9: sessions and applications kept', async () => {
    expect((await https('POST', '/v1/applications', { name: 'kept' })).status).toBe(201);
    const pid = Number(readFileSync(join(home, 'run', 'director.pid'), 'utf8'));
    process.kill(pid, 'SIGKILL');
    const deadline = Date.now() + 30_000;
    let app: { status: number; body: any } = { status: 0, body: undefined };
    while (Date.now() < deadline) {
      const now = Number(readFileSync(join(home, 'run', 'director.pid'), 'utf8'));
      if (now !== pid) {
        app = await https('GET', '/v1/applications/kept').catch(() => app);
        if (app.status === 200) break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(app.status).toBe(200);
    expect(app.body.name).toBe('kept');
    expect(isRunning(pid)).toBe(false);
  });

  it('keeps following events across a kill -9 of the director: resumed, nothing lost or repeated', async () => {
    const follower = spawn(process.execPath, [CLI, '--json', 'events', '--follow'], { env });
    let out = '';
    let err = '';
    follower.stdout.on('data', (d: Buffer) => (out += d.toString()));
    follower.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => follower.on('close', r));
    const until = async (what: () => boolean, ms = 30_000) => {
      const deadline = Date.now() + ms;
      while (!what() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      return what();
    };
    expect(await until(() => out.includes('ApplicationCreated')), err).toBe(true);
    const pid = Number(readFileSync(join(home, 'run', 'director.pid'), 'utf8'));
    process.kill(pid, 'SIGKILL');
    // a change made while the director is down for the follower: made through the restarted director
    let created = 0;
    const deadline = Date.now() + 30_000;
    while (created !== 201 && Date.now() < deadline) {
      created = (await https('POST', '/v1/applications', { name: 'while-cut' }).catch(() => ({ status: 0 })))
        .status;
      if (created !== 201) await new Promise((r) => setTimeout(r, 200));
    }
    expect(created).toBe(201);
    const appId = (await https('GET', '/v1/applications/while-cut')).body.appId as string;
    expect(await until(() => out.includes(aggregateIds.app(appId))), `${out}\n${err}`).toBe(true);
    expect(err).toMatch(/reconnecting, attempt 1/);
    // every event once: no event printed twice
    const ids = out
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { id: string }).id);
    expect(new Set(ids).size).toBe(ids.length);
    follower.kill('SIGINT');
    expect(await exited).toBe(0);
  });

  it('after kill -9 of the supervisor, status says so and up adopts the nats-server and director that still run: no outage, nodes kept', async () => {
    const read = (name: string) => Number(readFileSync(join(home, 'run', name), 'utf8'));
    const [supervisor, nats, directorPid] = [read('supervisor.pid'), read('nats.pid'), read('director.pid')];
    const nodes = async () =>
      (
        JSON.parse((await cps('--json', 'service', 'nodes', 'hello', '--app', 'generic-hello')).stdout) as {
          nodes: { nodeId: string; state: string }[];
        }
      ).nodes;
    const before = await nodes();
    expect(before.length).toBeGreaterThan(0);
    // the director is asked every 50 ms from the kill until the new supervisor runs
    let [probes, refused, probing] = [0, 0, true];
    const probe = (async () => {
      while (probing) {
        probes++;
        const r = await https('GET', '/healthz').catch(() => ({ status: 0 }));
        if (r.status !== 200) refused++;
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    process.kill(supervisor, 'SIGKILL');
    while (isRunning(supervisor)) await new Promise((r) => setTimeout(r, 20));
    const status = await cps('status');
    expect(status.stdout).toMatch(
      new RegExp(`nats-server \\(pid ${nats}\\) and the director \\(pid ${directorPid}\\) run without one`),
    );
    expect(status.stdout).toMatch(/run `cps up` to supervise them again/);
    expect(status.stdout).not.toMatch(/joined director/);
    const t0 = Date.now();
    const again = await cps('up');
    const upMs = Date.now() - t0;
    probing = false;
    await probe;
    expect(again.stdout).toMatch(/started supervisor \(pid \d+\); it took over the nats-server and director/);
    expect(again.stdout).toMatch(/healthy/);
    expect(read('supervisor.pid')).not.toBe(supervisor);
    expect([read('nats.pid'), read('director.pid')]).toEqual([nats, directorPid]);
    expect([isRunning(nats), isRunning(directorPid)]).toEqual([true, true]);
    expect(refused, `${refused} of ${probes} probes refused; up took ${upMs} ms`).toBe(0);
    console.log(`kill -9 of the supervisor, then up (${upMs} ms): ${refused} of ${probes} probes refused`);
    expect((await cps('status')).stdout).toMatch(/supervisor: pid \d+/);
    // longer than the heartbeat timeout: the nodes are the same ones, running
    await new Promise((r) => setTimeout(r, 4_000));
    expect(await nodes()).toEqual(
      expect.arrayContaining(
        before.map((n) => expect.objectContaining({ nodeId: n.nodeId, state: 'running' })),
      ),
    );
    expect((await nodes()).length).toBe(before.length);

    // supervised again: each is restarted when it dies
    process.kill(directorPid, 'SIGKILL');
    const deadline = Date.now() + 30_000;
    let app = { status: 0 };
    while (Date.now() < deadline) {
      if (read('director.pid') !== directorPid) {
        app = await https('GET', '/v1/applications/kept').catch(() => app);
        if (app.status === 200) break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(app.status).toBe(200);
    process.kill(nats, 'SIGKILL');
    let healthy = '';
    while (Date.now() < deadline + 20_000 && !healthy.includes('healthy')) {
      await new Promise((r) => setTimeout(r, 200));
      if (read('nats.pid') === nats) continue;
      healthy = (await cps('status').catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }))).stdout;
    }
    expect(healthy).toMatch(/healthy/);
    const p = PlatformHome.open(home, env);
    const id = await p.directorIdentity();
    const nc = await connectBus({
      servers: p.natsUrls(),
      tls: id.tls,
      credentials: id.credentials,
      inboxPrefix: id.inboxPrefix,
    });
    expect((await new JetStreamEventStore(nc).readAggregate('e2e.k1')).version).toBe(20);
    await nc.close();
  });

  it('lets a second director join with an explicit sealed bundle', async () => {
    const bundle = join(root, 'join.bundle');
    const joinEnv = { ...env, CPS_JOIN_PASSPHRASE: 'correct horse battery staple' };
    await run(process.execPath, [CLI, 'platform', 'export-join', '--out', bundle], { env: joinEnv });
    expect(statSync(bundle).mode & 0o077).toBe(0);
    const home2 = join(root, 'home2');
    const env2 = { ...joinEnv, CPS_HOME: home2 };
    await expect(
      run(process.execPath, [CLI, 'platform', 'join', '--bundle', bundle, '--director-id', 'd2'], {
        env: { ...env2, CPS_JOIN_PASSPHRASE: 'wrong passphrase, long enough' },
      }),
    ).rejects.toMatchObject({ stderr: expect.stringMatching(/unauthenticated/) });
    await run(process.execPath, [CLI, 'platform', 'join', '--bundle', bundle, '--director-id', 'd2'], {
      env: env2,
    });
    const s = await run(process.execPath, [CLI, 'status', '--json'], { env: env2 });
    expect(s.stdout).toMatch(/"director": "director:d2"/);
  });

  it('stops with down, nodes included; down again is harmless', async () => {
    const down = await cps('down');
    expect(down.stdout).toMatch(/^stopped/);
    expect(down.stdout).toMatch(/stopped [1-9]\d* node\(s\)/);
    // stopped, not removed: their directories wait for the next up
    const nodes = await platform.localNodes();
    expect(nodes.length).toBeGreaterThan(0);
    expect(nodes.every((n) => n.state === 'stopped')).toBe(true);
    const again = await cps('down');
    expect(again.stdout).toMatch(/not running/);
    expect(again.stdout).toMatch(/stopped 0 node\(s\)/);
    // status says so plainly, exit 1, no stack trace
    const status = (await cps('status').then(
      () => {
        throw new Error('status should exit 1 when the platform is down');
      },
      (e: unknown) => e,
    )) as { code: number; stdout: string; stderr: string };
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(/not running \(start it with `cps up`\)/);
    expect(status.stderr).not.toMatch(/\n\s+at /);
  });
});
