import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { ConflictError, CpsError, IdSchema, NotFoundError, ValidationError } from '@cps/core';
import type { AgentContext, ManagerContext, NodeView } from '../contract/context.js';
import { agentMethod, defineService, managerMethod, pluginState } from '../contract/service.js';
import {
  archiveBinlogs,
  BackupScheduleSchema,
  BackupTaken,
  BackupView,
  backupNow,
  BINLOG_NAME,
  closedBinlogs,
  exclusively,
  recoverRestore,
  restoreBackup,
  RestoreArgs,
  restoreOn,
  restorePlan,
  stored,
  takeBackup,
  takeBinlog,
  type BackupSchedule,
} from './backup.js';
import { mostAdvanced } from './gtid.js';
import {
  checkDumpText,
  checkParam,
  ident,
  literal,
  MAX_DUMP_BYTES,
  paramValue,
  NameSchema,
  PasswordSchema,
  PrivilegeSchema,
  UserSchema,
} from './inputs.js';
import {
  apply,
  databaseExists,
  dumpDatabases,
  ensureUser,
  fence,
  connectArgs,
  loadDump,
  type NodeSettings,
  position,
  settingsOf,
  slaveStatus,
  sql,
  startServer,
  untilUp,
  userExists,
  values,
  waitFor,
} from './server.js';

/**
 * The `mysql` service (ADR 10, docs/mysql.md): MariaDB from Debian, one primary and any number of
 * replicas with GTID and semi-synchronous replication. Which node is the primary, and since which
 * epoch, is the plugin's state (`primary_elected`); the manager alone elects, every server starts
 * read-only, and only the configuration of the current epoch's primary opens it for writes.
 */

// ---- the plugin's state

const PrimaryElected = z.object({
  nodeId: IdSchema,
  epoch: z.number().int().min(1),
  /** The nodes whose data went through the election (they follow; any other copies afresh). */
  members: z.array(IdSchema),
  reason: z.string().max(300),
});
const ParamSet = z.object({ name: z.string().max(64), value: z.string().max(256) });
const RootCreated = z.object({});
const ScheduleSet = z.object({ schedule: BackupScheduleSchema.nullable() });
/** A user made for a service linking this one (its password is derived again, never recorded). */
const LinkGranted = z.object({ serviceId: IdSchema, user: z.string(), database: z.string() });
/** The manifest's `Dump`: its load begun (`started`), then ended (`loaded`, with the error that ended it). */
const DumpStarted = z.object({ bytes: z.number() });
const DumpLoaded = z.object({ bytes: z.number(), error: z.string().max(1_000).optional() });
/** A restore, as recorded: what it restored, on which node, and where the data it replaced lies. */
const Restored = z.object({
  backup: z.string(),
  at: z.string().optional(),
  nodeId: IdSchema,
  replaced: z.string(),
  gtid: z.string(),
  when: z.string(),
});

interface MysqlState {
  readonly epoch: number;
  readonly primary?: string;
  readonly members: readonly string[];
  readonly params: Readonly<Record<string, string>>;
  readonly rootCreated: boolean;
  /** Set by `set_backup_schedule` (null: none, whatever the manifest says). */
  readonly schedule?: BackupSchedule | null;
  readonly restores: readonly z.infer<typeof Restored>[];
  readonly linked: Readonly<Record<string, z.infer<typeof LinkGranted>>>;
  readonly dump?: z.infer<typeof DumpLoaded> & { readonly done: boolean };
}

const state = pluginState<MysqlState>({
  initial: { epoch: 0, members: [], params: {}, rootCreated: false, restores: [], linked: {} },
  events: {
    primary_elected: PrimaryElected,
    param_set: ParamSet,
    root_created: RootCreated,
    backup_schedule_set: ScheduleSet,
    restored: Restored,
    link_granted: LinkGranted,
    dump_started: DumpStarted,
    dump_loaded: DumpLoaded,
  },
  evolve: (s, e) => {
    if (e.name === 'primary_elected') {
      const d = e.data as z.infer<typeof PrimaryElected>;
      return { ...s, epoch: d.epoch, primary: d.nodeId, members: d.members };
    }
    if (e.name === 'param_set') {
      const d = e.data as z.infer<typeof ParamSet>;
      return { ...s, params: { ...s.params, [d.name]: d.value } };
    }
    if (e.name === 'root_created') return { ...s, rootCreated: true };
    if (e.name === 'backup_schedule_set')
      return { ...s, schedule: (e.data as z.infer<typeof ScheduleSet>).schedule };
    if (e.name === 'dump_started')
      return { ...s, dump: { ...(e.data as z.infer<typeof DumpStarted>), done: false } };
    if (e.name === 'dump_loaded')
      return { ...s, dump: { ...(e.data as z.infer<typeof DumpLoaded>), done: true } };
    if (e.name === 'link_granted') {
      const d = e.data as z.infer<typeof LinkGranted>;
      return { ...s, linked: { ...s.linked, [d.serviceId]: d } };
    }
    if (e.name === 'restored')
      return { ...s, restores: [...s.restores, e.data as z.infer<typeof Restored>].slice(-100) };
    return s;
  },
});

const stateOf = (ctx: ManagerContext): MysqlState => ctx.state() as MysqlState;
const running = (ctx: ManagerContext): NodeView[] => ctx.nodes().filter((n) => n.state === 'running');
const portOf = (n: NodeView): number => {
  if (!n.ports) throw new CpsError('internal', `node ${n.nodeId} has no port range`);
  return n.ports.from;
};

