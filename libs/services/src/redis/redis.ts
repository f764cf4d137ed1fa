import { z } from 'zod';
import { CpsError, IdSchema, ConflictError, NotFoundError } from '@cps/core';
import type { AgentContext, ManagerContext, NodeView } from '../contract/context.js';
import { secret } from '../contract/secrets.js';
import { agentMethod, defineService, managerMethod, pluginState } from '../contract/service.js';

/**
 * The guide's example (docs/plugin-guide.md): Debian's `redis-server` with one primary and any number
 * of replicas. Which node is the primary is the plugin's state (`primary_chosen` events), so every
 * restart of any part finds it again; each node is told its role in its configuration
 * (`configureNode`), keeps it, and starts from it; data lives in the node's data directory.
 */

// ---- the plugin's state: who is the primary

const PrimaryChosen = z.object({ nodeId: IdSchema, reason: z.string().max(200) });
interface RedisState {
  readonly primary?: string;
}
const state = pluginState<RedisState>({
  initial: {},
  events: { primary_chosen: PrimaryChosen },
  evolve: (s, e) => (e.name === 'primary_chosen' ? { primary: (e.data as { nodeId: string }).nodeId } : s),
});

/** What each node is told (its `settings`). */
const NodeSettings = z.object({
  role: z.enum(['primary', 'replica', 'standalone']),
  primary: z.object({ address: z.string(), port: z.number() }).optional(),
  /** The manifest's `Password`: clients and replicas authenticate with it. */
  password: z.string().optional(),
});
type NodeSettings = z.infer<typeof NodeSettings>;

const portOf = (n: Pick<NodeView, 'ports'>): number => {
  if (!n.ports) throw new CpsError('internal', 'a redis node needs a port range');
  return n.ports.from;
};

// ---- manager side

const primaryOf = (ctx: ManagerContext): string | undefined => (ctx.state() as RedisState).primary;
const running = (ctx: ManagerContext): NodeView[] => ctx.nodes().filter((n) => n.state === 'running');

/** Makes `node` the primary: recorded (every node is then configured again) and the endpoint moved. */
const choose = async (ctx: ManagerContext, node: NodeView, reason: string): Promise<void> => {
  if (primaryOf(ctx) !== node.nodeId) await ctx.record('primary_chosen', { nodeId: node.nodeId, reason });
  if (node.address)
    await ctx.setEndpoint('redis', { address: node.address, port: portOf(node), nodeId: node.nodeId });
};

/** The replication offset each running node reports (a node that does not answer is left out). */
const offsets = async (ctx: ManagerContext, nodes: readonly NodeView[]) => {
  const answers = await ctx.fanOut(
    nodes.map((n) => n.nodeId),
    'replication',
    {},
  );
  return answers.flatMap((a) =>
    a.ok ? [{ nodeId: a.nodeId, offset: (a.result as { offset: number }).offset }] : [],
  );
};

/**
 * A primary is needed when there is none yet or it is no longer running: the running node with the
 * most replicated data is promoted (on a first start, any running node).
 */
const ensurePrimary = async (ctx: ManagerContext): Promise<void> => {
  const primary = primaryOf(ctx);
  const nodes = ctx.nodes();
  const current = nodes.find((n) => n.nodeId === primary);
  if (current && ['requested', 'starting', 'running'].includes(current.state)) {
    if (current.state === 'running') await choose(ctx, current, 'primary');
    return;
  }
  const candidates = running(ctx);
  if (candidates.length === 0) return;
  if (!primary) return choose(ctx, candidates[0]!, 'first primary');
  const best = (await offsets(ctx, candidates)).sort((a, b) => b.offset - a.offset)[0];
  const node = candidates.find((n) => n.nodeId === best?.nodeId);
  if (node) await choose(ctx, node, `failover: ${primary} is ${current?.state ?? 'gone'}`);
};

// ---- agent side

/** One redis-cli argument, quoted as redis-cli reads its input lines. */
const quote = (arg: string): string =>
  `"${[...Buffer.from(arg)].map((b) => (b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('')}"`;

