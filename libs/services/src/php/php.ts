import { z } from 'zod';
import { ConflictError, generateKeyPairAsync, IdSchema, serial, ValidationError } from '@cps/core';
import type { ManagerContext, NodeView } from '../contract/context.js';
import { agentMethod, defineService, managerMethod, pluginState } from '../contract/service.js';
import { applyPhpSettings, PHP_DEFAULTS, type PhpSettings } from './php-config.js';
import {
  HTTPS_PORT_OFFSET,
  NGINX_PORT_OFFSET,
  phpAgent,
  type NodeSettings,
  type UpstreamServer,
} from './server.js';
import { checkCertificate, openWith, sealWith, type CertificateView } from './tls.js';
import { secret } from '../contract/secrets.js';

/**
 * ConPaaS's php service: nginx in front (`proxy`), nginx for static files (`web`), php-fpm
 * (`backend`). One node starts with all three; the roles spread as nodes of the other two are
 * added and come back to the proxy when they are gone. The code is the service's archive, in
 * versions (the director's archive routes); enabling one sends it to every node, unpacked beside
 * the others, then switches every node at once (see server.ts). Guarantees: docs/php.md.
 */

// ---- the plugin's state

/** How many versions a node keeps unpacked (the one it serves and the previous ones, for a rollback). */
const KEEP_VERSIONS = 3;

interface PhpState {
  /** The versions each node holds unpacked, oldest first. */
  readonly held: Readonly<Record<string, readonly string[]>>;
  readonly settings: PhpSettings;
  readonly weights: Readonly<Record<string, number>>;
  readonly cacheSeconds: number;
  /** The proxy's HTTPS certificate, its key sealed (see tls.ts). */
  readonly tls?: z.infer<typeof TlsSet>;
}

const CodeReady = z.object({ version: z.string(), nodeIds: z.array(IdSchema) });
const PhpConfigured = z.object({ settings: z.record(z.string(), z.string()) });
const WeightsSet = z.object({ weights: z.record(IdSchema, z.number().int().min(1).max(100)) });
const CacheSet = z.object({ seconds: z.number().int().min(0).max(3600) });
const TlsSet = z.object({
  certificate: z.string(),
  sealedKey: z.string(),
  redirect: z.boolean(),
  view: z.object({
    subject: z.string(),
    issuer: z.string(),
    validTo: z.string(),
    fingerprint256: z.string(),
    names: z.array(z.string()),
  }),
  /** Set when the platform's services CA issued it, for the proxy node named (renewed as it moves). */
  platform: z.object({ nodeId: IdSchema }).optional(),
});

const state = pluginState<PhpState>({
  initial: { held: {}, settings: {}, weights: {}, cacheSeconds: 0 },
  events: {
    tls_set: TlsSet,
    tls_removed: z.object({}),
    code_ready: CodeReady,
    php_configured: PhpConfigured,
    weights_set: WeightsSet,
    cache_set: CacheSet,
  },
  evolve: (s, e) => {
    switch (e.name) {
      case 'code_ready': {
        const d = e.data as z.infer<typeof CodeReady>;
        const held = { ...s.held };
        for (const n of d.nodeIds)
          held[n] = [...(held[n] ?? []).filter((v) => v !== d.version), d.version].slice(-KEEP_VERSIONS);
        return { ...s, held };
      }
      case 'php_configured':
        return { ...s, settings: (e.data as z.infer<typeof PhpConfigured>).settings };
      case 'weights_set':
        return { ...s, weights: { ...s.weights, ...(e.data as z.infer<typeof WeightsSet>).weights } };
      case 'tls_set':
        return { ...s, tls: e.data as z.infer<typeof TlsSet> };
      case 'tls_removed':
        return { held: s.held, settings: s.settings, weights: s.weights, cacheSeconds: s.cacheSeconds };
      case 'cache_set':
        return { ...s, cacheSeconds: (e.data as z.infer<typeof CacheSet>).seconds };
      default:
        return s;
    }
  },
});

const stateOf = (ctx: ManagerContext): PhpState => ctx.state() as PhpState;
const running = (ctx: ManagerContext): NodeView[] => ctx.nodes().filter((n) => n.state === 'running');
const reachable = (n: NodeView): n is NodeView & { address: string; ports: { from: number; to: number } } =>
  n.address !== undefined && n.ports !== undefined;