/** The running primary, or a `conflict` error naming why there is none. */
const primaryNode = (ctx: ManagerContext): NodeView => {
  const id = stateOf(ctx).primary;
  const node = running(ctx).find((n) => n.nodeId === id);
  if (!node)
    throw new ConflictError(
      id ? `the primary ${id} is not running (a failover is under way)` : 'no primary yet',
    );
  return node;
};
const onPrimary = (ctx: ManagerContext, method: string, args: unknown, timeoutMs = 30_000) =>
  ctx.callAgent(primaryNode(ctx).nodeId, method, args, { timeoutMs });

/** Records `node` as the primary of a new epoch (every node is then configured again) and moves the endpoint. */
const elect = async (ctx: ManagerContext, node: NodeView, members: readonly string[], reason: string) => {
  const s = stateOf(ctx);
  await ctx.record('primary_elected', {
    nodeId: node.nodeId,
    epoch: s.epoch + 1,
    members: [...members],
    reason,
  });
  ctx.log.info('primary elected', { nodeId: node.nodeId, epoch: s.epoch + 1, reason });
  await moveEndpoint(ctx, node);
};

const moveEndpoint = async (ctx: ManagerContext, node: NodeView) => {
  const e = ctx.endpoints()['mysql'];
  if (!node.address) return;
  if (e?.nodeId !== node.nodeId || e.address !== node.address)
    await ctx.setEndpoint('mysql', { address: node.address, port: portOf(node), nodeId: node.nodeId });
};

interface Position {
  readonly nodeId: string;
  readonly epoch: number;
  readonly role: string;
  readonly received: string;
}

/**
 * Keeps one primary: the first running node (a `primary` one first) when none was ever elected;
 * when the primary is gone (failed, removed), the replica of the current epoch that received the
 * most, once it applied all it received. Runs after every change of the nodes, one run at a time,
 * and again after a manager restart: an election is recorded before anything acts on it, so an
 * interrupted failover is finished, never repeated.
 */
const ensurePrimary = async (ctx: ManagerContext): Promise<void> => {
  const s = stateOf(ctx);
  const current = ctx.nodes().find((n) => n.nodeId === s.primary);
  if (current && ['requested', 'starting', 'running'].includes(current.state)) {
    if (current.state === 'running') {
      await moveEndpoint(ctx, current);
      await ensureRoot(ctx, current);
      await ensureDump(ctx, current);
    }
    return;
  }
  const candidates = running(ctx);
  if (candidates.length === 0) return;
  if (!s.primary) {
    const first = candidates.find((n) => n.role === 'primary') ?? candidates[0]!;
    await elect(ctx, first, [first.nodeId], 'first primary');
    await ensureRoot(ctx, first);
    return ensureDump(ctx, first);
  }
  const answers = await ctx.fanOut(
    candidates.map((n) => n.nodeId),
    'position',
    {},
    { timeoutMs: 10_000 },
  );
  const positions = answers.flatMap((a): Position[] =>
    a.ok ? [{ nodeId: a.nodeId, ...(a.result as Omit<Position, 'nodeId'>) }] : [],
  );
  const holders = positions.filter((p) => p.epoch === s.epoch && p.role === 'replica');
  const best = mostAdvanced(holders.map((p) => ({ ...p, position: p.received })));
  const why = `failover: ${s.primary} is ${current?.state ?? 'gone'}`;
  if (best) {
    const node = candidates.find((n) => n.nodeId === best.nodeId)!;
    return elect(
      ctx,
      node,
      holders.map((h) => h.nodeId),
      why,
    );
  }
  if (positions.length < candidates.length) return; // some did not answer: asked again at the next change
  // no node holds the epoch's data (the primary was alone, or its replicas were still copying)
  ctx.log.error(
    'no replica holds the data of the lost primary: a running node is promoted with what it has',
    {
      primary: s.primary,
      epoch: s.epoch,
    },
  );
  const node = candidates.find((n) => n.nodeId === positions[0]!.nodeId)!;
  await elect(ctx, node, [node.nodeId], `${why}; no replica held its data`);
};

/**
 * The manifest's `Dump` (ConPaaS's: an SQL file at a URL, which the director downloaded into the
 * service's objects): loaded once into the primary as the `mariadb` client would, statement after
 * statement, the first error ending it (recorded, and shown by `get_connection_info`). It loads in
 * the background: a failover does not wait for it. A load a manager restart cut short is recorded
 * as such, not run twice.
 */
const loadingDumps = new Set<string>();
const ensureDump = async (ctx: ManagerContext, primary: NodeView): Promise<void> => {
  const dump = stateOf(ctx).dump;
  if (!(ctx.manifest as { Dump?: string }).Dump || dump?.done || loadingDumps.has(ctx.serviceId)) return;
  if (dump)
    return ctx.record('dump_loaded', {
      bytes: dump.bytes,
      error: 'interrupted: the manager restarted while loading it (load the rest with load_dump)',
    });
  const info = await ctx.objects.info('manifest-dump');
  if (!info) return; // not downloaded yet: the next change of the nodes looks again
  // the primary playing its role already (else the periodic run looks again)
  const pos = (await ctx.callAgent(primary.nodeId, 'position', {})) as { role?: string; epoch?: number };
  if (pos.role !== 'primary' || pos.epoch !== stateOf(ctx).epoch) return;
  await ctx.record('dump_started', { bytes: info.size });
  loadingDumps.add(ctx.serviceId);
  void (async () => {
    let error: string | undefined;
    try {
      await ctx.objects.toNode('manifest-dump', primary.nodeId, 'manifest-dump.sql');
      const r = (await ctx.callAgent(
        primary.nodeId,
        'load_sql_file',
        { file: 'manifest-dump.sql' },
        { timeoutMs: 60 * 60_000 },
      )) as { error?: string };
      error = r.error;
    } catch (e) {
      error = String(e);
    }
    if (error) ctx.log.error("the manifest's Dump stopped at an error", { error });
    await ctx.record('dump_loaded', { bytes: info.size, ...(error ? { error: error.slice(0, 1_000) } : {}) });
  })()
    .catch((e: unknown) => ctx.log.error("recording the manifest's Dump", { error: String(e) }))
    .finally(() => loadingDumps.delete(ctx.serviceId));
};

