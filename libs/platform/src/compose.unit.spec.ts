import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { type AddressInfo } from 'node:net';
import { join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

// The repository's docker-compose.yml cannot be run here (no Docker engine): this checks its structure
// and that everything it, the Dockerfile and deploy/docker/* refer to is in the repository.

const root = fileURLToPath(new URL('../../../', import.meta.url));
const read = (p: string): string => readFileSync(join(root, p), 'utf8');

interface Service {
  build?: string | { context?: string; dockerfile?: string };
  entrypoint?: string | string[];
  environment?: Record<string, string> | string[];
  volumes?: (string | { type?: string; source?: string; target?: string; read_only?: boolean })[];
  ports?: (string | number | { host_ip?: string; published?: string | number })[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[] };
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const composeText = read('docker-compose.yml');
const compose = parse(composeText, { merge: true }) as Compose & Record<string, unknown>;
const services = Object.entries(compose.services);
const helperFiles = readdirSync(join(root, 'deploy/docker')).filter((f) => /\.(sh|mjs|js)$/.test(f));
const helpers = helperFiles.map((f) => ({ file: `deploy/docker/${f}`, text: read(`deploy/docker/${f}`) }));
const dockerfile = read('Dockerfile');
const probe = (compose as { 'x-probe'?: string })['x-probe'] ?? '';

const isNats = ([name]: [string, Service]): boolean => name.startsWith('nats-');
const isDirector = ([name]: [string, Service]): boolean => name.startsWith('director-');
const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : [v].flat());
const env = (s: Service): Record<string, string> =>
  Array.isArray(s.environment)
    ? Object.fromEntries(s.environment.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]))
    : (s.environment ?? {});
/** Short volume syntax `source:target[:mode]` as an object. */
const mounts = (s: Service) =>
  (s.volumes ?? []).map((v) => {
    if (typeof v !== 'string') return { source: v.source ?? '', target: v.target ?? '', ro: !!v.read_only };
    const [source = '', target = '', mode = ''] = v.split(':');
    return { source, target, ro: mode.split(',').includes('ro') };
  });
const isBindSource = (source: string): boolean => /^[./~]/.test(source);

/**
 * Repository paths named in a text: container paths under /app (the image's WORKDIR) and relative
 * ones starting with a top-level folder. A built file `<pkg>/dist/x.js` stands for `<pkg>/src/x.ts`.
 */