/** The running proxy with an address and ports, if there is one. */
const runningProxy = (ctx: ManagerContext) => running(ctx).find((n) => n.role === 'proxy' && reachable(n));

// ---- manager side

/**
 * The running nodes of `role` the proxy sends requests to: those holding the enabled version (or,
 * while none does yet, those holding any). None: the proxy does the work itself.
 */
const upstream = (ctx: ManagerContext, role: 'backend' | 'web'): UpstreamServer[] => {
  const s = stateOf(ctx);
  const enabled = ctx.archive()?.version;
  const nodes = running(ctx).filter((n) => n.role === role && (s.held[n.nodeId]?.length ?? 0) > 0);
  const current = nodes.filter((n) => enabled !== undefined && s.held[n.nodeId]?.includes(enabled));
  return (current.length > 0 ? current : nodes).filter(reachable).map((n) => ({
    nodeId: n.nodeId,
    address: n.address,
    port: n.ports.from + NGINX_PORT_OFFSET,
    weight: s.weights[n.nodeId] ?? 1,
  }));
};

const configureNode = (ctx: ManagerContext, node: NodeView): NodeSettings => {
  const s = stateOf(ctx);
  const enabled = ctx.archive()?.version;
  const holds = s.held[node.nodeId] ?? [];
  const serve = enabled !== undefined && holds.includes(enabled) ? enabled : holds[holds.length - 1];
  const role = node.role as NodeSettings['role'];
  const phpServers = role === 'proxy' ? upstream(ctx, 'backend') : [];
  const webServers = role === 'proxy' ? upstream(ctx, 'web') : [];
  return {
    role,
    ...(serve !== undefined ? { serve } : {}),
    keep: [...holds],
    php: role === 'web' ? 'none' : role === 'backend' || phpServers.length === 0 ? 'local' : 'remote',
    static: role === 'proxy' && webServers.length > 0 ? 'remote' : 'local',
    phpServers,
    webServers,
    trusted: running(ctx)
      .filter((n) => n.role === 'proxy' && n.address)
      .map((n) => n.address!),
    php_settings: { ...PHP_DEFAULTS, ...s.settings },
    cacheSeconds: s.cacheSeconds,
    env: { CPS_SECRET: ctx.secret('php-app'), CPS_SERVICE: ctx.serviceId },
    ...(role === 'proxy' && s.tls
      ? {
          tls: {
            certificate: s.tls.certificate,
            key: openWith(ctx.secret(TLS_KEY), s.tls.sealedKey),
            redirect: s.tls.redirect,
          },
        }
      : {}),
  };
};

/** One delivery at a time in this manager (a node change and a new version may come together). */
const serialized = serial();

/**
 * Sends the enabled version to every running node that does not hold it and has it unpacked there;
 * records which nodes now hold it (every node is then configured again: they switch together).
 */
const deliver = (
  ctx: ManagerContext,
  o: { readonly enabled?: boolean; readonly starting?: string } = {},
): Promise<void> =>
  serialized(async () => {
    const archive = ctx.archive();
    if (!archive) return;
    const held = stateOf(ctx).held;
    const targets = ctx
      .nodes()
      .filter(
        (n) =>
          n.state === 'running' ||
          ((n.state === 'requested' || n.state === 'starting') && n.nodeId === o.starting),
      );
    const lacking = targets.filter((n) => !held[n.nodeId]?.includes(archive.version));
    // a version every node holds already (a rollback): recorded all the same, so every node switches
    if (lacking.length === 0 && o.enabled)
      return ctx.record('code_ready', { version: archive.version, nodeIds: [] });
    if (lacking.length === 0) return;
    ctx.log.info('sending the code', { version: archive.version, nodeIds: lacking.map((n) => n.nodeId) });
    const results = await Promise.allSettled(
      lacking.map(async (n) => {
        await ctx.sendArchive(n.nodeId);
        await ctx.callAgent(n.nodeId, 'prepare_code', { version: archive.version }, { timeoutMs: 180_000 });
        return n.nodeId;
      }),
    );
    const nodeIds = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    results.forEach((r, i) => {
      if (r.status === 'rejected')
        ctx.log.warn('a node did not take the code', { nodeId: lacking[i]!.nodeId, error: String(r.reason) });
    });
    if (nodeIds.length > 0 || o.enabled)
      await ctx.record('code_ready', { version: archive.version, nodeIds });
  });