/** Runs commands on this node's server, one connection, one command per line; its reply lines. */
const redis = async (ctx: AgentContext, ...commands: readonly (readonly string[])[]): Promise<string[]> => {
  const { password } = settingsOf(ctx);
  const r = await ctx.exec('redis-cli', ['-h', ctx.address, '-p', String(ctx.ports.from)], {
    input: commands.map((c) => c.map(quote).join(' ')).join('\n') + '\n',
    // in the environment, not an argument: another process's arguments are anyone's to read
    ...(password ? { env: { REDISCLI_AUTH: password } } : {}),
    timeoutMs: 10_000,
  });
  if (r.code !== 0 || /^(ERR|Could not connect)/m.test(r.stdout + r.stderr))
    throw new CpsError(
      'unavailable',
      `redis on ${ctx.nodeId}: ${(r.stderr || r.stdout).trim().slice(0, 300)}`,
    );
  return r.stdout.split('\n').slice(0, -1);
};

const settingsOf = (ctx: AgentContext): NodeSettings =>
  NodeSettings.parse(ctx.config?.settings ?? { role: 'standalone' });

/**
 * The server's configuration, given on its stdin (`redis-server -`): no file a workload could not
 * open by the absolute path the server makes of it, and the password in no argument. Its port, its
 * data directory (relative to the work directory it runs in), append-only durability, its password,
 * its primary.
 */
const serverConfig = (ctx: AgentContext, s: NodeSettings): string =>
  [
    ['port', String(ctx.ports.from)],
    ['bind', ctx.address],
    ['protected-mode', 'no'],
    ['dir', ctx.dataDir],
    ['appendonly', 'yes'],
    ['appendfsync', 'everysec'],
    ['replica-read-only', 'yes'],
    ...(s.password
      ? [
          ['requirepass', s.password],
          ['masterauth', s.password],
        ]
      : []),
    ...(s.role === 'replica' && s.primary ? [['replicaof', s.primary.address, String(s.primary.port)]] : []),
  ]
    .map(([k, ...v]) => `${k} ${v.map(quote).join(' ')}`)
    .join('\n') + '\n';

const startServer = (ctx: AgentContext): Promise<void> =>
  ctx.startWorkload({
    name: 'redis',
    command: 'redis-server',
    args: ['-'],
    input: serverConfig(ctx, settingsOf(ctx)),
    ready: { tcp: ctx.ports.from },
  });

/** The server's `INFO replication`, field by field. */
const replicationInfo = async (ctx: AgentContext): Promise<Record<string, string>> =>
  Object.fromEntries(
    (await redis(ctx, ['INFO', 'replication'])).flatMap((l) => {
      const i = l.indexOf(':');
      return i > 0 ? [[l.slice(0, i), l.slice(i + 1).trim()]] : [];
    }),
  );

/** Whether the running server already plays the role `s` (its primary included). */
const plays = async (ctx: AgentContext, s: NodeSettings): Promise<boolean> => {
  const info = await replicationInfo(ctx);
  if (s.role !== 'replica') return info['role'] === 'master';
  return (
    info['role'] === 'slave' &&
    info['master_host'] === s.primary?.address &&
    info['master_port'] === String(s.primary?.port)
  );
};

