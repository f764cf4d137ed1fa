import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { CpsError, ValidationError } from '@cps/core';
import type { AgentContext } from '../contract/context.js';
import { errorLine, ident, literal, paramValue, USER_GLOBAL_PRIVILEGES } from './inputs.js';

/**
 * The agent's side of the mysql service: one `mariadbd` per node, run as the workload user from
 * arguments alone (`--no-defaults`: no configuration file anyone could edit), its data in the node's
 * data directory, administered over TCP by the `mariadb` client with a password in the environment.
 */

/** The accounts the service keeps for itself on every server (same on all: the data copies them). */
export const ADMIN = 'cps_admin';
export const REPLICATION = 'cps_repl';

/** What each node is told (its `settings`): see `configureNode` in mysql.ts. */
export const NodeSettings = z.object({
  role: z.enum(['primary', 'replica', 'standalone']),
  /** The current epoch: one per election of a primary. */
  epoch: z.number().int().min(0),
  primary: z.object({ nodeId: z.string(), address: z.string(), port: z.number() }).optional(),
  /** The nodes that kept their data through the last election (the others copy it afresh). */
  members: z.array(z.string()),
  admin: z.string(),
  replication: z.string(),
  /** Semi-synchronous replication on (the primary, while at least one replica runs). */
  semiSync: z.boolean(),
  params: z.record(z.string(), z.string()),
});
export type NodeSettings = z.infer<typeof NodeSettings>;

export const settingsOf = (ctx: AgentContext): NodeSettings | undefined => {
  const parsed = NodeSettings.safeParse(ctx.config?.settings);
  return parsed.success ? parsed.data : undefined;
};

export const requireSettings = (ctx: AgentContext): NodeSettings => {
  const s = settingsOf(ctx);
  if (!s) throw new CpsError('conflict', `node ${ctx.nodeId} has no configuration yet`);
  return s;
};

/** Which epoch this node's data belongs to, and as what: kept in the plugin's private directory. */
interface Stamp {
  readonly epoch: number;
  readonly role: 'primary' | 'replica';
}
const stampFile = (ctx: AgentContext) => join(ctx.stateDir, 'mysql.json');
/** Present while a copy of the primary is being made (a copy that died half-way is started afresh). */
const copying = (ctx: AgentContext) => join(ctx.stateDir, 'mysql.copying');
export const readStamp = async (ctx: AgentContext): Promise<Stamp | undefined> => {
  try {
    return JSON.parse(await readFile(stampFile(ctx), 'utf8')) as Stamp;
  } catch {
    return undefined;
  }
};
const writeStamp = async (ctx: AgentContext, stamp: Stamp): Promise<void> => {
  const tmp = `${stampFile(ctx)}.tmp`;
  await writeFile(tmp, JSON.stringify(stamp));
  await rename(tmp, stampFile(ctx));
};

/** Names one data directory's lineage of binary logs: new at every install and every restore. */
const dataIdFile = (ctx: AgentContext) => join(ctx.stateDir, 'mysql.dataid');
export const newDataId = async (ctx: AgentContext): Promise<string> => {
  const id = randomBytes(4).toString('hex');
  await writeFile(`${dataIdFile(ctx)}.tmp`, id);
  await rename(`${dataIdFile(ctx)}.tmp`, dataIdFile(ctx));
  return id;
};
export const dataId = async (ctx: AgentContext): Promise<string> => {
  try {
    return (await readFile(dataIdFile(ctx), 'utf8')).trim();
  } catch {
    return newDataId(ctx); // data made before data ids existed
  }
};

/** One shell word per argument (for the pipelines of `bash -c`). */
export const shell = (args: readonly string[]): string =>
  args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');

/** The server's data directory: absolute (mariadbd resolves relative ones against its own base). */
export const dataPath = (ctx: AgentContext, name = 'db') => `${ctx.workDir}/${ctx.dataDir}/${name}`;
export const portOf = (ctx: AgentContext) => ctx.ports.from;

/**
 * How a client program reaches a server: over TCP, this node's server unless `host`/`port` name
 * another, as the service's administrator unless `user` is given (the password goes in the
 * environment). Put `--no-defaults` before these: MariaDB's tools want it first.
 */