/** The service's URLs: the proxy's ports on the proxy's address (HTTPS when it has a certificate). */
const publishEndpoint = async (ctx: ManagerContext): Promise<void> => {
  const proxy = runningProxy(ctx);
  if (!proxy?.address || !proxy.ports) return;
  const set = async (name: string, port: number | undefined) => {
    const current = ctx.endpoints()[name];
    if (port === undefined) {
      if (current) await ctx.setEndpoint(name, undefined);
      return;
    }
    if (
      current &&
      current.address === proxy.address &&
      current.port === port &&
      current.nodeId === proxy.nodeId
    )
      return;
    await ctx.setEndpoint(name, { address: proxy.address!, port, nodeId: proxy.nodeId });
  };
  await set('http', proxy.ports.from + NGINX_PORT_OFFSET);
  await set('https', stateOf(ctx).tls ? proxy.ports.from + HTTPS_PORT_OFFSET : undefined);
};

/** The purpose of the service secret that seals the proxy's private key. */
const TLS_KEY = 'php-tls-key';

const CertificateResult = z.object({
  subject: z.string(),
  issuer: z.string(),
  validTo: z.string(),
  fingerprint256: z.string(),
  names: z.array(z.string()),
  redirect_http: z.boolean(),
});

/** A platform certificate is issued again when the proxy moved or when this little validity is left. */
const RENEW_BEFORE_MS = 30 * 24 * 3600_000;

/**
 * Makes a key, has the platform's services CA certify it for the running proxy's address, and
 * records it (the key sealed like a user's).
 */
const issuePlatformCertificate = async (
  ctx: ManagerContext,
  redirect: boolean,
): Promise<{ view: CertificateView; ca: string }> => {
  const proxy = runningProxy(ctx);
  if (!proxy) throw new ConflictError('the service has no running proxy to issue a certificate for');
  const key = await generateKeyPairAsync();
  const issued = await ctx.issueCertificate(proxy.nodeId, key.publicKeyPem);
  const view = checkCertificate(issued.certificate, key.privateKeyPem, new Date());
  await ctx.record('tls_set', {
    certificate: issued.certificate,
    sealedKey: sealWith(ctx.secret(TLS_KEY), key.privateKeyPem),
    redirect,
    view,
    platform: { nodeId: proxy.nodeId },
  });
  return { view, ca: issued.ca };
};

/** One renewal at a time (a change of the nodes and the periodic check may come together). */
const oneRenewal = serial();

/**
 * A platform certificate follows its proxy: issued again for a new proxy node, or once less than
 * {@link RENEW_BEFORE_MS} of it is left (checked at every change of the nodes and every hour).
 */
const renewPlatformCertificate = (ctx: ManagerContext): Promise<void> => oneRenewal(() => renewNow(ctx));

const renewNow = async (ctx: ManagerContext): Promise<void> => {
  const tls = stateOf(ctx).tls;
  if (!tls?.platform) return;
  const proxy = runningProxy(ctx);
  if (!proxy) return;
  const moved = proxy.nodeId !== tls.platform.nodeId;
  if (!moved && Date.parse(tls.view.validTo) - Date.now() > RENEW_BEFORE_MS) return;
  try {
    await issuePlatformCertificate(ctx, tls.redirect);
  } catch (e) {
    ctx.log.warn('the platform certificate was not renewed', { error: String(e) });
  }
};

const Figures = z.record(z.string(), z.number());

/**
 * Refuses an archive with no `index.php` or `index.html` at its root or in its only top-level
 * directory (where the agent serves it from, see `documentRoot`).
 */
const checkArchive = (nearRoot: readonly string[]): void => {
  const isIndex = (p: string): boolean => /^(index\.php|index\.html)$/.test(p);
  if (nearRoot.some(isIndex)) return;
  const tops = new Set(nearRoot.map((p) => (p.includes('/') ? p.slice(0, p.indexOf('/')) : '')));
  const [top] = [...tops];
  if (tops.size === 1 && top && nearRoot.some((p) => isIndex(p.slice(top.length + 1)))) return;
  throw new ValidationError('the archive has no index.php or index.html at its root or one level down', [
    {
      path: '$.archive',
      code: 'no_index',
      message: 'put index.php or index.html at the archive’s root, or in its only top-level directory',
    },
  ]);
};

