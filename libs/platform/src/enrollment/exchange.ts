import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import {
  CpsError,
  ErrorCodes,
  generateKeyPairAsync,
  isCpsError,
  isErrorCode,
  issuesFromZod,
  Roles,
  ValidationError,
  type ErrorCode,
  type KeyPair,
} from '@cps/core';
import { newUserKey } from '@cps/bus';
import { IdentitySchema } from '../identity/identity-decider.js';
import type { BusIdentity } from '../trust.js';

/**
 * The node side of its HTTPS exchanges with the director (enrollment and re-enrollment): the
 * transport trusting only the platform's CA, retries, the reply, and `identity.json`.
 */

const MAX_REPLY_BYTES = 64 * 1024;

/**
 * The reply to an enrollment or re-enrollment: the node's certificate (with its issuing CA), the bus
 * CA bundle, its user JWT, their expiry (ISO 8601), the identity and the inbox prefix the JWT allows.
 * Unknown keys are ignored (newer directors may say more).
 */
export const EnrollReplySchema = z.object({
  identity: IdentitySchema.extend({ role: z.enum(Roles) }),
  cert: z.string().min(1),
  ca: z.string().min(1),
  jwt: z.string().min(1),
  expiresAt: z.iso.datetime(),
  inboxPrefix: z.string().min(1),
});
export type EnrollReply = z.infer<typeof EnrollReplySchema>;

/**
 * One HTTPS exchange of `enrollNode` or `reenrollNode`: POSTs `body` to `url` trusting only `caPem`. Resolves with
 * any HTTP status; rejects on network failure (a CpsError `unauthenticated` when the server's
 * certificate is not trusted, `timeout` after `timeoutMs`, `payload_too_large` beyond `maxReplyBytes`).
 */
export type EnrollTransport = (request: {
  readonly url: URL;
  readonly body: string;
  readonly caPem: string;
  readonly timeoutMs: number;
  readonly maxReplyBytes: number;
}) => Promise<{ readonly status: number; readonly body: string }>;

/** How a node reaches the director; what `enrollNode` and `reenrollNode` share. */
export interface ExchangeOptions {
  /** The director's base URL; must be `https:`. */
  readonly url: string;
  /** The only CA bundle the director's HTTPS certificate may chain to (system CAs are not used). */
  readonly caPem: string;
  /** Where `identity.json` is written (mode 0600). */
  readonly nodeDir: string;
  /** Per attempt; default 30000 ms. */
  readonly timeoutMs?: number;
  /** Further attempts after a network error or a 5xx reply (never after a 4xx); default 4. */
  readonly retries?: number;
  /** First back-off, doubled per attempt (at most 10 s); default 500 ms. */
  readonly backoffMs?: number;
  readonly fetchImpl?: EnrollTransport;
}

const TLS_REFUSAL = /^(ERR_TLS_CERT|ERR_SSL_|CERT_|UNABLE_TO_|SELF_SIGNED|DEPTH_ZERO|ERR_CERT)/;

const httpsTransport: EnrollTransport = (r) =>
  new Promise((resolve, reject) => {
    let settled = false;
    const done = (e: unknown, value?: { status: number; body: string }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (value) resolve(value);
      else reject(e instanceof Error ? e : new Error(String(e)));
    };
    const req = httpsRequest(
      r.url,
      {
        method: 'POST',
        ca: r.caPem,
        rejectUnauthorized: true,
        agent: false,
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, application/problem+json',
          'content-length': Buffer.byteLength(r.body),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const tooLarge = () =>
          new CpsError('payload_too_large', `enrollment reply larger than ${r.maxReplyBytes} bytes`);
        if (Number(res.headers['content-length'] ?? 0) > r.maxReplyBytes) req.destroy(tooLarge());
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > r.maxReplyBytes) req.destroy(tooLarge());
          else chunks.push(c);
        });
        res.on('end', () =>
          done(undefined, { status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', done);
        res.on('close', () => {
          if (!res.complete) done(new Error('connection closed before the reply was complete'));
        });
      },
    );
    const timer = setTimeout(
      () => req.destroy(new CpsError('timeout', `no enrollment reply within ${r.timeoutMs} ms`)),
      r.timeoutMs,
    );
    req.on('error', (e: Error & { code?: string }) =>
      done(
        typeof e.code === 'string' && TLS_REFUSAL.test(e.code)
          ? new CpsError(
              'unauthenticated',
              `the enrollment server's certificate is not trusted (${e.code})`,
              [],
              { cause: e },
            )
          : e,
      ),
    );
    req.end(r.body);
  });

const ProblemSchema = z.object({
  title: z.string().optional(),
  code: z.string().optional(),
  detail: z.string().optional(),
  issues: z
    .array(z.object({ path: z.string(), code: z.string(), message: z.string() }))
    .max(100)
    .optional(),
});

const codeOfStatus = (status: number): ErrorCode =>
  (Object.keys(ErrorCodes) as ErrorCode[]).find((c) => ErrorCodes[c].status === status) ??
  (status >= 500 ? 'unavailable' : 'internal');