export const connectArgs = (
  ctx: AgentContext,
  o: { readonly host?: string; readonly port?: number; readonly user?: string } = {},
): string[] => [
  '--protocol=TCP',
  `--host=${o.host ?? ctx.address}`,
  `--port=${o.port ?? portOf(ctx)}`,
  `--user=${o.user ?? ADMIN}`,
];

/** A server id per node (GTIDs name it): from the node's id, the same at every start. */
export const serverId = (nodeId: string): number =>
  (createHash('sha256').update(nodeId).digest().readUInt32BE(0) % 4_294_967_294) + 1;

const serverArgs = (ctx: AgentContext, s: NodeSettings | undefined): string[] => [
  '--no-defaults',
  `--datadir=${dataPath(ctx)}`,
  `--port=${portOf(ctx)}`,
  `--bind-address=${ctx.address}`,
  '--socket=mysqld.sock',
  `--server-id=${serverId(ctx.nodeId)}`,
  '--log-bin=binlog',
  '--log-warnings=1',
  '--binlog-format=ROW',
  '--sync-binlog=1',
  '--innodb-flush-log-at-trx-commit=1',
  '--gtid-strict-mode=1',
  '--log-slave-updates=1',
  '--skip-name-resolve',
  // every server starts read-only and replicating nothing: only its configuration makes it a primary
  '--read-only=1',
  '--skip-slave-start',
  '--rpl-semi-sync-master-wait-point=AFTER_SYNC',
  '--rpl-semi-sync-master-timeout=5000',
  '--rpl-semi-sync-slave-enabled=1',
  '--innodb-buffer-pool-size=128M',
  // InnoDB's own I/O threads rather than io_uring: in one loaded CI run a replica crashed in a
  // background worker thread, again at every restart, with io_uring in use; this takes it out of
  // the picture, and a ring per server buys little at these sizes
  '--innodb-use-native-aio=0',
  '--event-scheduler=ON',
  '--local-infile=0',
  // LOAD DATA and SELECT INTO OUTFILE only in a directory of this node's own
  `--secure-file-priv=${dataPath(ctx, 'files')}`,
  ...Object.entries(s?.params ?? {}).map(([k, v]) => `--${k}=${v}`),
];

export interface SqlOptions {
  readonly host?: string;
  readonly port?: number;
  readonly user?: string;
  readonly password?: string;
  readonly database?: string;
  /** Keep the column names (a header line). */
  readonly header?: boolean;
  readonly timeoutMs?: number;
  readonly initCommand?: string;
}

/**
 * Runs `statements` with the `mariadb` client on this node's server (or `host`), as the service's
 * administrator unless `user` is given; answers the output lines (tab-separated fields). The
 * password goes in the client's environment, the statements on its stdin: neither in an argument.
 */
export const sql = async (ctx: AgentContext, statements: string, o: SqlOptions = {}): Promise<string[]> => {
  const s = requireSettings(ctx);
  const r = await ctx.exec(
    'mariadb',
    [
      '--no-defaults',
      ...connectArgs(ctx, o),
      '--batch',
      '--raw',
      ...(o.header ? [] : ['--skip-column-names']),
      ...(o.database ? [`--database=${o.database}`] : []),
      ...(o.initCommand ? [`--init-command=${o.initCommand}`] : []),
    ],
    {
      env: { MYSQL_PWD: o.password ?? s.admin },
      input: statements,
      timeoutMs: o.timeoutMs ?? 30_000,
      keepBytes: 1024 * 1024,
    },
  );
  if (r.code !== 0) {
    const line = errorLine(r.stderr);
    throw new CpsError(
      'unavailable',
      `mariadb on ${ctx.nodeId}: ${r.stderr.trim().slice(0, 500) || `exit ${r.code}`}`,
      [],
      { cause: { stderr: r.stderr, line } },
    );
  }
  return r.stdout.split('\n').filter((l) => l.length > 0);
};

/** One row with a header (`SHOW SLAVE STATUS`) as a record; undefined when there is no row. */
export const row = async (
  ctx: AgentContext,
  statement: string,
): Promise<Record<string, string> | undefined> => {
  const [header, values] = await sql(ctx, statement, { header: true });
  if (!header || values === undefined) return undefined;
  const names = header.split('\t');
  const fields = values.split('\t');
  return Object.fromEntries(names.map((n, i) => [n, fields[i] ?? '']));
};