export const phpService = defineService({
  type: 'php',
  description:
    'PHP web applications (WordPress, MediaWiki): nginx in front, nginx for static files, php-fpm backends; code versions switched without dropping a request',
  roles: ['proxy', 'web', 'backend'],
  defaultRoles: { proxy: 1 },
  fixedRoles: { proxy: 1 },
  configSchema: z.object({}),
  manifestKeys: z.object({
    /** ConPaaS's `Archive`: the first code version (a URL of the allow-list, or a local file `cps deploy` uploads). */
    Archive: z.string().url().optional(),
  }),
  packages: [
    'nginx',
    'php-fpm',
    'php-mysql',
    'php-xml',
    'php-mbstring',
    'php-curl',
    'php-zip',
    'php-intl',
    'php-gd',
  ],
  checkArchive,
  state,
  manager: {
    methods: {
      get_php_configuration: managerMethod({
        description: 'The php settings of the service (defaults included)',
        readOnly: true,
        args: z.object({}),
        result: z.object({ settings: z.record(z.string(), z.string()) }),
        handle: (ctx) => ({ settings: { ...PHP_DEFAULTS, ...stateOf(ctx).settings } }),
      }),
      update_php_configuration: managerMethod({
        description:
          'Changes php settings (memory_limit, max_execution_time, upload_max_filesize, post_max_size, display_errors, date.timezone, opcache.*); every node reloads php-fpm, and nginx’s body limit follows upload_max_filesize',
        args: z.object({ settings: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])) }),
        result: z.object({ settings: z.record(z.string(), z.string()) }),
        handle: async (ctx, a) => {
          const settings = applyPhpSettings(stateOf(ctx).settings, a.settings);
          await ctx.record('php_configured', { settings });
          return { settings };
        },
      }),
      set_weights: managerMethod({
        description:
          'Sets how much of the load backend or web nodes take, relative to each other (1-100, default 1)',
        args: z.object({ weights: z.record(z.string(), z.number().int().min(1).max(100)) }),
        result: z.object({ weights: z.record(z.string(), z.number()) }),
        handle: async (ctx, a) => {
          const nodes = new Map(running(ctx).map((n) => [n.nodeId, n]));
          const issues = Object.keys(a.weights).flatMap((id) => {
            const n = nodes.get(id);
            if (!n) return [{ path: `$.weights.${id}`, code: 'not_found', message: `no running node ${id}` }];
            if (n.role === 'proxy')
              return [
                { path: `$.weights.${id}`, code: 'invalid_role', message: 'the proxy takes no weight' },
              ];
            return [];
          });
          if (issues.length > 0) throw new ValidationError(issues.map((i) => i.message).join('; '), issues);
          await ctx.record('weights_set', { weights: a.weights });
          return { weights: { ...stateOf(ctx).weights } };
        },
      }),
      set_cache: managerMethod({
        description:
          'Keeps answers of PHP to anonymous GET requests on the proxy for this many seconds (0: off, the default)',
        args: z.object({ seconds: z.number().int().min(0).max(3600) }),
        result: z.object({ seconds: z.number() }),
        handle: async (ctx, a) => {
          await ctx.record('cache_set', { seconds: a.seconds });
          return { seconds: a.seconds };
        },
      }),
      set_certificate: managerMethod({
        description:
          'Serves HTTPS on the proxy with this certificate (PEM, then its chain) and key, or (`platform`) with one from the platform’s services CA for the proxy’s address, renewed as needed; `redirect_http` sends plain HTTP to HTTPS (default false: both answer)',
        args: z.object({
          certificate: z.string().min(1).max(65_536).optional(),
          key: secret(z.string().min(1).max(65_536)).optional(),
          platform: z.boolean().default(false),
          redirect_http: z.boolean().default(false),
        }),
        result: CertificateResult.extend({
          /** The services CA, when the platform issued the certificate: what clients trust. */
          ca: z.string().optional(),
        }),
        handle: async (ctx, a) => {
          if (a.platform) {
            if (a.certificate !== undefined || a.key !== undefined)
              throw new ValidationError('give a certificate and key, or platform, not both', [
                { path: '$.platform', code: 'conflict', message: 'the platform issues the key itself' },
              ]);
            const issued = await issuePlatformCertificate(ctx, a.redirect_http);
            await publishEndpoint(ctx);
            return { ...issued.view, redirect_http: a.redirect_http, ca: issued.ca };
          }
          if (a.certificate === undefined || a.key === undefined) {
            const path = a.certificate === undefined ? '$.certificate' : '$.key';
            throw new ValidationError('a certificate and its key are needed (or platform: true)', [
              { path, code: 'required', message: 'required unless platform is true' },
            ]);
          }
          const view = checkCertificate(a.certificate, a.key, new Date());
          await ctx.record('tls_set', {
            certificate: a.certificate,
            sealedKey: sealWith(ctx.secret(TLS_KEY), a.key),
            redirect: a.redirect_http,
            view,
          });
          await publishEndpoint(ctx);
          return { ...view, redirect_http: a.redirect_http };
        },
      }),
      get_certificate: managerMethod({
        description: 'The proxy’s HTTPS certificate (its key is never shown), if it has one',
        readOnly: true,
        args: z.object({}),
        result: z.object({ certificate: CertificateResult.optional() }),
        handle: (ctx) => {
          const t = stateOf(ctx).tls;
          return t ? { certificate: { ...t.view, redirect_http: t.redirect } } : {};
        },
      }),
      remove_certificate: managerMethod({
        description: 'Stops serving HTTPS on the proxy',
        args: z.object({}),
        result: z.object({ removed: z.boolean() }),
        handle: async (ctx) => {
          if (!stateOf(ctx).tls) return { removed: false };
          await ctx.record('tls_removed', {});
          await publishEndpoint(ctx);
          return { removed: true };
        },
      }),
      get_code_status: managerMethod({
        description: 'The enabled code version and the versions each node holds and serves',
        readOnly: true,
        args: z.object({}),
        result: z.object({
          enabled: z.string().optional(),
          nodes: z.array(z.object({ nodeId: z.string(), role: z.string(), held: z.array(z.string()) })),
        }),
        handle: (ctx) => {
          const enabled = ctx.archive()?.version;
          return {
            ...(enabled ? { enabled } : {}),
            nodes: running(ctx).map((n) => ({
              nodeId: n.nodeId,
              role: n.role,
              held: [...(stateOf(ctx).held[n.nodeId] ?? [])],
            })),
          };
        },
      }),
      get_service_performance: managerMethod({
        description:
          'Per running node, from its access log over the last 10 s: requests/s, p50/p95/p99 response time (ms), 4xx and 5xx per second',
        readOnly: true,
        args: z.object({}),
        result: z.object({ nodes: z.array(z.record(z.string(), z.unknown())) }),
        handle: async (ctx) => {
          const nodes = running(ctx);
          const answers = await ctx.fanOut(
            nodes.map((n) => n.nodeId),
            'performance',
            {},
          );
          return {
            nodes: answers.map((a, i) =>
              a.ok
                ? { nodeId: a.nodeId, role: nodes[i]!.role, ...(a.result as object) }
                : { nodeId: a.nodeId, role: nodes[i]!.role, error: a.error.message },
            ),
          };
        },
      }),
    },
    configureNode,
    onNodesChanged: async (ctx) => {
      await renewPlatformCertificate(ctx);
      await publishEndpoint(ctx);
      await deliver(ctx);
    },
    // a node that joins gets the code while it starts, so it serves it as soon as it is ready
    onNodeJoined: async (ctx, node) => {
      const archive = ctx.archive();
      if (archive && !stateOf(ctx).held[node.nodeId]?.includes(archive.version))
        await deliver(ctx, { starting: node.nodeId });
    },
    onArchiveChanged: (ctx) => deliver(ctx, { enabled: true }),
    periodic: { everyMs: 3_600_000, run: renewPlatformCertificate },
  },
  agent: {
    methods: {
      prepare_code: agentMethod({
        description: 'Unpacks a code version the manager sent beside the others (not yet served)',
        args: z.object({ version: z.string().min(1).max(64) }),
        result: z.object({ version: z.string(), root: z.string() }),
        handle: (ctx, a) => phpAgent.prepare(ctx, a.version),
      }),
      performance: agentMethod({
        description: "This node's request figures (see get_service_performance)",
        args: z.object({}),
        result: Figures,
        handle: () => phpAgent.metrics(),
      }),
    },
    onConfigure: phpAgent.onConfigure,
    onStart: phpAgent.onStart,
    onStop: phpAgent.onStop,
    metrics: phpAgent.metrics,
  },
});
