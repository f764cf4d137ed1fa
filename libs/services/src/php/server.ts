import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { CpsError, IdSchema, serial, ValidationError } from '@cps/core';
import type { AgentContext } from '../contract/context.js';
import { AccessLogStats } from './access-log.js';
import { nginxConf, type UpstreamServer } from './nginx.js';
import { bodyLimit, fpmConf, PHP_DEFAULTS, PHP_EXTENSIONS, phpIni } from './php-config.js';

/**
 * The agent's side of a php node: nginx on the first port of the node's range, php-fpm on the
 * fourth (when the node runs PHP itself), and a reader of nginx's access log. Code versions are
 * unpacked side by side (`code-<version>`), so a switch is one nginx reload: the old workers finish
 * their requests on the old version, the new ones start on the new.
 */

export const NGINX_PORT_OFFSET = 0;
/** The proxy's own PHP behind its nginx, the backends' backup (see nginx.ts `fallback`). */
export const FALLBACK_PORT_OFFSET = 2;
export const FPM_PORT_OFFSET = 3;
/** The link in the work directory to the served version's document root. */
const CURRENT = 'code-current';
/** The proxy's HTTPS port, when it has a certificate. */
export const HTTPS_PORT_OFFSET = 1;

export const Upstream = z.object({
  nodeId: IdSchema,
  address: z.string(),
  port: z.number().int(),
  weight: z.number().int().min(1).max(100),
});

/** What the manager tells each node (its configuration's `settings`). */
export const NodeSettings = z.object({
  role: z.enum(['proxy', 'web', 'backend']),
  /** The code version this node serves (it must hold it), if any. */
  serve: z.string().optional(),
  /** The versions this node keeps unpacked (the others are deleted). */
  keep: z.array(z.string()).default([]),
  php: z.enum(['local', 'remote', 'none']),
  static: z.enum(['local', 'remote']),
  phpServers: z.array(Upstream).default([]),
  webServers: z.array(Upstream).default([]),
  /** The proxy's address: nodes behind it believe its X-Forwarded-For. */
  trusted: z.array(z.string()).default([]),
  php_settings: z.record(z.string(), z.string()).default({}),
  cacheSeconds: z.number().int().min(0).default(0),
  /** The proxy's HTTPS: its certificate (chain) and key, PEM, and whether plain HTTP redirects. */
  tls: z.object({ certificate: z.string(), key: z.string(), redirect: z.boolean() }).optional(),
  /** The service's own variables for PHP (CPS_SECRET, CPS_SERVICE); the links' come from the links. */
  env: z.record(z.string(), z.string()).default({}),
});
export type NodeSettings = z.infer<typeof NodeSettings>;
export type { UpstreamServer };

// ---- what this node holds, in the plugin's private directory

const Held = z.object({
  versions: z.record(z.string(), z.object({ root: z.string(), at: z.number().default(0) })).default({}),
});
type Held = z.infer<typeof Held>;

const heldFile = (ctx: AgentContext): string => join(ctx.stateDir, 'php.json');
const readHeld = (ctx: AgentContext): Held => {
  try {
    return Held.parse(JSON.parse(readFileSync(heldFile(ctx), 'utf8')));
  } catch {
    return Held.parse({});
  }
};
const saveHeld = (ctx: AgentContext, h: Held): void => {
  const tmp = `${heldFile(ctx)}.tmp`;
  writeFileSync(tmp, JSON.stringify(h), { mode: 0o600 });
  renameSync(tmp, heldFile(ctx));
};

/**
 * Where a version's document root lies: the archive's root when it has `index.php` or `index.html`
 * there, else its only top-level directory (the director refused any other archive).
 */
export const documentRoot = (entries: readonly string[]): string | undefined => {
  if (entries.includes('index.php') || entries.includes('index.html')) return '';
  return entries.length === 1 ? entries[0] : undefined;
};

// ---- the machine's PHP

const fpmBinary = (): string => {
  const found = readdirSync('/usr/sbin')
    .filter((f) => /^php-fpm\d+(\.\d+)?$/.test(f))
    .sort()
    .pop();
  if (!found) throw new CpsError('unavailable', 'php-fpm is not installed (Debian package php-fpm)');
  return `/usr/sbin/${found}`;
};