/** The manifest's `Password`: the account `root` gets it once, on the first primary. */
const ensureRoot = async (ctx: ManagerContext, primary: NodeView): Promise<void> => {
  const password = (ctx.manifest as { Password?: string }).Password;
  if (!password || stateOf(ctx).rootCreated) return;
  await ctx.callAgent(primary.nodeId, 'ensure_user', { user: 'root', password }, { timeoutMs: 30_000 });
  await ctx.record('root_created', {});
};

/**
 * The database and user of a service linking this one: the database named after it (made if
 * missing), a `cps_link_` user of its own with every privilege there and nowhere else, its password
 * derived from the owner's key (the same at every ask, stored nowhere).
 */
const linkUser = (ctx: ManagerContext, consumer: { serviceId: string; name: string }) => {
  let database = consumer.name
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, 32);
  if (!NameSchema.safeParse(database).success) database = `app_${database}`.slice(0, 32);
  return {
    user: `cps_link_${consumer.serviceId.replace(/[^A-Za-z0-9_]/g, '_')}`.slice(0, 80),
    database,
    password: ctx.secret(`link/${consumer.serviceId}`),
  };
};

/** Makes (again) the users of the linking services: after a restore to a backup taken before them. */
const ensureLinkUsers = async (ctx: ManagerContext): Promise<void> => {
  for (const l of Object.values(stateOf(ctx).linked))
    await onPrimary(ctx, 'link_user', { ...l, password: ctx.secret(`link/${l.serviceId}`) });
};

/** The schedule set by `set_backup_schedule`, else the manifest's `Backups`. */
const scheduleOf = (ctx: ManagerContext): BackupSchedule | undefined => {
  const set = stateOf(ctx).schedule;
  if (set !== undefined) return set ?? undefined;
  const m = (ctx.manifest as { Backups?: { EveryMinutes: number; Keep: number; MaxAgeDays?: number } })
    .Backups;
  return (
    m && {
      every_minutes: m.EveryMinutes,
      keep: m.Keep,
      ...(m.MaxAgeDays ? { max_age_days: m.MaxAgeDays } : {}),
    }
  );
};

/** The schedule's backups when due, and the binary logs archived every 5 minutes in between. */
const lastArchived = new Map<string, number>();
const scheduled = async (ctx: ManagerContext): Promise<void> => {
  const schedule = scheduleOf(ctx);
  const primary = running(ctx).find((n) => n.nodeId === stateOf(ctx).primary);
  if (!primary) return;
  // what the first primary gets once (asked again here if it was not ready when elected)
  await ensureRoot(ctx, primary);
  await ensureDump(ctx, primary);
  if (!schedule) return;
  await exclusively(ctx, async () => {
    const latest = (await stored(ctx)).backups.at(-1);
    if (!latest || Date.now() - Date.parse(latest.at) >= schedule.every_minutes * 60_000) {
      await backupNow(ctx, primary, schedule);
      lastArchived.set(ctx.serviceId, Date.now());
    } else if (Date.now() - (lastArchived.get(ctx.serviceId) ?? 0) >= 5 * 60_000) {
      await archiveBinlogs(ctx, primary);
      lastArchived.set(ctx.serviceId, Date.now());
    }
  });
};

const Privileges = z.array(PrivilegeSchema).min(1).max(PrivilegeSchema.options.length);

