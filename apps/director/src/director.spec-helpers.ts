import { request as httpsRequest } from 'node:https';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { create as tarCreate } from 'tar';
import { OperatorModeAuthority } from '@cps/bus';
import { LocalCloud, workloadUser } from '@cps/clouds';
import { eventually, TestNats } from '@cps/testing';
import { Director, type DirectorOptions } from './director.js';

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  /** The body's bytes as they came. */
  readonly bytes: Buffer;
  /** The body parsed as JSON (undefined when it is not JSON). */
  readonly body: any;
}

/** An HTTPS client that trusts the platform CA only (as the CLI will). */
export class Client {
  constructor(
    readonly url: string,
    private readonly ca: string,
    readonly token?: string,
    private readonly cert?: { cert: string; key: string },
  ) {}

  as(token: string | undefined): Client {
    return new Client(this.url, this.ca, token, this.cert);
  }

  withCertificate(cert: { cert: string; key: string }): Client {
    return new Client(this.url, this.ca, undefined, cert);
  }

  request(
    method: string,
    path: string,
    o: { json?: unknown; raw?: Buffer | string; headers?: Record<string, string>; contentType?: string } = {},
  ): Promise<HttpAnswer> {
    const body =
      o.raw !== undefined
        ? Buffer.from(o.raw)
        : o.json !== undefined
          ? Buffer.from(JSON.stringify(o.json))
          : undefined;
    const headers: Record<string, string> = {
      ...(body
        ? {
            'content-type':
              o.contentType ?? (o.raw !== undefined ? 'application/octet-stream' : 'application/json'),
            'content-length': String(body.length),
          }
        : {}),
      ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
      ...o.headers,
    };
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        new URL(path, this.url),
        { method, headers, ca: this.ca, ...(this.cert ?? {}), agent: false },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const bytes = Buffer.concat(chunks);
            const text = bytes.toString('utf8');
            let parsed: unknown;
            try {
              parsed = text ? JSON.parse(text) : undefined;
            } catch {
              parsed = undefined;
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text, bytes, body: parsed });
          });
        },
      );
      req.on('error', reject);
      if (body) req.write(body);
      req.end();
    });
  }

  get = (path: string) => this.request('GET', path);
  post = (path: string, json?: unknown) => this.request('POST', path, json === undefined ? {} : { json });
  patch = (path: string, json: unknown) => this.request('PATCH', path, { json });
  put = (path: string, raw: Buffer) => this.request('PUT', path, { raw });
  delete = (path: string, json?: unknown) => this.request('DELETE', path, json === undefined ? {} : { json });
}

/**
 * Waits for the operation an accepted request (202) started, through `c`; answers it once it has
 * succeeded, throws (naming `what`) when it failed or the request was not accepted.
 */
export const succeeded = async (c: Client, accepted: HttpAnswer, what: string, ms = 90_000) => {
  if (accepted.status !== 202) throw new Error(`${what}: 202 expected: ${accepted.status} ${accepted.text}`);
  const op = await eventually(
    () => c.get(accepted.headers.location as string),
    (r) => r.body?.state !== 'running',
    ms,
  );
  if (op.body.state !== 'succeeded') throw new Error(`${what}: ${op.text}`);
  return op.body as { state: 'succeeded'; operationId: string };
};

export const ADMIN_PASSWORD = 'admin-password-for-tests';

/** A service's code as uploaded: a gzipped tar of `files` (name to content, each file mode 755). */
export const archiveOf = async (files: Record<string, string | Buffer>): Promise<Buffer> => {
  const src = mkdtempSync(join(tmpdir(), 'cps-archive-'));
  try {
    for (const [name, body] of Object.entries(files)) writeFileSync(join(src, name), body, { mode: 0o755 });
    await tarCreate({ gzip: true, file: join(src, 'code.tgz'), cwd: src }, Object.keys(files));
    return readFileSync(join(src, 'code.tgz'));
  } finally {
    rmSync(src, { recursive: true, force: true });
  }
};

const expectStatus = (r: HttpAnswer, status: number) => {
  if (r.status !== status) throw new Error(`${status} expected: ${r.status} ${r.text}`);
};

/**
 * A real platform for director tests: a nats-server with operator-mode mTLS, the local cloud with
 * the built manager and agent runtimes, and directors in this process over HTTPS.
 */
export class DirectorHarness {
  readonly directors: Director[] = [];

  private constructor(
    readonly nats: TestNats,
    readonly dir: string,
    readonly cloud: LocalCloud,
  ) {}