/** The extensions of PHP_EXTENSIONS this machine has as modules. */
const extensions = (): string[] => {
  const dirs = existsSync('/usr/lib/php')
    ? readdirSync('/usr/lib/php')
        .filter((d) => /^\d{8}$/.test(d))
        .sort()
    : [];
  const dir = dirs.reverse().find((d) => existsSync(join('/usr/lib/php', d, 'opcache.so')));
  if (!dir) return [];
  return PHP_EXTENSIONS.filter((e) => existsSync(join('/usr/lib/php', dir, `${e}.so`)));
};

// ---- the node's workloads

const stats = new AccessLogStats(10);
/** The nodes of this process whose workloads were started (`onStart` ran). */
const started = new Set<string>();
/** What was last written, to reload only on a change. */
const written = new Map<string, string>();
/** One change of the node at a time. */
const oneChange = serial();

const settingsOf = (ctx: AgentContext): NodeSettings | undefined => {
  const p = NodeSettings.safeParse(ctx.config?.settings);
  return p.success ? p.data : undefined;
};

const fpmPort = (ctx: AgentContext): number => ctx.ports.from + FPM_PORT_OFFSET;
const nginxPort = (ctx: AgentContext): number => ctx.ports.from + NGINX_PORT_OFFSET;

const isUp = (ctx: AgentContext, name: string): boolean => {
  const w = ctx.workload(name);
  return w?.state === 'running' || w?.state === 'starting';
};

/** Writes `name` into the work directory when its content changed; whether it did. */
const put = async (ctx: AgentContext, name: string, content: string): Promise<boolean> => {
  if (written.get(name) === content) return false;
  await ctx.files.write(name, content);
  written.set(name, content);
  return true;
};

