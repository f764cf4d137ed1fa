import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { seal, unseal } from '@cps/core';
import { pooledKeys } from '@cps/testing';
import { exportJoinBundle, joinPlatform, PlatformHome, sealingKeyFromPassphrase } from './platform-home.js';

/** A platform home on disk: made, and brought up to date when it was made by an earlier version. */
describe('PlatformHome', () => {
  const dirs: string[] = [];
  const fresh = () => {
    const d = mkdtempSync(join(tmpdir(), 'cps-home-'));
    dirs.push(d);
    return join(d, 'home');
  };
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('makes a services CA of its own, under no platform root, and shows it', async () => {
    const home = await PlatformHome.init(fresh(), {
      env: {},
      keys: pooledKeys(),
      natsPort: 1,
      directorPort: 2,
    });
    const s = home.secrets();
    const services = new X509Certificate(s.servicesCa.certPem);
    expect(services.subject).toContain('cps services');
    expect(services.verify(services.publicKey)).toBe(true);
    expect(services.verify(new X509Certificate(s.root.certPem).publicKey)).toBe(false);
    expect(home.info().servicesCaPem).toBe(s.servicesCa.certPem);
    expect(home.info().busTrustPem).not.toContain(s.servicesCa.certPem.trim());
  });

  it('keeps a director’s HTTPS key, sealed, from one start to the next', async () => {
    const dir = fresh();
    const home = await PlatformHome.init(dir, { env: {}, keys: pooledKeys(), natsPort: 1, directorPort: 2 });
    const key = home.directorHttpsKey();
    expect(key.privateKeyPem).toMatch(/PRIVATE KEY/);
    expect(PlatformHome.open(dir, {}).directorHttpsKey()).toEqual(key);
    expect(home.directorHttpsKey('d2').publicKeyPem).not.toBe(key.publicKeyPem);
    const stored = readFileSync(join(dir, 'identities', 'director-d1-https.sealed'), 'utf8');
    expect(stored).not.toContain('PRIVATE KEY');
  });

  it('gives a home made before the services CA one at its next start, and keeps it after', async () => {
    const first = await PlatformHome.init(fresh(), {
      env: {},
      keys: pooledKeys(),
      natsPort: 1,
      directorPort: 2,
    });
    // a home as an earlier version wrote it: the same secrets without the services CA
    const pass = 'a passphrase for this test only';
    const bundle = unseal(sealingKeyFromPassphrase(pass), exportJoinBundle(first, pass), 'join-bundle');
    const opened = JSON.parse(bundle.toString('utf8')) as {
      info: Record<string, unknown>;
      secrets: Record<string, unknown>;
    };
    delete opened.secrets['servicesCa'];
    delete opened.info['servicesCaPem'];
    const old = seal(sealingKeyFromPassphrase(pass), JSON.stringify(opened), 'join-bundle');
    const dir = fresh();
    const joined = await joinPlatform(dir, old, pass, { env: {}, directorId: 'd2' });
    expect(joined.secrets().servicesCa).toBeUndefined();

    const upgraded = await PlatformHome.init(dir, { env: {} });
    const ca = upgraded.secrets().servicesCa.certPem;
    expect(new X509Certificate(ca).subject).toContain('cps services');
    expect(upgraded.info().servicesCaPem).toBe(ca);
    expect(JSON.parse(readFileSync(join(dir, 'platform.json'), 'utf8')).platformId).toBe(
      first.info().platformId,
    );
    expect((await PlatformHome.init(dir, { env: {} })).secrets().servicesCa.certPem).toBe(ca);
  });
});