export const mysqlService = defineService({
  type: 'mysql',
  description:
    'MariaDB (Debian mariadb-server): a primary and replicas with GTID and semi-synchronous replication, failover to the most advanced replica, dumps and loads',
  roles: ['primary', 'replica'],
  defaultRoles: { primary: 1 },
  configSchema: z.object({}),
  manifestKeys: z.object({
    /** ConPaaS's `Password`: the account `root` (every database, no server administration) gets it. */
    Password: PasswordSchema.optional(),
    /** ConPaaS's `Dump`: the URL of an SQL file loaded once into the new service (allow-listed). */
    Dump: z
      .url({ protocol: /^https?$/ })
      .max(2_000)
      .optional(),
    /** Backups on a schedule, with their retention (`set_backup_schedule` overrides it). */
    Backups: z
      .object({
        EveryMinutes: BackupScheduleSchema.shape.every_minutes,
        Keep: BackupScheduleSchema.shape.keep,
        MaxAgeDays: BackupScheduleSchema.shape.max_age_days,
      })
      .optional(),
  }),
  packages: ['mariadb-server', 'mariadb-client', 'mariadb-backup'],
  manifestFiles: ['Dump'],
  state,
  links: {
    credentials: async (ctx, consumer) => {
      const u = linkUser(ctx, consumer);
      await onPrimary(ctx, 'link_user', u);
      const granted = stateOf(ctx).linked[consumer.serviceId];
      if (granted?.user !== u.user || granted.database !== u.database)
        await ctx.record('link_granted', {
          serviceId: consumer.serviceId,
          user: u.user,
          database: u.database,
        });
      return { MYSQL_DATABASE: u.database, MYSQL_USER: u.user, MYSQL_PASSWORD: u.password };
    },
    // ConPaaS's MYSQL_IP too; the host follows the primary (a failover moves the endpoint)
    env: ({ endpoints, credentials }) => {
      const e = endpoints['mysql'];
      return {
        ...(e ? { MYSQL_HOST: e.address, MYSQL_IP: e.address, MYSQL_PORT: String(e.port) } : {}),
        ...credentials,
      };
    },
  },
  manager: {
    methods: {
      get_connection_info: managerMethod({
        description: 'Where clients connect: the primary (address, port), and the nodes serving reads',
        readOnly: true,
        args: z.object({}),
        result: z.object({
          host: z.string(),
          port: z.number(),
          primary: z.string(),
          epoch: z.number(),
          replicas: z.array(z.object({ nodeId: z.string(), host: z.string(), port: z.number() })),
          user: z.string().optional(),
          /** The manifest's `Dump`, once loaded: its size, and the error that ended it if one did. */
          dump: z.object({ bytes: z.number(), error: z.string().optional() }).optional(),
        }),
        handle: (ctx) => {
          const p = primaryNode(ctx);
          return {
            host: p.address ?? '',
            port: portOf(p),
            primary: p.nodeId,
            epoch: stateOf(ctx).epoch,
            replicas: running(ctx)
              .filter((n) => n.nodeId !== p.nodeId && n.address)
              .map((n) => ({ nodeId: n.nodeId, host: n.address!, port: portOf(n) })),
            ...((ctx.manifest as { Password?: string }).Password ? { user: 'root' } : {}),
            ...(stateOf(ctx).dump?.done
              ? {
                  dump: {
                    bytes: stateOf(ctx).dump!.bytes,
                    ...(stateOf(ctx).dump!.error ? { error: stateOf(ctx).dump!.error } : {}),
                  },
                }
              : {}),
          };
        },
      }),
      get_replication: managerMethod({
        description: 'Each running node: its epoch and role, GTID positions, replication threads and lag',
        readOnly: true,
        args: z.object({}),
        result: z.object({
          primary: z.string().optional(),
          epoch: z.number(),
          nodes: z.array(z.record(z.string(), z.unknown())),
        }),
        handle: async (ctx) => {
          const s = stateOf(ctx);
          const answers = await ctx.fanOut(
            running(ctx).map((n) => n.nodeId),
            'position',
            {},
          );
          return {
            ...(s.primary ? { primary: s.primary } : {}),
            epoch: s.epoch,
            nodes: answers.map((a) =>
              a.ok
                ? { nodeId: a.nodeId, ...(a.result as object) }
                : { nodeId: a.nodeId, error: a.error.message },
            ),
          };
        },
      }),
      get_service_performance: managerMethod({
        description: 'Per running node: queries per second, connections, replication lag',
        readOnly: true,
        args: z.object({}),
        result: z.object({ nodes: z.array(z.record(z.string(), z.unknown())) }),
        handle: async (ctx) => ({
          nodes: (
            await ctx.fanOut(
              running(ctx).map((n) => n.nodeId),
              'performance',
              {},
            )
          ).map((a) =>
            a.ok
              ? { nodeId: a.nodeId, ...(a.result as object) }
              : { nodeId: a.nodeId, error: a.error.message },
          ),
        }),
      }),
      create_database: managerMethod({
        description: 'Creates a database (on the primary; the replicas follow)',
        args: z.object({ name: NameSchema }),
        result: z.object({ name: z.string(), created: z.boolean() }),
        handle: async (ctx, a) =>
          (await onPrimary(ctx, 'create_database', a)) as { name: string; created: boolean },
      }),
      create_user: managerMethod({
        description: 'Creates a user with privileges on one database (never on the server itself)',
        args: z.object({
          name: UserSchema,
          password: PasswordSchema,
          database: NameSchema,
          privileges: Privileges.default(['ALL']),
        }),
        result: z.object({ name: z.string(), database: z.string(), privileges: z.array(z.string()) }),
        handle: async (ctx, a) => {
          await onPrimary(ctx, 'create_user', a);
          return { name: a.name, database: a.database, privileges: a.privileges };
        },
      }),
      set_password: managerMethod({
        description: "Sets a user's password (ConPaaS: the root user's); the old one stops working",
        args: z.object({ user: UserSchema.default('root'), password: PasswordSchema }),
        result: z.object({ user: z.string() }),
        handle: async (ctx, a) => {
          await onPrimary(ctx, 'set_password', a);
          return { user: a.user };
        },
      }),
      temporary_user: managerMethod({
        description: 'A user that expires (dropped after `minutes`): what `cps mysql connect` uses',
        args: z.object({ minutes: z.number().int().min(1).max(1_440).default(60) }),
        result: z.object({
          user: z.string(),
          password: z.string(),
          host: z.string(),
          port: z.number(),
          expiresAt: z.string(),
        }),
        handle: async (ctx, a) => {
          const p = primaryNode(ctx);
          const r = (await ctx.callAgent(p.nodeId, 'temporary_user', a, { timeoutMs: 30_000 })) as {
            user: string;
            password: string;
          };
          return {
            ...r,
            host: p.address ?? '',
            port: portOf(p),
            expiresAt: new Date(Date.now() + a.minutes * 60_000).toISOString(),
          };
        },
      }),
      set_param: managerMethod({
        description: 'Sets an allow-listed server variable on every node, now and at every restart',
        args: z.object({ name: z.string().min(1).max(64), value: z.string().min(1).max(256) }),
        result: z.object({ name: z.string(), value: z.string() }),
        handle: async (ctx, a) => {
          checkParam(a.name, a.value);
          // tried on the primary first: a value the server refuses is not recorded
          await onPrimary(ctx, 'try_param', a);
          await ctx.record('param_set', a);
          return a;
        },
      }),
      promote: managerMethod({
        description:
          'Makes a replica the primary: the primary stops taking writes, the replica catches up, then takes over',
        args: z.object({ nodeId: IdSchema }),
        result: z.object({ primary: z.string(), epoch: z.number() }),
        handle: async (ctx, a) => {
          const s = stateOf(ctx);
          const node = running(ctx).find((n) => n.nodeId === a.nodeId);
          if (!node) throw new NotFoundError(`no running node ${a.nodeId}`);
          const pos = (await ctx.callAgent(node.nodeId, 'position', {})) as Omit<Position, 'nodeId'>;
          if (node.nodeId === s.primary || pos.role !== 'replica' || pos.epoch !== s.epoch)
            throw new ValidationError(`${a.nodeId} is not a replica in sync with the primary`, [
              {
                path: '$.nodeId',
                code: 'not_a_replica',
                message:
                  node.nodeId === s.primary
                    ? 'it is the primary'
                    : 'it is not a replica of the current epoch',
              },
            ]);
          const old = running(ctx).find((n) => n.nodeId === s.primary);
          if (old) {
            const { gtid } = (await ctx.callAgent(old.nodeId, 'fence', {}, { timeoutMs: 30_000 })) as {
              gtid: string;
            };
            const { caughtUp } = (await ctx.callAgent(
              node.nodeId,
              'wait_for',
              { gtid, seconds: 20 },
              { timeoutMs: 30_000 },
            )) as {
              caughtUp: boolean;
            };
            if (!caughtUp) {
              await ctx.callAgent(old.nodeId, 'reapply', {}, { timeoutMs: 30_000 });
              throw new ConflictError(
                `${a.nodeId} did not catch up with the primary in 20 s: nothing changed`,
              );
            }
          }
          const members = running(ctx)
            .map((n) => n.nodeId)
            .filter((n) => n !== s.primary);
          await elect(ctx, node, old ? [...members, old.nodeId] : members, 'promoted');
          return { primary: node.nodeId, epoch: s.epoch + 1 };
        },
      }),
      load_dump: managerMethod({
        description: `Loads an SQL dump (at most ${MAX_DUMP_BYTES} bytes) into a database, whole or not at all`,
        args: z.object({ sql: z.string().max(MAX_DUMP_BYTES), database: NameSchema }),
        result: z.object({ database: z.string(), tables: z.number() }),
        handle: async (ctx, a) => {
          checkDumpText(a.sql);
          const r = (await onPrimary(ctx, 'load_dump', a, 10 * 60_000)) as { tables: number };
          return { database: a.database, tables: r.tables };
        },
      }),
      sqldump: managerMethod({
        description: `A consistent SQL dump of one database or of all (at most ${MAX_DUMP_BYTES} bytes)`,
        readOnly: true,
        args: z.object({ database: NameSchema.optional() }),
        result: z.object({ sql: z.string() }),
        handle: async (ctx, a) => (await onPrimary(ctx, 'sqldump', a, 5 * 60_000)) as { sql: string },
      }),
      backup: managerMethod({
        description: 'A full backup now (mariadb-backup), stored with its SHA-256 in the service’s objects',
        args: z.object({}),
        result: BackupView,
        handle: (ctx) => exclusively(ctx, () => backupNow(ctx, primaryNode(ctx), scheduleOf(ctx))),
      }),
      list_backups: managerMethod({
        description:
          'The stored backups, the binary logs archived (what a point in time can reach), the schedule and past restores',
        readOnly: true,
        args: z.object({}),
        result: z.object({
          backups: z.array(BackupView),
          binlogs: z.object({ count: z.number(), until: z.string().optional() }),
          schedule: BackupScheduleSchema.optional(),
          restores: z.array(Restored),
        }),
        handle: async (ctx) => {
          const { backups, binlogs } = await stored(ctx);
          const until = binlogs
            .map((l) => l.closed)
            .sort()
            .at(-1);
          const schedule = scheduleOf(ctx);
          return {
            backups,
            binlogs: { count: binlogs.length, ...(until ? { until } : {}) },
            ...(schedule ? { schedule } : {}),
            restores: [...stateOf(ctx).restores],
          };
        },
      }),
      restore: managerMethod({
        description:
          'Replaces the data with a backup, or with the state at a point in time (the last backup before it and the archived binary logs); the replaced data is kept aside on the node. Asks `yes: true`.',
        args: z
          .object({
            backup: IdSchema.optional(),
            at: z.iso.datetime({ offset: true }).optional(),
            yes: z.boolean().default(false),
          })
          .refine((a) => a.backup !== undefined || a.at !== undefined, {
            message: 'a backup or a point in time (at)',
            path: ['backup'],
          }),
        result: z.object({
          backup: z.string(),
          at: z.string().optional(),
          nodeId: z.string(),
          replaced: z.string(),
          gtid: z.string(),
        }),
        handle: (ctx, a) =>
          exclusively(ctx, async () => {
            const at = a.at === undefined ? undefined : new Date(a.at);
            if (at && at.getTime() > Date.now())
              throw new ValidationError(`${a.at} is in the future`, [
                { path: '$.at', code: 'in_the_future', message: 'a past moment' },
              ]);
            const primary = primaryNode(ctx);
            // the logs up to now first: the moment asked for may be in the open one
            if (at) await archiveBinlogs(ctx, primary);
            const plan = await restorePlan(ctx, {
              ...(a.backup ? { backup: a.backup } : {}),
              ...(at ? { at } : {}),
            });
            if (!a.yes)
              throw new ValidationError('a restore replaces the live data: ask again with yes', [
                {
                  path: '$.yes',
                  code: 'confirmation_required',
                  message: `replaces the data of ${primary.nodeId}`,
                },
              ]);
            const r = await restoreOn(ctx, primary, plan, at);
            const done = {
              backup: plan.backup.id,
              ...(at ? { at: at.toISOString() } : {}),
              nodeId: primary.nodeId,
              replaced: r.replaced,
              gtid: r.gtid,
            };
            await ctx.record('restored', { ...done, when: new Date().toISOString() });
            // a new epoch of the restored data: the replicas copy it afresh
            await elect(
              ctx,
              primary,
              [primary.nodeId],
              `restored ${plan.backup.id}${at ? ` to ${done.at}` : ''}`,
            );
            // the linking services' users, if the backup predates them
            await ensureLinkUsers(ctx);
            return done;
          }),
      }),
      set_backup_schedule: managerMethod({
        description:
          'Backs up every `every_minutes`, keeping `keep` backups and none older than `max_age_days`; every_minutes 0 stops it',
        args: z.object({
          every_minutes: z.number().int().min(0).max(10_080),
          keep: BackupScheduleSchema.shape.keep,
          max_age_days: BackupScheduleSchema.shape.max_age_days,
        }),
        result: z.object({ schedule: BackupScheduleSchema.nullable() }),
        handle: async (ctx, a) => {
          if (a.every_minutes !== 0 && a.every_minutes < 5)
            throw new ValidationError('backups at most every 5 minutes', [
              { path: '$.every_minutes', code: 'too_small', message: '0 (off) or at least 5' },
            ]);
          const schedule = a.every_minutes === 0 ? null : BackupScheduleSchema.parse(a);
          await ctx.record('backup_schedule_set', { schedule });
          return { schedule };
        },
      }),
      delete_backup: managerMethod({
        description: 'Deletes a stored backup',
        args: z.object({ id: IdSchema }),
        result: z.object({ id: z.string(), deleted: z.boolean() }),
        handle: async (ctx, a) => {
          if (!(await stored(ctx)).backups.some((b) => b.id === a.id))
            throw new ValidationError(`no backup ${a.id}`, [
              { path: '$.id', code: 'not_found', message: 'no such backup (see list_backups)' },
            ]);
          return { id: a.id, deleted: await ctx.objects.delete(a.id) };
        },
      }),
    },
    periodic: { everyMs: 30_000, run: (ctx) => scheduled(ctx) },
    configureNode: (ctx, node): NodeSettings => {
      const s = stateOf(ctx);
      const primary = ctx.nodes().find((n) => n.nodeId === s.primary && n.state !== 'removed');
      const base = {
        epoch: s.epoch,
        members: [...s.members],
        admin: ctx.secret('admin'),
        replication: ctx.secret('replication'),
        params: { ...s.params },
      };
      if (!primary?.address || !primary.ports) return { role: 'standalone', semiSync: false, ...base };
      if (primary.nodeId === node.nodeId)
        return { role: 'primary', semiSync: running(ctx).some((n) => n.nodeId !== node.nodeId), ...base };
      return {
        role: 'replica',
        semiSync: false,
        primary: { nodeId: primary.nodeId, address: primary.address, port: portOf(primary) },
        ...base,
      };
    },
    onNodesChanged: ensurePrimary,
  },
  agent: {
    methods: {
      position: agentMethod({
        description: "This node's epoch, role, GTID positions and replication",
        args: z.object({}),
        result: z.record(z.string(), z.unknown()),
        handle: (ctx) => position(ctx),
      }),
      performance: agentMethod({
        description: 'Queries per second since the last ask, connections, replication lag',
        args: z.object({}),
        result: z.record(z.string(), z.unknown()),
        handle: async (ctx) => {
          const [questions, uptime, threads] = (
            await values(
              ctx,
              "SELECT (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='QUESTIONS'), " +
                "(SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='UPTIME'), " +
                "(SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='THREADS_CONNECTED')",
            )
          ).map(Number);
          const now = Date.now();
          const last = samples.get(ctx.nodeId);
          samples.set(ctx.nodeId, { at: now, questions: questions! });
          const qps =
            last && now > last.at && questions! >= last.questions
              ? ((questions! - last.questions) * 1000) / (now - last.at)
              : questions! / Math.max(1, uptime!);
          const p = await position(ctx);
          return {
            queriesPerSecond: Math.round(qps * 10) / 10,
            connections: threads,
            ...(p.lagSeconds === undefined ? {} : { lagSeconds: p.lagSeconds }),
            readOnly: p.readOnly,
          };
        },
      }),
      fence: agentMethod({
        description: 'Stops taking writes; answers the position reached',
        args: z.object({}),
        result: z.object({ gtid: z.string() }),
        handle: async (ctx) => ({ gtid: await fence(ctx) }),
      }),
      reapply: agentMethod({
        description: 'Plays its configured role again (after a fence that led nowhere)',
        args: z.object({}),
        result: z.object({}),
        handle: async (ctx) => {
          await apply(ctx);
          return {};
        },
      }),
      wait_for: agentMethod({
        description: 'Waits until this replica applied a GTID position',
        args: z.object({ gtid: z.string().max(4_096), seconds: z.number().int().min(0).max(60) }),
        result: z.object({ caughtUp: z.boolean() }),
        handle: async (ctx, a) => ({ caughtUp: await waitFor(ctx, a.gtid, a.seconds) }),
      }),
      create_database: agentMethod({
        description: 'CREATE DATABASE IF NOT EXISTS',
        args: z.object({ name: NameSchema }),
        result: z.object({ name: z.string(), created: z.boolean() }),
        handle: async (ctx, a) => {
          const existed = await databaseExists(ctx, a.name);
          await sql(ctx, `CREATE DATABASE IF NOT EXISTS ${ident(a.name)}`);
          return { name: a.name, created: !existed };
        },
      }),
      create_user: agentMethod({
        description: 'CREATE USER with privileges on one database',
        args: z.object({
          name: UserSchema,
          password: PasswordSchema,
          database: NameSchema,
          privileges: Privileges,
        }),
        result: z.object({}),
        handle: async (ctx, a) => {
          if (await userExists(ctx, a.name))
            throw new ValidationError(`user ${a.name} exists`, [
              { path: '$.name', code: 'exists', message: 'set its password with set_password' },
            ]);
          await sql(
            ctx,
            [
              `CREATE DATABASE IF NOT EXISTS ${ident(a.database)}`,
              `CREATE USER ${literal(a.name)}@'%' IDENTIFIED BY ${literal(a.password)}`,
              `GRANT ${a.privileges.includes('ALL') ? 'ALL PRIVILEGES' : a.privileges.join(', ')} ON ${ident(a.database)}.* TO ${literal(a.name)}@'%'`,
              '',
            ].join(';\n'),
          );
          return {};
        },
      }),
      set_password: agentMethod({
        description: 'ALTER USER ... IDENTIFIED BY',
        args: z.object({ user: UserSchema, password: PasswordSchema }),
        result: z.object({}),
        handle: async (ctx, a) => {
          if (!(await userExists(ctx, a.user)))
            throw new ValidationError(`no user ${a.user}`, [
              { path: '$.user', code: 'not_found', message: 'no such user' },
            ]);
          await sql(ctx, `ALTER USER ${literal(a.user)}@'%' IDENTIFIED BY ${literal(a.password)}`);
          return {};
        },
      }),
      load_sql_file: agentMethod({
        description: 'Runs an SQL file of the spool as the administrator; answers the first error',
        args: z.object({ file: z.string() }),
        result: z.object({ error: z.string().optional() }),
        handle: async (ctx, a) => {
          const s = settingsOf(ctx)!;
          const r = await ctx.exec('mariadb', ['--no-defaults', ...connectArgs(ctx)], {
            env: { MYSQL_PWD: s.admin },
            stdinFrom: a.file,
            timeoutMs: 60 * 60_000,
          });
          ctx.spool.remove(a.file);
          return r.code === 0 ? {} : { error: (r.stderr || `exit ${r.code}`).trim().slice(-1_000) };
        },
      }),
      link_user: agentMethod({
        description: 'The user of a linking service: every privilege on its database, its password set',
        args: z.object({
          user: z.string().regex(/^cps_link_[A-Za-z0-9_]+$/),
          password: z.string(),
          database: NameSchema,
        }),
        result: z.object({}),
        handle: async (ctx, a) => {
          await sql(
            ctx,
            [
              `CREATE DATABASE IF NOT EXISTS ${ident(a.database)}`,
              `CREATE USER IF NOT EXISTS ${literal(a.user)}@'%' IDENTIFIED BY ${literal(a.password)}`,
              `ALTER USER ${literal(a.user)}@'%' IDENTIFIED BY ${literal(a.password)}`,
              `GRANT ALL PRIVILEGES ON ${ident(a.database)}.* TO ${literal(a.user)}@'%'`,
              '',
            ].join(';\n'),
          );
          return {};
        },
      }),
      ensure_user: agentMethod({
        description: 'Creates a user with the privileges of the service users on every database',
        args: z.object({ user: UserSchema, password: PasswordSchema }),
        result: z.object({}),
        handle: async (ctx, a) => {
          await ensureUser(ctx, a.user, a.password);
          return {};
        },
      }),
      temporary_user: agentMethod({
        description: 'A user dropped by the server itself after `minutes` (an event)',
        args: z.object({ minutes: z.number().int().min(1).max(1_440) }),
        result: z.object({ user: z.string(), password: z.string() }),
        handle: async (ctx, a) => {
          const user = `cps_tmp_${randomBytes(4).toString('hex')}`;
          const password = randomBytes(24).toString('base64url');
          await ensureUser(ctx, user, password);
          await sql(
            ctx,
            `CREATE EVENT IF NOT EXISTS mysql.${ident(`${user}_expiry`)} ON SCHEDULE AT CURRENT_TIMESTAMP + INTERVAL ${a.minutes} MINUTE ` +
              `ON COMPLETION NOT PRESERVE DO DROP USER IF EXISTS ${literal(user)}@'%'`,
          );
          return { user, password };
        },
      }),
      try_param: agentMethod({
        description: 'SET GLOBAL of an allow-listed variable',
        args: z.object({ name: z.string(), value: z.string() }),
        result: z.object({}),
        handle: async (ctx, a) => {
          checkParam(a.name, a.value);
          try {
            await sql(ctx, `SET GLOBAL ${a.name} = ${paramValue(a.value)}`);
          } catch (e) {
            throw new ValidationError(`the server refused ${a.name}=${a.value}`, [
              { path: '$.value', code: 'invalid_value', message: String((e as Error).message).slice(0, 300) },
            ]);
          }
          return {};
        },
      }),
      load_dump: agentMethod({
        description: 'Loads a dump into a database through a staging database',
        args: z.object({ sql: z.string(), database: NameSchema }),
        result: z.object({ tables: z.number() }),
        handle: (ctx, a) => loadDump(ctx, a.database, a.sql),
      }),
      sqldump: agentMethod({
        description: 'mariadb-dump of the users’ databases',
        args: z.object({ database: NameSchema.optional() }),
        result: z.object({ sql: z.string() }),
        handle: async (ctx, a) => {
          if (a.database) {
            if (!(await databaseExists(ctx, a.database)))
              throw new ValidationError(`no database ${a.database}`, [
                { path: '$.database', code: 'not_found', message: 'no such database' },
              ]);
          }
          return { sql: await dumpDatabases(ctx, a.database, MAX_DUMP_BYTES) };
        },
      }),
      backup_take: agentMethod({
        description: 'A full backup (mariadb-backup, gzipped) into a spool file',
        args: z.object({ file: z.string() }),
        result: BackupTaken,
        handle: (ctx, a) => takeBackup(ctx, a.file),
      }),
      binlogs_closed: agentMethod({
        description: 'Closes the current binary log; the closed ones, oldest first',
        args: z.object({}),
        result: z.object({ dataId: z.string(), files: z.array(z.string()) }),
        handle: (ctx) => closedBinlogs(ctx),
      }),
      binlog_take: agentMethod({
        description: 'A closed binary log into a spool file',
        args: z.object({ name: z.string().regex(BINLOG_NAME), file: z.string() }),
        result: z.object({}),
        handle: async (ctx, a) => {
          await takeBinlog(ctx, a.name, a.file);
          return {};
        },
      }),
      restore: agentMethod({
        description:
          'Replaces the data with a backup (and binary logs) from the spool; the old data set aside',
        args: RestoreArgs,
        result: z.object({ replaced: z.string(), gtid: z.string() }),
        handle: async (ctx, a) => {
          let r: { replaced: string; gtid: string } | undefined;
          await serially(ctx, async () => {
            r = await restoreBackup(ctx, a);
          });
          return r!;
        },
      }),
    },
    onConfigure: async (ctx) => {
      if (ctx.workload('mariadbd')?.state !== 'running') return;
      await serially(ctx, () => apply(ctx));
    },
    onStart: async (ctx) => {
      if (!settingsOf(ctx)) return;
      await serially(ctx, async () => {
        await recoverRestore(ctx);
        await startServer(ctx);
        await apply(ctx);
      });
      watch(ctx);
    },
    onStop: async (ctx) => {
      clearInterval(watchers.get(ctx.nodeId));
      watchers.delete(ctx.nodeId);
    },
    metrics: (ctx) =>
      Object.fromEntries(
        Object.entries(figures.get(ctx.nodeId) ?? {}).filter(([k]) => k !== 'at' && k !== 'questions'),
      ),
  },
});

