import { request as httpsRequest } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Director } from '../director.js';
import { ADMIN_PASSWORD, DirectorHarness } from '../director.spec-helpers.js';

const LIMIT = 5;

describe('sign-in limits: per source with back-off, per user name only for sources that failed', () => {
  let h: DirectorHarness;
  let d1: Director;
  let d2: Director;
  let ca: string;

  /** `POST /v1/sessions` from a loopback address of our choosing (a source of its own). */
  const signIn = (
    d: Director,
    from: string,
    username: string,
    password: string,
  ): Promise<{ status: number; code?: string; retryAfter?: string }> =>
    new Promise((resolve, reject) => {
      const body = Buffer.from(JSON.stringify({ username, password }));
      const req = httpsRequest(
        new URL('/v1/sessions', d.url),
        {
          method: 'POST',
          ca,
          agent: false,
          localAddress: from,
          headers: { 'content-type': 'application/json', 'content-length': String(body.length) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const b = JSON.parse(Buffer.concat(chunks).toString() || '{}') as { code?: string };
            const retryAfter = res.headers['retry-after'];
            resolve({
              status: res.statusCode ?? 0,
              ...(b.code ? { code: b.code } : {}),
              ...(typeof retryAfter === 'string' ? { retryAfter } : {}),
            });
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  beforeAll(async () => {
    h = await DirectorHarness.start();
    const accounts = { scryptN: 2 ** 10, registration: 'open' as const, loginWindowMs: 60_000 };
    d1 = await h.startDirector('d1', { accounts: { ...accounts, loginAttempts: LIMIT } });
    d2 = await h.startDirector('d2', { accounts: { ...accounts, loginAttempts: LIMIT } });
    ca = [h.nats.secrets.busCa.certPem, ...h.nats.secrets.busCa.chainPem].join('');
  });
  afterAll(async () => h?.cleanup());

  it('checks exactly the allowed attempts of 200 concurrent wrong passwords on two directors, and lets the admin in from elsewhere at once', async () => {
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, i) => signIn(i % 2 ? d1 : d2, '127.0.0.2', 'admin', `wrong-${i}`)),
    );
    const checked = answers.filter((a) => a.status === 401 && a.code === 'unauthenticated');
    const refused = answers.filter((a) => a.status === 429 && a.code === 'rate_limited');
    expect(answers.filter((a) => a.status !== 401 && a.status !== 429)).toEqual([]);
    expect(checked).toHaveLength(LIMIT);
    expect(refused).toHaveLength(200 - LIMIT);
    expect(refused.every((a) => Number(a.retryAfter) >= 1)).toBe(true);

    // the real admin, from another address: at once, on either director
    expect((await signIn(d1, '127.0.0.3', 'admin', ADMIN_PASSWORD)).status).toBe(201);
    expect((await signIn(d2, '127.0.0.1', 'admin', ADMIN_PASSWORD)).status).toBe(201);

    // the attacker's source waits, even with the right password, and is told how long
    const again = await signIn(d1, '127.0.0.2', 'admin', ADMIN_PASSWORD);
    expect(again).toMatchObject({ status: 429, code: 'rate_limited' });
    expect(Number(again.retryAfter)).toBeGreaterThanOrEqual(55);
    expect(Number(again.retryAfter)).toBeLessThanOrEqual(60);
  });

  it("refuses, past the user name's limit, only sources that failed themselves", async () => {
    // many sources fail twice each: the user name's count (10 × the limit) runs out
    const first: number[] = [];
    let refused: { status: number; code?: string; retryAfter?: string } | undefined;
    for (let s = 1; s <= 10 * LIMIT && !refused; s++) {
      const from = `127.0.1.${s}`;
      first.push((await signIn(d1, from, 'admin', 'wrong')).status);
      const second = await signIn(s % 2 ? d1 : d2, from, 'admin', 'wrong');
      if (second.status !== 401) refused = second;
    }
    expect(refused).toMatchObject({ status: 429, code: 'rate_limited' });
    expect(Number(refused?.retryAfter)).toBeGreaterThanOrEqual(1);
    // a first attempt is never refused for what other sources did
    expect(first.every((x) => x === 401)).toBe(true);
    expect((await signIn(d2, '127.0.2.1', 'admin', 'wrong')).status).toBe(401);
    expect((await signIn(d2, '127.0.2.2', 'admin', ADMIN_PASSWORD)).status).toBe(201);
  });
});