export const redisService = defineService({
  type: 'redis',
  description:
    'Redis with a primary and replicas (Debian redis-server): data kept on every restart, failover to the most advanced replica',
  roles: ['server'],
  defaultRoles: { server: 2 },
  configSchema: z.object({}),
  manifestKeys: z.object({
    /** ConPaaS's `Password`: clients (and replicas, of their primary) must give it. */
    Password: secret(z.string().min(8).max(256)).optional(),
  }),
  packages: ['redis-server'],
  state,
  manager: {
    methods: {
      set: managerMethod({
        description:
          'Sets a key on the primary; answers how many replicas have it too (waits up to 2 s for one)',
        args: z.object({ key: z.string().min(1).max(512), value: z.string().max(65_536) }),
        result: z.object({ replicas: z.number() }),
        handle: async (ctx, a) => {
          const primary = primaryOf(ctx);
          if (!primary) throw new ConflictError('no primary yet');
          const replicas = running(ctx).length - 1;
          return (await ctx.callAgent(primary, 'set', { ...a, replicas }, { timeoutMs: 10_000 })) as {
            replicas: number;
          };
        },
      }),
      get: managerMethod({
        description: 'Reads a key, from the primary or from one node',
        readOnly: true,
        args: z.object({ key: z.string().min(1).max(512), nodeId: IdSchema.optional() }),
        result: z.object({ value: z.string().nullable() }),
        handle: async (ctx, a) => {
          const nodeId = a.nodeId ?? primaryOf(ctx);
          if (!nodeId) throw new ConflictError('no primary yet');
          if (!ctx.nodes().some((n) => n.nodeId === nodeId)) throw new NotFoundError(`no node ${nodeId}`);
          return (await ctx.callAgent(nodeId, 'get', { key: a.key })) as { value: string | null };
        },
      }),
      get_replication: managerMethod({
        description: 'Each running node: its role, its replication offset, its link to the primary',
        readOnly: true,
        args: z.object({}),
        result: z.object({
          primary: z.string().optional(),
          nodes: z.array(
            z.object({
              nodeId: z.string(),
              role: z.string().optional(),
              offset: z.number().optional(),
              link: z.string().optional(),
              error: z.string().optional(),
            }),
          ),
        }),
        handle: async (ctx) => {
          const answers = await ctx.fanOut(
            running(ctx).map((n) => n.nodeId),
            'replication',
            {},
          );
          const primary = primaryOf(ctx);
          return {
            ...(primary ? { primary } : {}),
            nodes: answers.map((a) =>
              a.ok
                ? { nodeId: a.nodeId, ...(a.result as object) }
                : { nodeId: a.nodeId, error: a.error.message },
            ),
          };
        },
      }),
      promote: managerMethod({
        description: 'Makes a running replica the primary (the others follow it)',
        args: z.object({ nodeId: IdSchema }),
        result: z.object({ primary: z.string() }),
        handle: async (ctx, a) => {
          const node = running(ctx).find((n) => n.nodeId === a.nodeId);
          if (!node) throw new NotFoundError(`no running node ${a.nodeId}`);
          await choose(ctx, node, 'promoted');
          return { primary: node.nodeId };
        },
      }),
    },
    configureNode: (ctx, node): NodeSettings => {
      const password = (ctx.manifest as { Password?: string }).Password;
      const auth = password ? { password } : {};
      const primaryId = primaryOf(ctx);
      const primary = ctx.nodes().find((n) => n.nodeId === primaryId && n.state !== 'removed');
      if (!primary?.address) return { role: 'standalone', ...auth };
      if (primary.nodeId === node.nodeId) return { role: 'primary', ...auth };
      return { role: 'replica', primary: { address: primary.address, port: portOf(primary) }, ...auth };
    },
    onNodesChanged: ensurePrimary,
  },
  agent: {
    methods: {
      set: agentMethod({
        description: 'SET on this node, then WAIT for `replicas` replicas (2 s at most)',
        args: z.object({ key: z.string(), value: z.string(), replicas: z.number().int().min(0) }),
        result: z.object({ replicas: z.number() }),
        handle: async (ctx, a) => {
          const [ok, acked] = await redis(ctx, ['SET', a.key, a.value], ['WAIT', String(a.replicas), '2000']);
          if (ok !== 'OK') throw new CpsError('unavailable', `SET answered ${ok}`);
          return { replicas: Number(acked ?? 0) };
        },
      }),
      get: agentMethod({
        description: 'GET on this node',
        args: z.object({ key: z.string() }),
        result: z.object({ value: z.string().nullable() }),
        handle: async (ctx, a) => {
          const [exists, ...value] = await redis(ctx, ['EXISTS', a.key], ['GET', a.key]);
          return { value: exists === '1' ? value.join('\n') : null };
        },
      }),
      replication: agentMethod({
        description: "This node's role, replication offset and link to its primary (INFO replication)",
        args: z.object({}),
        result: z.object({ role: z.string(), offset: z.number(), link: z.string().optional() }),
        handle: async (ctx) => {
          const info = await replicationInfo(ctx);
          const role = info['role'] === 'slave' ? 'replica' : String(info['role']);
          const offset = Number(info['slave_repl_offset'] ?? info['master_repl_offset'] ?? 0);
          return {
            role,
            offset,
            ...(info['master_link_status'] ? { link: info['master_link_status'] } : {}),
          };
        },
      }),
    },
    onConfigure: async (ctx) => {
      if (ctx.workload('redis')?.state !== 'running') return;
      // a new role: the server starts again with it (so a restart of the server keeps it too)
      if (await plays(ctx, settingsOf(ctx)).catch(() => false)) return;
      await ctx.stopWorkload('redis');
      await startServer(ctx);
    },
    onStart: startServer,
  },
});