/**
 * A server restarted by the agent's supervisor (it died, kill -9) starts read-only and replicating
 * nothing, as every server does: each second the agent looks at when the server's current run
 * began, and a new run is given its role again once it answers (again the next second if that
 * failed).
 */
const watchers = new Map<string, NodeJS.Timeout>();
const watch = (ctx: AgentContext): void => {
  if (watchers.has(ctx.nodeId)) return;
  let seen = ctx.workload('mariadbd')?.startedAt;
  let busy = false;
  let tick = 0;
  const timer = setInterval(() => {
    const w = ctx.workload('mariadbd');
    if (++tick % 5 === 0 && w?.state === 'running') void sampleFigures(ctx);
    if (busy || w?.state !== 'running' || w.startedAt === undefined || w.startedAt === seen) return;
    const run = w.startedAt;
    busy = true;
    void serially(ctx, async () => {
      await untilUp(ctx);
      await apply(ctx);
    })
      .then(() => {
        if (seen !== undefined) ctx.log.warn('mariadbd started again: its role was applied again', { run });
        seen = run;
      })
      .catch((e: unknown) => ctx.log.warn('applying the role after a restart failed', { error: String(e) }))
      .finally(() => {
        busy = false;
      });
  }, 1_000);
  timer.unref();
  watchers.set(ctx.nodeId, timer);
};