  /** `host`: the address NATS listens on (a claimed platform address; 127.0.0.1 by default). */
  static async start(o: { size?: number; host?: string } = {}): Promise<DirectorHarness> {
    const nats = await TestNats.start({
      ...(o.size ? { size: o.size } : {}),
      ...(o.host ? { host: o.host } : {}),
    });
    const dir = mkdtempSync(join(tmpdir(), 'cps-director-'));
    const root = process.cwd();
    const user = workloadUser();
    const cloud = new LocalCloud({
      dir: join(dir, 'cloud'),
      command: (spec) => ({
        command: process.execPath,
        args: [
          join(
            root,
            'apps',
            spec.kind === 'manager' ? 'manager-runtime' : 'agent-runtime',
            'dist',
            'main.js',
          ),
        ],
      }),
      stopGraceMs: 2_000,
      ...(user && process.getuid?.() === 0 ? { workloadUser: user } : {}),
    });
    return new DirectorHarness(nats, dir, cloud);
  }

  async startDirector(
    id = `d${this.directors.length + 1}`,
    extra: Partial<DirectorOptions> = {},
  ): Promise<Director> {
    const identity = await this.nats.identity({ role: 'director', id });
    const authority = new OperatorModeAuthority(this.nats.secrets.operator, () => this.nats.system());
    const d = await Director.start({
      directorId: id,
      natsUrls: this.nats.urls,
      identity,
      secrets: this.nats.secrets,
      authority,
      clouds: [this.cloud],
      port: 0,
      adminPassword: ADMIN_PASSWORD,
      accounts: { scryptN: 2 ** 10, registration: 'open', loginAttempts: 5, loginWindowMs: 60_000 },
      log: pino({ level: process.env['CPS_TEST_LOG'] ?? 'silent' }),
      reconcileEveryMs: 2_000,
      leaseEpochMs: 1_000,
      managerReadyTimeoutMs: 20_000,
      operationTimeoutMs: 60_000,
      ...extra,
    });
    this.directors.push(d);
    return d;
  }

  /** A director that leads: it runs the Provisioner and supervises managers. */
  async leadingDirector(): Promise<Director> {
    const d = await this.startDirector();
    await eventually(
      async () => d.leading,
      (l) => l,
      10_000,
    ).catch((e: unknown) => {
      throw new Error(`${d.url} does not lead`, { cause: e });
    });
    return d;
  }

  /**
   * Creates application `app` with service `name` of `type` (its agents on `cloud`, the default
   * cloud when absent) as the user of `c`, not started; answers the service's path and id.
   */
  async createdService(
    c: Client,
    app: string,
    type: string,
    name: string,
    cloud?: string,
  ): Promise<{ path: string; serviceId: string }> {
    expectStatus(await c.post('/v1/applications', { name: app }), 201);
    const s = await c.post(`/v1/applications/${app}/services`, { type, name, ...(cloud ? { cloud } : {}) });
    expectStatus(s, 201);
    return { path: `/v1/applications/${app}/services/${name}`, serviceId: s.body.serviceId as string };
  }

  /** {@link createdService}, then started; answers the service's path once its start has succeeded. */
  async startedService(c: Client, app: string, type: string, name: string, cloud?: string): Promise<string> {
    const { path } = await this.createdService(c, app, type, name, cloud);
    const start = await c.post(`${path}/start`, {});
    expectStatus(start, 202);
    await succeeded(c, start, `start of ${path}`, 60_000);
    return path;
  }

  /** The code directory of each agent node of service `serviceId` on the local cloud, by node id. */
  async codeDirs(serviceId: string): Promise<Record<string, string>> {
    const nodes = (await this.cloud.list()).filter((n) => n.kind === 'agent' && n.serviceId === serviceId);
    return Object.fromEntries(
      nodes.map((n) => [n.nodeId, join(this.dir, 'cloud', 'nodes', n.nodeId, 'work', 'code')]),
    );
  }

  /** An anonymous client of a director, trusting the platform's CA. */
  client(d: Director): Client {
    return new Client(d.url, [this.nats.secrets.busCa.certPem, ...this.nats.secrets.busCa.chainPem].join(''));
  }

  /** Signs in and answers a client carrying the session token. */
  async signIn(d: Director, username: string, password: string): Promise<Client> {
    const r = await this.client(d).post('/v1/sessions', { username, password });
    if (r.status !== 201) throw new Error(`sign-in failed: ${r.status} ${r.text}`);
    return this.client(d).as(r.body.token as string);
  }

  /** Registers a user (open registration) and signs in. */
  async user(d: Director, username: string): Promise<Client> {
    const r = await this.client(d).post('/v1/users', { username, password: `${username}-password` });
    if (r.status !== 201) throw new Error(`register failed: ${r.status} ${r.text}`);
    return this.signIn(d, username, `${username}-password`);
  }

  async cleanup(): Promise<void> {
    for (const d of this.directors) await d.stop().catch(() => undefined);
    for (const n of await this.cloud.list()) await this.cloud.destroy(n.nodeId).catch(() => undefined);
    await this.nats.cleanup();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
