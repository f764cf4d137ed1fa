import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually, nodeSpec } from '../cloud-contract.spec-helpers.js';
import type { CloudNode } from '../types.js';
import { validateNodeSpec } from '../local/node-spec.js';
import { bootScript, onePerNode, redact } from './iaas-node.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const readText = (file: string): string => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};

describe('bootScript', () => {
  it('writes the files 0600 in 0700 directories and starts the node with only its env and the node environment', async () => {
    const home = mkdtempSync(join(tmpdir(), 'cps-boot-'));
    dirs.push(home);
    const env = { CPS_ENROLL_TOKEN: "tok'en $HOME `x`", MULTI: 'a\nb' };
    const files = { 'enroll.token': 'one-time', 'certs/ca.pem': 'CA\n', 'odd name.txt': "it's" };
    const spec = nodeSpec('n-boot', { contextualization: { env, files } });
    const record = `require('node:fs').writeFileSync('env.json', JSON.stringify(process.env))`;
    const script = bootScript(spec, [process.execPath, '-e', record]);

    const r = spawnSync('sh', ['-c', script], {
      env: { PATH: process.env.PATH, CPS_HOME: home, CPS_NODE_ADDRESS: '192.0.2.7', SECRET_OF_THE_HOST: 'x' },
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);

    const dir = join(home, 'node');
    const text = await eventually(
      async () => readText(join(dir, 'env.json')),
      (t) => t.endsWith('}'),
    );
    const seen = JSON.parse(text) as Record<string, string>;
    delete seen.PWD;
    delete seen.SHLVL;
    delete seen._;
    expect(seen).toEqual({
      ...env,
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: dir,
      CPS_NODE_ID: 'n-boot',
      CPS_NODE_DIR: dir,
      CPS_NODE_ADDRESS: '192.0.2.7',
      CPS_PORT_FROM: '20000',
      CPS_PORT_TO: '20019',
    });
    for (const [file, content] of Object.entries(files)) {
      expect(readFileSync(join(dir, file), 'utf8')).toBe(content);
      expect([file, statSync(join(dir, file)).mode & 0o777]).toEqual([file, 0o600]);
    }
    expect(statSync(join(dir, 'certs')).mode & 0o777).toBe(0o700);
    expect(statSync(join(home, 'node.env')).mode & 0o777).toBe(0o600);
  });
});

describe('bootScript software', () => {
  it('installs the node’s Debian packages before it starts, asking again after an update, and starts it even when that fails', async () => {
    const home = mkdtempSync(join(tmpdir(), 'cps-boot-sw-'));
    dirs.push(home);
    // apt-get here would change this machine: a stand-in on PATH records what the instance would run
    const bin = join(home, 'bin');
    mkdirSync(bin);
    writeFileSync(
      join(bin, 'apt-get'),
      `#!/bin/sh\necho "$*" >> "${home}/apt.log"\n[ "$1" = install ] && [ ! -f "${home}/updated" ] && exit 100\n[ "$1" = update ] && touch "${home}/updated"\nexit 0\n`,
      { mode: 0o755 },
    );
    const spec = nodeSpec('n-sw', { software: ['redis-server', 'libfoo2.0+'] });
    const script = bootScript(spec, [process.execPath, '-e', `require('node:fs').writeFileSync('up', '1')`]);
    const r = spawnSync('sh', ['-c', script], {
      env: { PATH: `${bin}:${process.env.PATH}`, CPS_HOME: home, CPS_NODE_ADDRESS: '192.0.2.7' },
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    expect(readText(join(home, 'apt.log')).trim().split('\n')).toEqual([
      'install -y -q redis-server libfoo2.0+',
      'update -q',
      'install -y -q redis-server libfoo2.0+',
    ]);
    await eventually(
      async () => readText(join(home, 'node', 'up')),
      (t) => t === '1',
    );
  });

  it('refuses a package name a shell would read as more than a name', () => {
    expect(() => validateNodeSpec(nodeSpec('n-sw', { software: ['redis-server; rm -rf /'] }))).toThrow(
      expect.objectContaining({
        code: 'validation',
        issues: [expect.objectContaining({ path: '$.software[0]', code: 'invalid_package' })],
      }),
    );
  });
});

describe('onePerNode', () => {
  const node = (nodeId: string, instanceId: string, over: Partial<CloudNode> = {}): CloudNode => ({
    nodeId,
    cloud: 'c',
    instanceId,
    state: 'running',
    kind: 'agent',
    appId: 'a',
    serviceId: 's',
    createdAt: '2026-01-01T00:00:00.000Z',
    ...over,
  });

  it('keeps a live instance over a terminated one, then the oldest, then the lowest id', () => {
    const picked = onePerNode([
      node('a', '10', { state: 'terminated', createdAt: '2025-01-01T00:00:00.000Z' }),
      node('a', '12'),
      node('b', '9', { createdAt: '2026-02-01T00:00:00.000Z' }),
      node('b', '20'),
      node('c', '10'),
      node('c', '9'),
    ]);
    expect(picked.map((n) => [n.nodeId, n.instanceId])).toEqual([
      ['a', '12'],
      ['b', '20'],
      ['c', '9'],
    ]);
  });
});

describe('redact', () => {
  it('replaces every occurrence of every secret, longest first, ignoring empty ones', () => {
    expect(redact('user:pw and pw again', ['pw', 'user:pw', ''])).toBe('*** and *** again');
  });
});