/** What the heartbeats carry (`agent.metrics`): sampled every 5 s by the watcher. */
const figures = new Map<string, Record<string, number>>();
const sampleFigures = async (ctx: AgentContext): Promise<void> => {
  try {
    const [questions, threads] = (
      await values(
        ctx,
        "SELECT (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='QUESTIONS'), " +
          "(SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='THREADS_CONNECTED')",
      )
    ).map(Number);
    const now = Date.now();
    const last = figures.get(ctx.nodeId);
    const qps =
      last && last['at']! < now && questions! >= last['questions']!
        ? ((questions! - last['questions']!) * 1000) / (now - last['at']!)
        : undefined;
    const st = await slaveStatus(ctx);
    const behind = st ? Number(st['Seconds_Behind_Master']) : NaN;
    figures.set(ctx.nodeId, {
      at: now,
      questions: questions!,
      ...(qps === undefined ? {} : { queriesPerSecond: Math.round(qps * 10) / 10 }),
      connections: threads!,
      ...(Number.isFinite(behind) ? { replicationLagSeconds: behind } : {}),
    });
  } catch {
    // the server is restarting: the next sample
  }
};

/** The last `performance` sample of each node this agent process serves (one). */
const samples = new Map<string, { at: number; questions: number }>();

/** One configuration at a time on a node (a copy may outlast the manager's wait, which asks again). */
const queues = new Map<string, Promise<void>>();
const serially = (ctx: AgentContext, work: () => Promise<void>): Promise<void> => {
  const next = (queues.get(ctx.nodeId) ?? Promise.resolve()).catch(() => undefined).then(work);
  queues.set(ctx.nodeId, next);
  return next;
};