/** Single values of one `SELECT a, b, ...`. */
export const values = async (ctx: AgentContext, select: string): Promise<string[]> =>
  ((await sql(ctx, select))[0] ?? '').split('\t');

export const must = async (
  ctx: AgentContext,
  what: string,
  command: string,
  args: readonly string[],
  input?: string,
) => {
  const r = await ctx.exec(command, args, { ...(input === undefined ? {} : { input }), timeoutMs: 120_000 });
  if (r.code !== 0)
    throw new CpsError(
      'unavailable',
      `${what} on ${ctx.nodeId}: ${(r.stderr || r.stdout).trim().slice(-500)}`,
    );
  return r;
};

/**
 * A fresh data directory, made beside the live one then renamed into place (a crash half-way leaves
 * nothing that looks installed): system tables without any password-less account, and the service's
 * two accounts with their derived passwords.
 */
const install = async (ctx: AgentContext, s: NodeSettings): Promise<void> => {
  if ((await ctx.exec('test', ['-d', ctx.workDir])).code !== 0)
    throw new CpsError(
      'unavailable',
      `mariadbd needs its data directory by absolute path, and the workload user cannot reach ${ctx.workDir}: ` +
        'run the local cloud in host mode (as root), or the platform as the workload user',
    );
  const fresh = `${ctx.dataDir}/db.new`;
  await must(ctx, 'cleaning', 'rm', ['-rf', fresh]);
  await must(ctx, 'mkdir', 'mkdir', ['-p', `${ctx.dataDir}/files`]);
  await must(ctx, 'mariadb-install-db', 'mariadb-install-db', [
    '--no-defaults',
    `--datadir=${dataPath(ctx, 'db.new')}`,
    '--auth-root-authentication-method=normal',
    '--skip-test-db',
  ]);
  await must(
    ctx,
    'bootstrap',
    '/usr/sbin/mariadbd',
    ['--no-defaults', `--datadir=${dataPath(ctx, 'db.new')}`, '--bootstrap', '--log-warnings=0'],
    [
      'FLUSH PRIVILEGES;',
      // the accounts mariadb-install-db made (root and the installer's, some with no password)
      "DELETE FROM mysql.global_priv WHERE User <> 'mariadb.sys';",
      'DELETE FROM mysql.proxies_priv;',
      'FLUSH PRIVILEGES;',
      `CREATE USER ${literal(ADMIN)}@'%' IDENTIFIED BY ${literal(s.admin)};`,
      `GRANT ALL PRIVILEGES ON *.* TO ${literal(ADMIN)}@'%' WITH GRANT OPTION;`,
      `CREATE USER ${literal(REPLICATION)}@'%' IDENTIFIED BY ${literal(s.replication)};`,
      `GRANT REPLICATION SLAVE, REPLICATION SLAVE ADMIN, BINLOG MONITOR ON *.* TO ${literal(REPLICATION)}@'%';`,
      '',
    ].join('\n'),
  );
  await must(ctx, 'moving the fresh data', 'mv', ['-T', fresh, `${ctx.dataDir}/db`]);
  await newDataId(ctx);
};

const installed = async (ctx: AgentContext): Promise<boolean> =>
  (await ctx.exec('test', ['-d', `${ctx.dataDir}/db/mysql`])).code === 0;

/** Starts mariadbd (installing its data directory the first time) and waits until it answers. */
export const startServer = async (ctx: AgentContext): Promise<void> => {
  const s = requireSettings(ctx);
  if (!(await installed(ctx))) await install(ctx, s);
  await ctx.startWorkload({
    name: 'mariadbd',
    command: '/usr/sbin/mariadbd',
    args: serverArgs(ctx, s),
    restart: 'always',
    ready: { tcp: portOf(ctx) },
  });
  await untilUp(ctx);
};

