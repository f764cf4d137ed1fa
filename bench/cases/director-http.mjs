// (h) The director's HTTPS API under a fixed request rate (autocannon -R): GET /v1/applications at
// 1,000 req/s and POST /v1/applications at 200 req/s, next to a bare Fastify hello-world over the
// same TLS certificate on the same machine, measured in the same run.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import pino from 'pino';
import { request } from 'node:https';
import { generateKeyPair, issueCertificate } from '@cps/core';
import { OperatorModeAuthority } from '@cps/bus';
import { Director } from '@cps/director';
import { startNats, stopNats } from '../lib/fixtures.mjs';

const CHILD = fileURLToPath(new URL('../lib/autocannon-child.mjs', import.meta.url));

/** autocannon in its own process (in this one it would share the event loop with the servers). */
const fire = (o) =>
  new Promise((resolve, reject) => {
    execFile(process.execPath, [CHILD, JSON.stringify(o)], { maxBuffer: 64 << 20 }, (err, stdout) =>
      err ? reject(err) : resolve(JSON.parse(stdout)),
    );
  });

const latency = (r) => {
  if (r.non2xx > 0 || r.errors > 0 || r.requests.total === 0)
    throw new Error(
      `${r.requests.total} requests: ${r.non2xx} non-2xx answers (4xx ${r['4xx']}, 5xx ${r['5xx']}), ${r.errors} errors, ${r.timeouts} timeouts`,
    );
  return { p50: r.latency.p50, p99: r.latency.p99, rps: r.requests.average };
};

export default {
  id: 'director',
  letter: 'h',
  title: 'director HTTPS latency at fixed rates vs a bare Fastify hello-world',
  fixture: 'director',
  figures: [
    { key: 'get50', label: 'h. GET /v1/applications @1000/s p50', unit: 'ms', target: null },
    {
      key: 'get99',
      label: 'h. GET /v1/applications @1000/s p99',
      unit: 'ms',
      target: { on: 'ratio', op: '<=', value: 3 },
    },
    { key: 'post50', label: 'h. POST /v1/applications @200/s p50', unit: 'ms', target: null },
    { key: 'post99', label: 'h. POST /v1/applications @200/s p99', unit: 'ms', target: null },
  ],

  async prepare(fx, opts) {
    return { ...fx, seconds: opts.quick ? 5 : 10 };
  },

  async run(s, runIndex) {
    const auth = { authorization: `Bearer ${s.token}` };
    // the applications created by the POST runs belong to another user: GET keeps listing 20
    const json = { authorization: `Bearer ${s.writerToken}`, 'content-type': 'application/json' };
    // autocannon does not verify certificates: the handshake costs the same either way
    const tlsOptions = undefined;
    const getCps = latency(
      await fire({
        url: `${s.director.url}/v1/applications`,
        overallRate: 1000,
        seconds: s.seconds,
        headers: auth,
        tlsOptions,
      }),
    );
    const getRaw = latency(
      await fire({ url: `${s.bare}/hello`, overallRate: 1000, seconds: s.seconds, tlsOptions }),
    );
    const postCps = latency(
      await fire({
        url: `${s.director.url}/v1/applications`,
        method: 'POST',
        overallRate: 200,
        seconds: s.seconds,
        headers: json,
        uniqueName: `r${runIndex}-${Date.now().toString(36)}`,
        tlsOptions,
      }),
    );
    const postRaw = latency(
      await fire({
        url: `${s.bare}/hello`,
        method: 'POST',
        overallRate: 200,
        seconds: s.seconds,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'x' }),
        tlsOptions,
      }),
    );
    return {
      get50: { cps: getCps.p50, raw: getRaw.p50 },
      get99: { cps: getCps.p99, raw: getRaw.p99 },
      post50: { cps: postCps.p50, raw: postRaw.p50 },
      post99: { cps: postCps.p99, raw: postRaw.p99 },
    };
  },
};

/** A director with one user who owns 20 applications, and a bare Fastify server with its TLS. */
export const directorFixture = {
  async create() {
    const nats = await startNats(1);
    const identity = await nats.identity({ role: 'director', id: 'd1' });
    const director = await Director.start({
      directorId: 'd1',
      natsUrls: nats.urls,
      identity,
      secrets: nats.secrets,
      authority: new OperatorModeAuthority(nats.secrets.operator, () => nats.system()),
      clouds: [],
      port: 0,
      adminPassword: 'bench-admin-password',
      accounts: { scryptN: 2 ** 10, registration: 'open' },
      maxApplicationsPerUser: 1_000_000,
      log: pino({ level: 'silent' }),
    });
    const ca = [nats.secrets.busCa.certPem, ...nats.secrets.busCa.chainPem].join('');
    const call = async (method, path, body, token) => {
      const r = await fetchJson(director.url, ca, method, path, body, token);
      if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.text}`);
      return r.body;
    };
    await call('POST', '/v1/users', { username: 'bench', password: 'bench-password' });
    const { token } = await call('POST', '/v1/sessions', { username: 'bench', password: 'bench-password' });
    for (let i = 0; i < 20; i++) await call('POST', '/v1/applications', { name: `app-${i}` }, token);
    await call('POST', '/v1/users', { username: 'writer', password: 'writer-password' });
    const { token: writerToken } = await call('POST', '/v1/sessions', {
      username: 'writer',
      password: 'writer-password',
    });
    // the bare server gets a certificate like the director's: same CA, same key type and size
    const key = generateKeyPair();
    const cert = issueCertificate(nats.secrets.busCa, {
      identity: { role: 'server', id: 'bare' },
      usage: 'server',
      publicKeyPem: key.publicKeyPem,
      now: new Date(),
      validForMs: 24 * 3600_000,
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
    });
    const bare = Fastify({
      https: { key: key.privateKeyPem, cert: [cert, nats.secrets.busCa.certPem].join('') },
    });
    bare.get('/hello', async () => ({ hello: 'world' }));
    bare.post('/hello', async () => ({ hello: 'world' }));
    await bare.listen({ port: 0, host: '127.0.0.1' });
    return {
      nats,
      director,
      token,
      writerToken,
      ca,
      bare: `https://127.0.0.1:${bare.server.address().port}`,
      bareServer: bare,
    };
  },
  async dispose(fx) {
    await fx.bareServer.close();
    await fx.director.stop();
    await stopNats(fx.nats);
  },
};

const fetchJson = (base, ca, method, path, body, token) =>
  new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request(
      new URL(path, base),
      {
        method,
        ca,
        agent: false,
        headers: {
          ...(data ? { 'content-type': 'application/json', 'content-length': String(data.length) } : {}),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          resolve({ status: res.statusCode, text, body: text ? JSON.parse(text) : undefined });
        });
      },
    );
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