/** The CpsError an error reply stands for: the `code` of its problem+json body, else one by status. */
const replyError = (status: number, body: string): CpsError => {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    json = undefined;
  }
  const p = ProblemSchema.safeParse(json);
  const problem = p.success ? p.data : {};
  const code = isErrorCode(problem.code) ? problem.code : codeOfStatus(status);
  const message = (problem.detail ?? problem.title ?? `enrollment failed with HTTP ${status}`).slice(0, 500);
  return new CpsError(code, message, problem.issues ?? []);
};

const parseReply = (body: string): EnrollReply => {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (e) {
    throw new CpsError('internal', 'the enrollment reply is not JSON', [], { cause: e });
  }
  const r = EnrollReplySchema.safeParse(json);
  if (!r.success) throw new CpsError('internal', 'malformed enrollment reply', issuesFromZod(r.error));
  return r.data;
};

/** Writes `<dir>/identity.json` (0600) through a temporary file and a rename, so it is never half written. */
export const writeIdentity = async (dir: string, identity: BusIdentity): Promise<void> => {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const target = join(dir, 'identity.json');
  const temp = join(dir, `.identity.json.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const f = await open(temp, 'wx', 0o600);
    try {
      await f.writeFile(JSON.stringify(identity));
      await f.sync();
    } finally {
      await f.close();
    }
    await rename(temp, target);
  } catch (e) {
    await rm(temp, { force: true });
    throw e;
  }
};

/** `<base><path>`, refused unless https. */
const endpoint = (base: string, path: string): URL => {
  let url: URL;
  try {
    url = new URL(`${base.replace(/\/+$/, '')}${path}`);
  } catch (e) {
    throw new ValidationError(
      'invalid enrollment URL',
      [{ path: '$.url', code: 'invalid', message: 'a URL' }],
      { cause: e },
    );
  }
  if (url.protocol !== 'https:')
    throw new ValidationError('the enrollment URL must be https', [
      { path: '$.url', code: 'insecure', message: 'https required' },
    ]);
  return url;
};

/** POSTs `body` until a 2xx reply (network errors and 5xx replies retried with back-off, 4xx never). */
const post = async (url: URL, body: string, o: ExchangeOptions): Promise<EnrollReply> => {
  const transport = o.fetchImpl ?? httpsTransport;
  const retries = o.retries ?? 4;
  for (let attempt = 0; ; attempt++) {
    const last = attempt >= retries;
    let res: { status: number; body: string };
    try {
      res = await transport({
        url,
        body,
        caPem: o.caPem,
        timeoutMs: o.timeoutMs ?? 30_000,
        maxReplyBytes: MAX_REPLY_BYTES,
      });
    } catch (e) {
      if (isCpsError(e) && (!e.retryable || last)) throw e;
      if (last)
        throw new CpsError(
          'unavailable',
          `cannot reach the enrollment server at ${url.origin}: ${e instanceof Error ? e.message : String(e)}`,
          [],
          { cause: e },
        );
      await sleep(Math.min((o.backoffMs ?? 500) * 2 ** attempt, 10_000));
      continue;
    }
    if (res.status >= 200 && res.status < 300) return parseReply(res.body);
    if (res.status < 500 || last) throw replyError(res.status, res.body);
    await sleep(Math.min((o.backoffMs ?? 500) * 2 ** attempt, 10_000));
  }
};

/** The new keys of a node: its RSA key and user nkey (neither leaves the node). */
export interface NodeKeys {
  readonly key: KeyPair;
  readonly user: { readonly publicKey: string; readonly seed: string };
}

/**
 * Makes the node's new keys, POSTs the request `build` makes of them to `<o.url><path>` (the same
 * request on every attempt: a retry is recognised as one), checks that the certificate is for the
 * new key, writes the resulting {@link BusIdentity} to `<nodeDir>/identity.json` and returns it.
 * Nothing is written unless the exchange succeeds.
 */
export const exchangeForIdentity = async (
  o: ExchangeOptions,
  path: string,
  build: (keys: NodeKeys) => object,
): Promise<BusIdentity> => {
  const url = endpoint(o.url, path);
  const keys: NodeKeys = { key: await generateKeyPairAsync(), user: newUserKey() };
  const reply = await post(url, JSON.stringify(build(keys)), o);
  if (!new X509Certificate(reply.cert).checkPrivateKey(createPrivateKey(keys.key.privateKeyPem)))
    throw new CpsError('internal', 'the enrolled certificate is not for the key this node made');
  const expiresAt = new Date(reply.expiresAt);
  const identity: BusIdentity = {
    tls: { ca: reply.ca, cert: reply.cert, key: keys.key.privateKeyPem },
    credentials: { jwt: reply.jwt, seed: keys.user.seed },
    inboxPrefix: reply.inboxPrefix,
    identity: reply.identity,
    certExpiresAt: expiresAt,
    bus: {
      identity: reply.identity,
      jwt: reply.jwt,
      publicKey: keys.user.publicKey,
      seed: keys.user.seed,
      inboxPrefix: reply.inboxPrefix,
      expiresAt,
    },
  };
  await writeIdentity(o.nodeDir, identity);
  return identity;
};