const referencedFiles = (text: string): string[] => {
  const found = new Set<string>();
  for (const m of text.matchAll(
    /(?:^|[\s'"=(])(?:\/app\/)?((?:deploy|tools|apps|libs|scripts|examples)\/[\w./-]*\w)/g,
  ))
    found.add(m[1] as string);
  return [...found];
};
const sourceOf = (p: string): string => p.replace(/\/dist\/(.+)\.js$/, '/src/$1.ts');

describe('docker-compose.yml', () => {
  it('follows the Compose spec without the obsolete version key', () => {
    expect(compose).not.toHaveProperty('version');
    expect(Object.keys(compose.services).length).toBeGreaterThan(0);
  });

  it('runs an init service, three nats-servers and two directors', () => {
    expect(compose.services).toHaveProperty('init');
    expect(services.filter(isNats).map(([n]) => n)).toEqual(['nats-1', 'nats-2', 'nats-3']);
    expect(services.filter(isDirector).map(([n]) => n)).toEqual(['director-1', 'director-2']);
    for (const [, s] of services.filter(isNats)) expect(list(s.entrypoint)[0]).toMatch(/nats-server$/);
    for (const [, s] of services.filter(isDirector))
      expect(list(s.entrypoint)).toContain('/app/apps/director/dist/main.js');
  });

  it('builds every service from a Dockerfile in the repository', () => {
    for (const [name, s] of services) {
      expect(s.build, name).toBeDefined();
      const build = typeof s.build === 'string' ? { context: s.build } : (s.build ?? {});
      const context = join(root, build.context ?? '.');
      expect(statSync(context).isDirectory(), name).toBe(true);
      expect(existsSync(join(context, build.dockerfile ?? 'Dockerfile')), name).toBe(true);
    }
  });

  it('mounts only named volumes it declares, or host paths that exist in the repository', () => {
    const declared = Object.keys(compose.volumes ?? {});
    for (const [name, s] of services)
      for (const m of mounts(s)) {
        expect(m.target, name).toMatch(/^\//);
        if (isBindSource(m.source)) {
          expect(m.source, `${name}: host paths are relative`).not.toMatch(/^[/~]/);
          expect(existsSync(join(root, m.source)), `${name}: ${m.source}`).toBe(true);
        } else expect(declared, `${name}: volume ${m.source}`).toContain(m.source);
      }
  });

  it('names only files that exist in the repository', () => {
    const sources = [{ file: 'docker-compose.yml', text: composeText }, ...helpers];
    for (const { file, text } of sources)
      for (const p of referencedFiles(text))
        expect(existsSync(join(root, sourceOf(p))), `${file} names ${p}`).toBe(true);
    expect(helperFiles).toContain('init.sh');
  });

  it('publishes ports on 127.0.0.1 only', () => {
    const published = services.flatMap(([name, s]) => (s.ports ?? []).map((p) => ({ name, p })));
    expect(published.length).toBeGreaterThan(0);
    for (const { name, p } of published) {
      if (typeof p === 'object') expect(p.host_ip, name).toBe('127.0.0.1');
      else expect(String(p), name).toMatch(/^127\.0\.0\.1:\d+:\d+(\/tcp)?$/);
    }
    expect(compose.services['director-1']?.ports).toEqual(['127.0.0.1:14443:14443']);
    expect(compose.services['director-2']?.ports).toEqual(['127.0.0.1:14444:14443']);
  });

  it('depends only on services it defines, with the conditions Compose knows', () => {
    for (const [name, s] of services) {
      const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
      for (const d of deps) {
        expect(compose.services, `${name} depends on ${d}`).toHaveProperty([d]);
        expect(d, `${name} depends on itself`).not.toBe(name);
      }
      if (s.depends_on && !Array.isArray(s.depends_on))
        for (const c of Object.values(s.depends_on))
          expect(['service_started', 'service_healthy', 'service_completed_successfully']).toContain(
            c.condition,
          );
    }
    for (const [name, s] of services.filter(isNats))
      expect(s.depends_on, name).toMatchObject({ init: { condition: 'service_completed_successfully' } });
    for (const [name, s] of services.filter(isDirector))
      for (const n of ['nats-1', 'nats-2', 'nats-3'])
        expect(s.depends_on, name).toMatchObject({ [n]: { condition: 'service_healthy' } });
  });

  it('checks the health of every nats-server and director; a director over HTTPS with the platform CA', () => {
    for (const [name, s] of [...services.filter(isNats), ...services.filter(isDirector)])
      expect(list(s.healthcheck?.test).slice(0, 4), name).toEqual(['CMD', 'node', '-e', probe]);
    for (const [name, s] of services.filter(isNats))
      expect(list(s.healthcheck?.test).slice(4), name).toEqual(['http://127.0.0.1:8222/healthz']);
    for (const [name, s] of services.filter(isDirector))
      expect(list(s.healthcheck?.test).slice(4), name).toEqual([
        `https://127.0.0.1:${env(s)['CPS_DIRECTOR_PORT']}/healthz`,
        `${env(s)['CPS_HOME']}/ca.pem`,
      ]);
  });

  it('has a healthcheck probe that passes on 200 and fails otherwise', async () => {
    const server = createServer((req, res) => {
      res.statusCode = req.url === '/healthz' ? 200 : 503;
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const run = (path: string) =>
      new Promise<number | string | undefined>((r) =>
        execFile(process.execPath, ['-e', probe, `http://127.0.0.1:${port}${path}`], (e) =>
          r(e ? (e.code ?? 'no exit code') : 0),
        ),
      );
    try {
      expect(await run('/healthz')).toBe(0);
      expect(await run('/other')).toBe(1);
    } finally {
      server.close();
    }
  });

  it('gives each director its own home volume, mounted at its CPS_HOME, and each nats-server its config and data', () => {
    const homes = services.filter(isDirector).map(([name, s]) => {
      const home = env(s)['CPS_HOME'] ?? '';
      const m = mounts(s).find((v) => v.target === home);
      expect(m, `${name}: ${home} is a volume`).toBeDefined();
      return m?.source;
    });
    expect(new Set(homes).size).toBe(homes.length);
    const init = mounts(compose.services['init'] as Service);
    for (const h of homes) expect(init.map((m) => m.source)).toContain(h);

    for (const [name, s] of services.filter(isNats)) {
      expect(list(s.entrypoint).slice(1), name).toEqual(['-c', `/var/lib/cps/nats/${name}/server.conf`]);
      expect(mounts(s), name).toEqual(
        expect.arrayContaining([
          { source: 'nats-config', target: '/var/lib/cps/nats', ro: true },
          { source: `${name}-data`, target: '/var/lib/cps/data', ro: false },
        ]),
      );
    }
    expect(init).toContainEqual({ source: 'nats-config', target: '/var/lib/cps/nats', ro: false });
  });
});

describe('deploy/docker/init.sh', () => {
  const script = read('deploy/docker/init.sh');
  const nats = services.filter(isNats).map(([n]) => n);

  it('renders a config for every nats service and points the directors at all of them', () => {
    expect(script).toContain(`servers=${nats.join(',')}`);
    expect(script).toContain(`urls=${nats.map((n) => `tls://${n}:4222`).join(',')}`);
    expect(script).toContain(`"$base/nats/${nats.at(-1)}/server.conf"`);
  });

  // the CLI's command tree is not imported here (@cps/cli depends on this library): its source is
  // read, and tools/cli/src/help.unit.spec.ts parses init.sh's invocations against the tree itself
  it('uses only CLI commands that exist, and no longer says parts are missing', () => {
    const cli = readdirSync(join(root, 'tools/cli/src'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.spec.ts'))
      .map((f) => read(join('tools/cli/src', f)))
      .join('\n');
    const used = [...script.matchAll(/^\s*cps (?:--home \S+ )?platform ([a-z-]+)/gm)].map(
      (m) => m[1] as string,
    );
    expect(used).toEqual(expect.arrayContaining(['init', 'nats-config', 'export-join', 'join']));
    expect(used.filter((c) => !cli.includes(`.command('${c}')`))).toEqual([]);
    for (const [file, text] of [
      ['deploy/docker/init.sh', script],
      ['docker-compose.yml', composeText],
      ['deploy/docker/README.md', read('deploy/docker/README.md')],
    ])
      expect(text, file).not.toMatch(/NOT YET|not in the CLI yet/i);
  });
});

describe('Dockerfile', () => {
  it('builds on node:20-bookworm-slim with Debian nats-server, as a non-root user', () => {
    const froms = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
    expect(new Set(froms)).toEqual(new Set(['node:20-bookworm-slim', 'build']));
    expect(dockerfile).toMatch(/apt-get install -y --no-install-recommends nats-server/);
    expect(dockerfile).toMatch(/^USER (?!root\b)\S+$/m);
    expect(dockerfile).toMatch(/^EXPOSE 14443$/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "tools\/cli\/bin\/cps\.js"\]$/m);
  });

  it('copies from the build context only files that exist, and never the host node_modules or dist', () => {
    for (const m of dockerfile.matchAll(/^COPY (?!--from)(.+)$/gm)) {
      const parts = (m[1] as string).split(/\s+/).filter((p) => !p.startsWith('--'));
      for (const src of parts.slice(0, -1).filter((p) => p !== '.'))
        expect(existsSync(join(root, normalize(src))), src).toBe(true);
    }
    const ignored = read('.dockerignore').split('\n');
    expect(ignored).toEqual(expect.arrayContaining(['**/node_modules', '**/dist']));
  });

  it('ships the helper scripts the compose file runs', () => {
    // paths under /app are in the image, so the Dockerfile must copy them
    const run = [...composeText.matchAll(/\/app\/(deploy\/[\w./-]*\w)/g)].map((m) => m[1] as string);
    expect(run).toContain('deploy/docker/init.sh');
    for (const p of run) expect(dockerfile, p).toContain(p);
    expect(existsSync(join(root, 'tools/cli/bin/cps.js'))).toBe(true);
  });
});