export const untilUp = async (ctx: AgentContext, ms = 60_000): Promise<void> => {
  const until = Date.now() + ms;
  for (;;) {
    try {
      await sql(ctx, 'SELECT 1', { timeoutMs: 5_000 });
      return;
    } catch (e) {
      if (Date.now() > until) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
};

/** The replica's state, or undefined when it replicates from nobody. */
export const slaveStatus = (ctx: AgentContext) => row(ctx, 'SHOW SLAVE STATUS');

/** What this node holds: its epoch and role as stamped, its GTID positions, its replication. */
export const position = async (ctx: AgentContext) => {
  const stamp = await readStamp(ctx);
  const [current, binlog, slavePos, readOnly] = await values(
    ctx,
    'SELECT @@gtid_current_pos, @@gtid_binlog_pos, @@gtid_slave_pos, @@read_only',
  );
  const status = await slaveStatus(ctx);
  return {
    epoch: stamp?.epoch ?? 0,
    role: stamp?.role ?? 'none',
    /** What it received (a replica's IO position, else what it wrote): the election's measure. */
    received: status?.['Gtid_IO_Pos'] || current || '',
    current: current ?? '',
    binlog: binlog ?? '',
    applied: slavePos ?? '',
    readOnly: readOnly === '1',
    io: status?.['Slave_IO_Running'],
    sqlThread: status?.['Slave_SQL_Running'],
    lagSeconds: status?.['Seconds_Behind_Master'] ? Number(status['Seconds_Behind_Master']) : undefined,
    lastError: status?.['Last_IO_Error'] || status?.['Last_SQL_Error'] || undefined,
  };
};

/** Waits until this replica applied everything it received (its relay log), then stops replicating. */
const drainAndDetach = async (ctx: AgentContext): Promise<void> => {
  if (await slaveStatus(ctx)) {
    await sql(ctx, 'STOP SLAVE IO_THREAD');
    const until = Date.now() + 30_000;
    for (;;) {
      const st = await slaveStatus(ctx);
      const [applied] = await values(ctx, 'SELECT @@gtid_slave_pos');
      // everything received applied, or all the relay log read: a transaction the dead primary
      // sent only in part (received, never complete) is never applied, and was never acknowledged
      if (
        !st ||
        st['Slave_SQL_Running'] !== 'Yes' ||
        (st['Gtid_IO_Pos'] ?? '') === (applied ?? '') ||
        /read all relay log/i.test(st['Slave_SQL_Running_State'] ?? '')
      )
        break;
      if (Date.now() > until) {
        ctx.log.warn('relay log not applied in 30 s: promoting anyway', { io: st['Gtid_IO_Pos'], applied });
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    await sql(ctx, 'STOP SLAVE; RESET SLAVE ALL');
  }
};

/**
 * Replicates from the configured primary, from this server's position: what it applied as a
 * replica (`slave_pos`), or, for a former primary, what it wrote (`current_pos`).
 */
const follow = async (
  ctx: AgentContext,
  s: NodeSettings,
  from: 'slave_pos' | 'current_pos' = 'slave_pos',
): Promise<void> => {
  const p = s.primary!;
  await sql(
    ctx,
    [
      'SET GLOBAL read_only = 1',
      'STOP SLAVE',
      `CHANGE MASTER TO MASTER_HOST=${literal(p.address)}, MASTER_PORT=${p.port}, MASTER_USER=${literal(REPLICATION)}, ` +
        `MASTER_PASSWORD=${literal(s.replication)}, MASTER_USE_GTID=${from}, MASTER_CONNECT_RETRY=1`,
      'START SLAVE',
      '',
    ].join(';\n'),
  );
};

const replicatesFrom = (st: Record<string, string> | undefined, s: NodeSettings): boolean =>
  !!st &&
  st['Master_Host'] === s.primary?.address &&
  st['Master_Port'] === String(s.primary?.port) &&
  st['Slave_IO_Running'] !== 'No' &&
  st['Slave_SQL_Running'] === 'Yes';

/**
 * A copy of the primary's data, from nothing: the server stopped, its data directory set aside
 * (kept, named with the epoch it belonged to) or removed when it held nothing of its own, a fresh
 * one installed, the primary's consistent dump (with its GTID position) loaded without binary
 * logging, then replication from that position.
 */
const copyFrom = async (ctx: AgentContext, s: NodeSettings, stamp: Stamp | undefined): Promise<void> => {
  const p = s.primary!;
  const started = Date.now();
  const attempt = copying(ctx);
  // a fresh node's server holds nothing yet: it takes the copy as it is; anything else starts afresh
  const fresh = !stamp && !existsSync(attempt);
  await writeFile(attempt, String(s.epoch));
  if (!fresh) {
    await ctx.stopWorkload('mariadbd');
    if (stamp) {
      const aside = `${ctx.dataDir}/db.epoch${stamp.epoch}-${Date.now()}`;
      await must(ctx, 'setting the old data aside', 'mv', ['-T', `${ctx.dataDir}/db`, aside]);
      ctx.log.warn('data of an older epoch set aside; copying the primary afresh', {
        aside,
        epoch: stamp.epoch,
      });
    } else await must(ctx, 'removing a half-made copy', 'rm', ['-rf', `${ctx.dataDir}/db`]);
    await startServer(ctx);
  }
  await sql(ctx, 'SET GLOBAL read_only = 1');
  const client = (program: string, host: string, port: number, extra: readonly string[]) =>
    shell([program, '--no-defaults', ...connectArgs(ctx, { host, port }), ...extra]);
  const dump = client('mariadb-dump', p.address, p.port, [
    '--single-transaction',
    '--gtid',
    '--master-data=1',
    '--all-databases',
    '--ignore-database=mysql',
    '--ignore-database=sys',
    '--system=users',
    '--insert-ignore',
    '--routines',
    '--events',
    '--triggers',
  ]);
  const load = client('mariadb', ctx.address, portOf(ctx), ['--init-command=SET SESSION sql_log_bin=0']);
  const r = await ctx.exec('bash', ['-c', `set -o pipefail; ${dump} | ${load}`], {
    env: { MYSQL_PWD: s.admin },
    timeoutMs: 10 * 60_000,
  });
  if (r.code !== 0)
    throw new CpsError('unavailable', `copying ${p.nodeId} to ${ctx.nodeId}: ${r.stderr.trim().slice(-500)}`);
  await sql(ctx, 'FLUSH LOCAL PRIVILEGES');
  await copyExpiries(ctx, p);
  await follow(ctx, s);
  ctx.log.info('copied the primary', { primary: p.nodeId, ms: Date.now() - started });
};

/** The server's variables as the configuration sets them (allow-listed in `set_param`). */
const applyParams = async (ctx: AgentContext, s: NodeSettings): Promise<void> => {
  const sets = Object.entries(s.params).map(([k, v]) => `SET GLOBAL ${k} = ${paramValue(v)}`);
  if (sets.length > 0) await sql(ctx, sets.join(';\n'));
};

/**
 * Makes the running server play what its configuration says, idempotently:
 * - a primary of a newer epoch applies what it received, stops replicating, then takes writes;
 * - a replica of the current epoch replicates from the primary; a node that kept its data through
 *   the election follows the new primary from its position; any other (a new node, a node that was
 *   away, an old primary) copies the primary's data afresh;
 * - standalone (no primary elected yet): read-only, nothing else.
 */
export const apply = async (ctx: AgentContext): Promise<void> => {
  const s = requireSettings(ctx);
  await applyParams(ctx, s);
  const stamp = await readStamp(ctx);
  if (s.role === 'standalone') return;
  if (s.role === 'primary') {
    if (stamp?.epoch !== s.epoch || stamp.role !== 'primary') {
      await drainAndDetach(ctx);
      await takeOverExpiries(ctx);
      await writeStamp(ctx, { epoch: s.epoch, role: 'primary' });
    }
    await sql(
      ctx,
      `SET GLOBAL rpl_semi_sync_master_enabled = ${s.semiSync ? 'ON' : 'OFF'};\nSET GLOBAL read_only = 0;\n`,
    );
    return;
  }
  // a replica: first of all, no more writes here
  await sql(ctx, 'SET GLOBAL read_only = 1; SET GLOBAL rpl_semi_sync_master_enabled = OFF');
  if (stamp?.epoch === s.epoch && stamp.role === 'replica') {
    if (!replicatesFrom(await slaveStatus(ctx), s)) await follow(ctx, s);
    return;
  }
  if (stamp && stamp.epoch < s.epoch && s.members.includes(ctx.nodeId))
    await follow(ctx, s, stamp.role === 'primary' ? 'current_pos' : 'slave_pos');
  else await copyFrom(ctx, s, stamp);
  await writeStamp(ctx, { epoch: s.epoch, role: 'replica' });
  await rm(copying(ctx), { force: true });
};

const EXPIRIES =
  "FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'mysql' AND EVENT_NAME LIKE 'cps\\_tmp\\_%\\_expiry'";

/**
 * The copy leaves the `mysql` schema out, and the expiries of temporary users with it: they are
 * made here as replication would have made them (disabled on a replica), not binary-logged. One
 * made on the primary after the copy arrives by replication too, and is skipped (IF NOT EXISTS).
 */
const copyExpiries = async (ctx: AgentContext, p: { address: string; port: number }): Promise<void> => {
  const rows = await sql(ctx, `SELECT EVENT_NAME, TIMESTAMPDIFF(SECOND, NOW(), EXECUTE_AT) ${EXPIRIES}`, {
    host: p.address,
    port: p.port,
  });
  const statements = rows.map((r) => {
    const [event, left] = r.split('\t') as [string, string];
    const user = event.replace(/_expiry$/, '');
    return (
      `CREATE EVENT IF NOT EXISTS mysql.${ident(event)} ON SCHEDULE AT CURRENT_TIMESTAMP + INTERVAL ` +
      `${Math.max(1, Number(left) || 0)} SECOND ON COMPLETION NOT PRESERVE DISABLE ON SLAVE ` +
      `DO DROP USER IF EXISTS ${literal(user)}@'%'`
    );
  });
  if (statements.length > 0)
    await sql(ctx, statements.join(';\n'), { initCommand: 'SET SESSION sql_log_bin=0' });
};

/**
 * The expiries of temporary users (events on the primary) came here through replication, disabled
 * (MariaDB runs events on the primary only): a new primary enables those still to come and drops
 * the users whose time passed.
 */
const takeOverExpiries = async (ctx: AgentContext): Promise<void> => {
  const rows = await sql(
    ctx,
    `SELECT EVENT_NAME, EXECUTE_AT < NOW() ${EXPIRIES} AND STATUS = 'SLAVESIDE_DISABLED'`,
  );
  const statements = rows.flatMap((r) => {
    const [event, due] = r.split('\t') as [string, string];
    const user = event.replace(/_expiry$/, '');
    return due === '1'
      ? [`DROP USER IF EXISTS ${literal(user)}@'%'`, `DROP EVENT IF EXISTS mysql.${ident(event)}`]
      : // enabling is this server's own business: a replica without the event would stop on it
        [
          'SET SESSION sql_log_bin = 0',
          `ALTER EVENT mysql.${ident(event)} ENABLE`,
          'SET SESSION sql_log_bin = 1',
        ];
  });
  if (statements.length > 0) await sql(ctx, statements.join(';\n'));
};

/** Read-only now, and the position reached: what a planned switch waits for on the new primary. */
export const fence = async (ctx: AgentContext): Promise<string> => {
  await sql(ctx, 'SET GLOBAL read_only = 1; FLUSH LOCAL TABLES');
  const [binlog] = await values(ctx, 'SELECT @@gtid_binlog_pos');
  return binlog ?? '';
};

/** Waits until this replica applied `gtid` (MASTER_GTID_WAIT): false after `seconds`. */
export const waitFor = async (ctx: AgentContext, gtid: string, seconds: number): Promise<boolean> => {
  const [r] = await values(ctx, `SELECT MASTER_GTID_WAIT(${literal(gtid)}, ${seconds})`);
  return r === '0';
};

/**
 * Loads `dump` into `database` all at once or not at all: into a fresh staging database, as an
 * account that may touch nothing else (a dump that switches databases or grants fails), then one
 * `RENAME TABLE` moves the database's tables out and the staged ones in. A failing dump leaves the
 * database as it was, and the error names the line.
 */
export const loadDump = async (
  ctx: AgentContext,
  database: string,
  dump: string,
): Promise<{ tables: number }> => {
  const tag = randomBytes(6).toString('hex');
  const stage = `cps_stage_${tag}`;
  const old = `cps_old_${tag}`;
  const loader = `cps_ld_${tag}`;
  const password = randomBytes(24).toString('base64url');
  await sql(
    ctx,
    [
      `CREATE DATABASE ${ident(stage)}`,
      `CREATE USER ${literal(loader)}@'%' IDENTIFIED BY ${literal(password)}`,
      `GRANT ALL PRIVILEGES ON ${ident(stage)}.* TO ${literal(loader)}@'%'`,
      '',
    ].join(';\n'),
  );
  const cleanup = () =>
    sql(
      ctx,
      `DROP DATABASE IF EXISTS ${ident(stage)}; DROP DATABASE IF EXISTS ${ident(old)}; DROP USER IF EXISTS ${literal(loader)}@'%'`,
    );
  try {
    const r = await ctx.exec(
      'mariadb',
      ['--no-defaults', ...connectArgs(ctx, { user: loader }), `--database=${stage}`, '--batch'],
      { env: { MYSQL_PWD: password }, input: dump, timeoutMs: 10 * 60_000 },
    );
    if (r.code !== 0) {
      const line = errorLine(r.stderr);
      throw new ValidationError(`the dump failed${line ? ` at line ${line}` : ''}: nothing was loaded`, [
        {
          path: '$.sql',
          code: 'dump_error',
          message: `${line ? `line ${line}: ` : ''}${r.stderr
            .trim()
            .replace(/^ERROR \d+ \([0-9A-Z]+\) at line \d+: /, '')
            .slice(0, 300)}`,
        },
      ]);
    }
    const staged = await sql(
      ctx,
      `SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${literal(stage)}`,
    );
    const views = staged.filter((l) => l.split('\t')[1] !== 'BASE TABLE');
    if (views.length > 0)
      throw new ValidationError('the dump creates views: not supported by load_dump yet', [
        {
          path: '$.sql',
          code: 'dump_unsupported',
          message: `views: ${views.map((v) => v.split('\t')[0]).join(', ')}`,
        },
      ]);
    const current = await sql(
      ctx,
      `SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${literal(database)}`,
    );
    const renames = [
      ...current.map((t) => `${ident(database)}.${ident(t)} TO ${ident(old)}.${ident(t)}`),
      ...staged
        .map((l) => l.split('\t')[0]!)
        .map((t) => `${ident(stage)}.${ident(t)} TO ${ident(database)}.${ident(t)}`),
    ];
    await sql(
      ctx,
      [
        `CREATE DATABASE IF NOT EXISTS ${ident(database)}`,
        `CREATE DATABASE ${ident(old)}`,
        ...(renames.length > 0 ? [`RENAME TABLE ${renames.join(', ')}`] : []),
        '',
      ].join(';\n'),
    );
    return { tables: staged.length };
  } finally {
    await cleanup().catch((e: unknown) => ctx.log.warn('cleaning up a load failed', { error: String(e) }));
  }
};

/** A consistent dump of the users' databases (all of them, or `database`), as SQL text. */
export const dumpDatabases = async (
  ctx: AgentContext,
  database: string | undefined,
  maxBytes: number,
): Promise<string> => {
  const s = requireSettings(ctx);
  const r = await ctx.exec(
    'mariadb-dump',
    [
      '--no-defaults',
      ...connectArgs(ctx),
      '--single-transaction',
      '--routines',
      '--triggers',
      '--skip-dump-date',
      ...(database
        ? ['--databases', database]
        : ['--all-databases', '--ignore-database=mysql', '--ignore-database=sys']),
    ],
    { env: { MYSQL_PWD: s.admin }, timeoutMs: 5 * 60_000, keepBytes: maxBytes + 1 },
  );
  if (r.code !== 0)
    throw new CpsError('unavailable', `mariadb-dump on ${ctx.nodeId}: ${r.stderr.trim().slice(-300)}`);
  if (Buffer.byteLength(r.stdout) > maxBytes)
    throw new CpsError(
      'payload_too_large',
      `the dump is larger than ${maxBytes} bytes: take it with a client (cps mysql connect)`,
    );
  return r.stdout;
};

/** Whether this server has the database `name`. */
export const databaseExists = async (ctx: AgentContext, name: string): Promise<boolean> =>
  (
    await values(ctx, `SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ${literal(name)}`)
  )[0] !== '0';

/** Whether this server has an account named `user` (whatever its host). */
export const userExists = async (ctx: AgentContext, user: string): Promise<boolean> =>
  (await values(ctx, `SELECT COUNT(*) FROM mysql.global_priv WHERE User = ${literal(user)}`))[0] !== '0';

/** Creates (or updates) a user with the privileges the service's users have on every database. */
export const ensureUser = async (ctx: AgentContext, user: string, password: string): Promise<void> => {
  await sql(
    ctx,
    [
      `CREATE USER IF NOT EXISTS ${literal(user)}@'%' IDENTIFIED BY ${literal(password)}`,
      `GRANT ${USER_GLOBAL_PRIVILEGES} ON *.* TO ${literal(user)}@'%' WITH GRANT OPTION`,
      '',
    ].join(';\n'),
  );
};