const waitForPort = async (address: string, port: number, timeoutMs: number): Promise<boolean> => {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection({ host: address, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
      s.setTimeout(500, () => {
        s.destroy();
        resolve(false);
      });
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
};

/** The variables PHP gets: the service's own and every linked service's (MYSQL_HOST, ...). */
const phpEnv = (ctx: AgentContext, s: NodeSettings): Record<string, string> => {
  const env: Record<string, string> = {};
  for (const l of Object.values(ctx.config?.links ?? {})) Object.assign(env, l.env ?? {});
  return { ...env, ...s.env };
};

/** The version unpacked last. */
const newest = (versions: Record<string, { readonly at: number }>): string | undefined =>
  Object.entries(versions).sort(([, a], [, b]) => b.at - a.at)[0]?.[0];

/**
 * The directory served: the version the configuration names or, while it names none (the node was
 * configured before its first code came), the newest it holds, as the manager would name it. So a
 * node the proxy starts sending requests to never answers 503 for want of a configuration pass.
 */
const rootOf = (ctx: AgentContext, s: NodeSettings): string | undefined => {
  const held = readHeld(ctx).versions;
  const version = s.serve ?? newest(held);
  const v = version === undefined ? undefined : held[version];
  if (version === undefined || !v) return undefined;
  return v.root === '' ? `code-${version}` : `code-${version}/${v.root}`;
};

const prepareDirs = async (ctx: AgentContext): Promise<void> => {
  for (const d of ['nginx', 'logs', 'tmp', 'sessions', 'php', 'php-conf.d']) await ctx.files.mkdir(d);
  const r = await ctx.exec('/bin/sh', [
    '-c',
    '[ -p logs/access.fifo ] || { rm -rf logs/access.fifo && mkfifo -m 600 logs/access.fifo; }',
  ]);
  if (r.code !== 0) throw new CpsError('internal', `mkfifo: ${r.stderr.trim()}`);
};

const startReader = async (ctx: AgentContext): Promise<void> => {
  if (isUp(ctx, 'access-log')) return;
  await ctx.startWorkload({
    name: 'access-log',
    command: '/bin/cat',
    args: ['logs/access.fifo'],
    restart: 'always',
    stdout: (chunk) => stats.push(chunk),
  });
};

const startFpm = async (ctx: AgentContext): Promise<void> => {
  await ctx.startWorkload({
    name: 'php-fpm',
    command: fpmBinary(),
    args: ['-F', '-O', '-y', `${ctx.workDir}/php-fpm.conf`, '-c', `${ctx.workDir}/php.ini`],
    env: { PHP_INI_SCAN_DIR: `${ctx.workDir}/php-conf.d` },
    restart: 'always',
    ready: { tcp: fpmPort(ctx) },
  });
};

const startNginx = async (ctx: AgentContext): Promise<void> => {
  await ctx.startWorkload({
    name: 'nginx',
    command: '/usr/sbin/nginx',
    args: ['-p', `${ctx.workDir}/`, '-c', `${ctx.workDir}/nginx.conf`, '-e', 'stderr', '-g', 'daemon off;'],
    restart: 'always',
    ready: { tcp: nginxPort(ctx) },
  });
  // the node's first readiness check then passes
  await waitForPort(ctx.address, nginxPort(ctx), 5_000);
};

/**
 * A volume the node mounts (at `<work>/<mount>`) shows in the served version at the same path: a
 * link, made as the workload user, in place of what the archive has there. So an application writes
 * its uploads where it always does (WordPress: `wp-content/uploads`), on the volume every node shares.
 */
const showVolumes = async (ctx: AgentContext, version: string, mounts: readonly string[]): Promise<void> => {
  for (const mount of mounts) {
    const key = `volume:${version}:${mount}`;
    if (written.has(key)) continue;
    const r = await ctx.exec('/bin/sh', [
      '-c',
      'cd "$1" && mkdir -p "$(dirname "$2")" && { [ -L "$2" ] || rm -rf "$2"; } && ln -sfn "$3" "$2.cps-link" && mv -Tf "$2.cps-link" "$2"',
      'sh',
      version,
      mount,
      join(ctx.workDir, mount),
    ]);
    if (r.code !== 0)
      throw new CpsError('internal', `showing volume ${mount} in ${version}: ${r.stderr.trim()}`);
    written.set(key, 'linked');
  }
};

/**
 * Brings the node to what its configuration says, idempotently: files written, php-fpm started
 * before nginx sends it anything (and stopped a while after nginx stopped sending), nginx reloaded
 * when its configuration changed, php-fpm reloaded when its own did, old versions deleted.
 */
const apply = async (ctx: AgentContext): Promise<void> => {
  const s = settingsOf(ctx);
  if (!s) return;
  const work = ctx.workDir;
  const php = { ...PHP_DEFAULTS, ...s.php_settings };
  const fpmAddress = { address: ctx.address, port: fpmPort(ctx) };
  const target = rootOf(ctx, s);
  // the served version: one link moved at once (no reload, no connection closed)
  if (target !== undefined && written.get(CURRENT) !== target) {
    const r = await ctx.exec('/bin/sh', [
      '-c',
      `ln -sfn "$1" ${CURRENT}.new && mv -Tf ${CURRENT}.new ${CURRENT}`,
      'sh',
      target,
    ]);
    if (r.code !== 0) throw new CpsError('internal', `pointing ${CURRENT} at ${target}: ${r.stderr.trim()}`);
    written.set(CURRENT, target);
  }
  const root = target !== undefined ? CURRENT : undefined;
  const volumes = (ctx.config?.volumes ?? []).map((v) => v.mount);
  if (target !== undefined) await showVolumes(ctx, target, volumes);
  const conf = nginxConf({
    listen: { address: ctx.address, port: nginxPort(ctx) },
    ...(root !== undefined ? { root } : {}),
    ...(volumes.length > 0 ? { volumes } : {}),
    php:
      s.php === 'local'
        ? { kind: 'local', fpm: fpmAddress }
        : s.php === 'remote' && s.phpServers.length > 0
          ? { kind: 'remote', servers: s.phpServers }
          : s.php === 'remote'
            ? { kind: 'local', fpm: fpmAddress }
            : { kind: 'none' },
    static:
      s.static === 'remote' && s.webServers.length > 0
        ? { kind: 'remote', servers: s.webServers }
        : { kind: 'local' },
    front: s.role === 'proxy',
    trusted: s.trusted,
    bodyLimit: bodyLimit(php),
    phpTimeout: Number(php['max_execution_time']) + 30,
    workers: Math.max(1, Math.min(availableParallelism(), 4)),
    cacheSeconds: s.role === 'proxy' ? s.cacheSeconds : 0,
    ...(s.role === 'proxy' && s.tls
      ? {
          tls: {
            port: ctx.ports.from + HTTPS_PORT_OFFSET,
            certificate: `${work}/tls.crt`,
            key: `${work}/tls.key`,
            redirect: s.tls.redirect,
          },
        }
      : {}),
    ...(s.role === 'proxy'
      ? {
          fallback: {
            listen: { address: ctx.address, port: ctx.ports.from + FALLBACK_PORT_OFFSET },
            fpm: fpmAddress,
          },
        }
      : {}),
  });
  // the proxy keeps its own php-fpm: the backends' backup, and ready when they go
  const wantsFpm = s.php !== 'none';
  const pool = fpmConf({ work, address: ctx.address, port: fpmPort(ctx), children: 4, env: phpEnv(ctx, s) });
  if (pool.skipped.length > 0)
    ctx.log.warn('variables left out of PHP: their values cannot be passed', { names: pool.skipped });
  if (s.tls) {
    await put(ctx, 'tls.crt', s.tls.certificate);
    await put(ctx, 'tls.key', s.tls.key);
  }
  const iniChanged = await put(ctx, 'php.ini', phpIni({ settings: php, extensions: extensions(), work }));
  const poolChanged = await put(ctx, 'php-fpm.conf', pool.conf);
  const fpmChanged = iniChanged || poolChanged;
  const nginxChanged = await put(ctx, 'nginx.conf', conf);

  if (!started.has(ctx.nodeId)) return;
  await startReader(ctx);
  if (wantsFpm) {
    if (!isUp(ctx, 'php-fpm')) {
      await startFpm(ctx);
      if (!(await waitForPort(ctx.address, fpmPort(ctx), 10_000)))
        ctx.log.warn('php-fpm does not accept connections yet');
    } else if (fpmChanged) await ctx.signal('php-fpm', 'SIGUSR2');
  } else if (isUp(ctx, 'php-fpm')) await ctx.stopWorkload('php-fpm');
  if (!isUp(ctx, 'nginx')) await startNginx(ctx);
  else if (nginxChanged) await ctx.signal('nginx', 'SIGHUP');
  await prune(ctx, s);
};

/** Deletes the versions this node no longer keeps (never the one it serves). */
const prune = async (ctx: AgentContext, s: NodeSettings): Promise<void> => {
  const held = readHeld(ctx);
  // the newest one too: a configuration made before the manager recorded it may arrive after it
  const last = newest(held.versions);
  const keep = new Set([...s.keep, ...(s.serve ? [s.serve] : []), ...(last ? [last] : [])]);
  const drop = Object.keys(held.versions).filter((v) => !keep.has(v));
  if (drop.length === 0) return;
  // give nginx's old workers time to finish on a version before it goes
  await new Promise((r) => setTimeout(r, 100));
  for (const v of drop) {
    await ctx.files.remove(`code-${v}`);
    delete held.versions[v];
  }
  saveHeld(ctx, held);
};

const serialized = (ctx: AgentContext, f: () => Promise<void>): Promise<void> => {
  const run = oneChange(f);
  run.catch((e: unknown) => ctx.log.error('php node', { error: String(e) }));
  return run;
};

export const phpAgent = {
  onConfigure: (ctx: AgentContext): Promise<void> => serialized(ctx, () => apply(ctx)),
  onStart: (ctx: AgentContext): Promise<void> =>
    serialized(ctx, async () => {
      await prepareDirs(ctx);
      started.add(ctx.nodeId);
      await apply(ctx);
    }),
  onStop: async (ctx: AgentContext): Promise<void> => {
    started.delete(ctx.nodeId);
    // the proxy has taken this node out already; what it sent last finishes
    if (ctx.role !== 'proxy') await new Promise((r) => setTimeout(r, 1000));
  },
  metrics: (): Readonly<Record<string, number>> => ({ ...stats.figures(Date.now()) }),

  /** Unpacks `version` (sent by the manager) beside the others; idempotent. */
  prepare: (ctx: AgentContext, version: string): Promise<{ version: string; root: string }> => {
    const asked = Date.now();
    return serialized(ctx, async () => {
      ctx.log.info('code to unpack', { version, waitedMs: Date.now() - asked });
      if (readHeld(ctx).versions[version]) return;
      const began = Date.now();
      const { entries } = await ctx.files.unpack(version, `code-${version}`);
      ctx.log.info('code unpacked', { version, ms: Date.now() - began });
      const root = documentRoot(entries);
      if (root === undefined) {
        await ctx.files.remove(`code-${version}`);
        throw new ValidationError(`version ${version} has no index.php or index.html`, [
          {
            path: '$.version',
            code: 'no_index',
            message: 'no index.php or index.html at its root or one level down',
          },
        ]);
      }
      const held = readHeld(ctx);
      held.versions[version] = { root, at: Date.now() };
      saveHeld(ctx, held);
      // a node told to serve nothing yet serves its first code at once (see rootOf)
      if (started.has(ctx.nodeId) && !settingsOf(ctx)?.serve) await apply(ctx);
    }).then(() => ({ version, root: readHeld(ctx).versions[version]?.root ?? '' }));
  },

  held: (ctx: AgentContext): string[] => Object.keys(readHeld(ctx).versions),
};
