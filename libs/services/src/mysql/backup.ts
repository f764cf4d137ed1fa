import { randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { CpsError, ValidationError } from '@cps/core';
import type { AgentContext, ManagerContext, NodeView } from '../contract/context.js';
import { literal } from './inputs.js';
import {
  connectArgs,
  dataId,
  dataPath,
  must,
  newDataId,
  requireSettings,
  shell,
  sql,
  startServer,
  values,
} from './server.js';

/**
 * The agent's side of backups (docs/mysql.md, "Backups"): MariaDB's own tools do the work. A full
 * backup is `mariadb-backup --backup --stream`, gzipped into the node's spool; the binary logs are
 * copied as they are; a restore extracts and prepares a backup beside the live data, swaps the two
 * (the old data is kept aside, never deleted), and for a point in time replays the archived binary
 * logs with `mariadb-binlog` from the backup's GTID position up to the time asked.
 */

const HOUR = 60 * 60_000;

export const BINLOG_NAME = /^binlog\.\d{6}$/;

const client = (ctx: AgentContext) => shell(['mariadb', '--no-defaults', ...connectArgs(ctx)]);

const run = async (
  ctx: AgentContext,
  what: string,
  script: string,
  o: Parameters<AgentContext['exec']>[2],
) => {
  const r = await ctx.exec('bash', ['-c', `set -o pipefail; ${script}`], { timeoutMs: HOUR, ...o });
  if (r.code !== 0)
    throw new CpsError('unavailable', `${what} on ${ctx.nodeId}: ${r.stderr.trim().slice(-500)}`);
  return r;
};

export const BackupTaken = z.object({ gtid: z.string(), dataId: z.string() });

/** A full backup of the running server into spool file `file`, with the GTID position it holds. */
export const takeBackup = async (ctx: AgentContext, file: string): Promise<z.infer<typeof BackupTaken>> => {
  const s = requireSettings(ctx);
  const r = await run(
    ctx,
    'mariadb-backup',
    `${shell([
      'mariadb-backup',
      '--no-defaults',
      '--backup',
      '--stream=mbstream',
      `--target-dir=${dataPath(ctx, 'backup.tmp')}`,
      `--datadir=${dataPath(ctx)}`,
      ...connectArgs(ctx),
    ])} | gzip -1`,
    { env: { MYSQL_PWD: s.admin }, stdoutTo: file },
  );
  const m = /GTID of the last change '([^']*)'/.exec(r.stderr);
  if (!m) throw new CpsError('internal', `mariadb-backup on ${ctx.nodeId} named no GTID position`);
  return { gtid: m[1]!, dataId: await dataId(ctx) };
};

/** Closes the current binary log (FLUSH) and answers every closed one, oldest first. */
export const closedBinlogs = async (ctx: AgentContext): Promise<{ dataId: string; files: string[] }> => {
  await sql(ctx, 'FLUSH BINARY LOGS');
  const names = (await sql(ctx, 'SHOW BINARY LOGS')).map((l) => l.split('\t')[0]!);
  return { dataId: await dataId(ctx), files: names.slice(0, -1).filter((n) => BINLOG_NAME.test(n)) };
};

/** A copy of the closed binary log `name` in spool file `file`. */
export const takeBinlog = async (ctx: AgentContext, name: string, file: string): Promise<void> => {
  if (!BINLOG_NAME.test(name)) throw new CpsError('validation', `not a binary log: ${name}`);
  await run(ctx, `copying ${name}`, shell(['cat', `${ctx.dataDir}/db/${name}`]), { stdoutTo: file });
};

/** Present while a restore swaps the data (names where the live data went). */
const restoring = (ctx: AgentContext) => join(ctx.stateDir, 'mysql.restoring');

/**
 * At the agent's start: a restore killed during its swap or its replay is undone (the live data it
 * replaced is put back; what it had moved in is set aside), as if it never ran: its caller saw it
 * fail, and nothing recorded it.
 */
export const recoverRestore = async (ctx: AgentContext): Promise<void> => {
  let marker: { replaced: string };
  try {
    marker = JSON.parse(await readFile(restoring(ctx), 'utf8')) as { replaced: string };
  } catch {
    return;
  }
  const has = async (dir: string) => (await ctx.exec('test', ['-d', dir])).code === 0;
  if (await has(marker.replaced)) {
    if (await has(`${ctx.dataDir}/db`))
      await must(ctx, 'setting an interrupted restore aside', 'mv', [
        '-T',
        `${ctx.dataDir}/db`,
        `${ctx.dataDir}/db.failed-restore-${Date.now()}`,
      ]);
    await must(ctx, 'putting the replaced data back', 'mv', ['-T', marker.replaced, `${ctx.dataDir}/db`]);
    await newDataId(ctx);
    ctx.log.warn('an interrupted restore was undone', { data: marker.replaced });
  }
  await rm(restoring(ctx), { force: true });
};

export const RestoreArgs = z.object({
  /** The backup, in this node's spool. */
  file: z.string(),
  /** The GTID position the backup holds. */
  gtid: z.string().max(4_096),
  /** Binary logs in this node's spool, in order, replayed after the backup up to `stopAt`. */
  binlogs: z.array(z.string()).max(10_000),
  /** UTC, `YYYY-MM-DD HH:MM:SS`. */
  stopAt: z
    .string()
    .regex(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/)
    .optional(),
});

/**
 * Replaces the server's data with a backup (and the binary logs after it, up to `stopAt`): the
 * backup is extracted and prepared beside the live data, the server stopped, the live data moved
 * aside (answered as `replaced`), the backup moved in, the server started read-only, and the logs
 * replayed. The server's GTID state continues from the backup's position.
 */
export const restoreBackup = async (
  ctx: AgentContext,
  a: z.infer<typeof RestoreArgs>,
): Promise<{ replaced: string; gtid: string }> => {
  const s = requireSettings(ctx);
  const staged = `${ctx.dataDir}/db.restore`;
  const pitr = `${ctx.dataDir}/pitr`;
  const replay = shell([
    'mariadb-binlog',
    '--no-defaults',
    ...(a.gtid ? [`--start-position=${a.gtid}`] : []),
    ...(a.stopAt ? [`--stop-datetime=${a.stopAt}`] : []),
    ...a.binlogs.map((f) => `${pitr}/${f}`),
  ]);
  try {
    await must(ctx, 'cleaning', 'rm', ['-rf', staged, pitr]);
    await must(ctx, 'mkdir', 'mkdir', ['-p', staged, pitr]);
    for (const f of a.binlogs)
      await run(ctx, `staging ${f}`, `cat > ${shell([`${pitr}/${f}`])}`, { stdinFrom: f });
    // the logs must continue the backup (mariadb-binlog checks the GTID states) before anything changes
    if (a.binlogs.length > 0) {
      const dry = await ctx.exec('bash', ['-c', `${replay} > /dev/null`], {
        env: { TZ: 'UTC' },
        timeoutMs: HOUR,
      });
      if (dry.code !== 0)
        throw new ValidationError(
          `these binary logs do not continue the backup: ${dry.stderr.trim().slice(-300)}`,
          [{ path: '$.at', code: 'not_covered', message: 'no archived binary logs continue the backup' }],
        );
    }
    await run(ctx, 'extracting the backup', `gunzip | ${shell(['mbstream', '-x', '-C', staged])}`, {
      stdinFrom: a.file,
    });
    await run(
      ctx,
      'preparing the backup',
      shell(['mariadb-backup', '--no-defaults', '--prepare', `--target-dir=${dataPath(ctx, 'db.restore')}`]),
      {},
    );
  } catch (e) {
    await must(ctx, 'cleaning', 'rm', ['-rf', staged, pitr]);
    throw e;
  } finally {
    for (const f of [a.file, ...a.binlogs]) ctx.spool.remove(f);
  }
  const replaced = `${ctx.dataDir}/db.before-restore-${Date.now()}`;
  await ctx.stopWorkload('mariadbd');
  // an agent killed from here on finds the marker at its next start (see recoverRestore)
  await writeFile(restoring(ctx), JSON.stringify({ replaced }));
  await must(ctx, 'setting the live data aside', 'mv', ['-T', `${ctx.dataDir}/db`, replaced]);
  await must(ctx, 'moving the backup in', 'mv', ['-T', staged, `${ctx.dataDir}/db`]);
  try {
    await newDataId(ctx);
    await startServer(ctx);
    // the restored server's binary log starts empty: its GTID state continues from the backup's
    await sql(
      ctx,
      a.gtid
        ? `RESET MASTER; SET GLOBAL gtid_binlog_state = ${literal(a.gtid)}; SET GLOBAL gtid_slave_pos = ${literal(a.gtid)}`
        : 'RESET MASTER',
    );
    if (a.binlogs.length > 0)
      await run(ctx, 'replaying the binary logs', `${replay} | ${client(ctx)}`, {
        env: { MYSQL_PWD: s.admin, TZ: 'UTC' },
      });
  } catch (e) {
    ctx.log.error('restore failed after the swap: the replaced data is put back', { error: String(e) });
    await ctx.stopWorkload('mariadbd');
    await must(ctx, 'setting the failed restore aside', 'mv', [
      '-T',
      `${ctx.dataDir}/db`,
      `${ctx.dataDir}/db.failed-restore-${Date.now()}`,
    ]);
    await must(ctx, 'putting the replaced data back', 'mv', ['-T', replaced, `${ctx.dataDir}/db`]);
    await rm(restoring(ctx), { force: true });
    await newDataId(ctx);
    await startServer(ctx);
    throw e;
  }
  await rm(restoring(ctx), { force: true });
  await must(ctx, 'cleaning', 'rm', ['-rf', pitr]);
  const [gtid] = await values(ctx, 'SELECT @@gtid_binlog_pos');
  return { replaced, gtid: gtid ?? '' };
};

// ---- the manager's side

/** When to back up, and what to keep (`set_backup_schedule`, or the manifest's `Backups`). */
export const BackupScheduleSchema = z.object({
  every_minutes: z.number().int().min(5).max(10_080),
  keep: z.number().int().min(1).max(1_000).default(7),
  max_age_days: z.number().int().min(1).max(3_650).optional(),
});
export type BackupSchedule = z.infer<typeof BackupScheduleSchema>;

/** What the object of a backup says of it (its description). */
const BackupMeta = z.object({
  kind: z.literal('backup'),
  at: z.string(),
  gtid: z.string(),
  nodeId: z.string(),
  dataId: z.string(),
});
/** What the object of an archived binary log says of it: `closed` bounds its last event's time. */
const BinlogMeta = z.object({
  kind: z.literal('binlog'),
  closed: z.string(),
  nodeId: z.string(),
  dataId: z.string(),
  file: z.string(),
});

export const BackupView = z.object({
  id: z.string(),
  at: z.string(),
  size: z.number(),
  sha256: z.string(),
  gtid: z.string(),
  nodeId: z.string(),
});
export type BackupView = z.infer<typeof BackupView>;
interface BinlogView extends z.infer<typeof BinlogMeta> {
  readonly name: string;
}

const parse = <T>(schema: z.ZodType<T>, description: string | undefined): T | undefined => {
  try {
    const r = schema.safeParse(JSON.parse(description ?? ''));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
};

/** The stored backups (oldest first) and archived binary logs. */
export const stored = async (
  ctx: ManagerContext,
): Promise<{ backups: BackupView[]; binlogs: BinlogView[] }> => {
  const all = await ctx.objects.list();
  return {
    backups: all.flatMap((o) => {
      const m = parse(BackupMeta, o.description);
      return m
        ? [{ id: o.name, at: m.at, size: o.size, sha256: o.digest, gtid: m.gtid, nodeId: m.nodeId }]
        : [];
    }),
    binlogs: all.flatMap((o) => {
      const m = parse(BinlogMeta, o.description);
      return m ? [{ name: o.name, ...m }] : [];
    }),
  };
};

/** Backups, archiving and restores of one service run one at a time. */
const queues = new Map<string, Promise<unknown>>();
export const exclusively = <T>(ctx: ManagerContext, work: () => Promise<T>): Promise<T> => {
  const next = (queues.get(ctx.serviceId) ?? Promise.resolve()).catch(() => undefined).then(work);
  queues.set(ctx.serviceId, next);
  return next;
};

const compact = (d: Date) =>
  d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'z')
    .toLowerCase();

/** Copies every closed binary log of `node` not archived yet to the service's objects. */
export const archiveBinlogs = async (ctx: ManagerContext, node: NodeView): Promise<number> => {
  const closed = (await ctx.callAgent(node.nodeId, 'binlogs_closed', {}, { timeoutMs: 30_000 })) as {
    dataId: string;
    files: string[];
  };
  const at = new Date().toISOString();
  const have = new Set((await ctx.objects.list()).map((o) => o.name));
  let archived = 0;
  for (const file of closed.files) {
    const name = `l-${closed.dataId}-${file.slice(file.indexOf('.') + 1)}`;
    if (have.has(name)) continue;
    await ctx.callAgent(node.nodeId, 'binlog_take', { name: file, file: `${name}.bin` }, { timeoutMs: HOUR });
    const meta: z.infer<typeof BinlogMeta> = {
      kind: 'binlog',
      closed: at,
      nodeId: node.nodeId,
      dataId: closed.dataId,
      file,
    };
    await ctx.objects.fromNode(node.nodeId, `${name}.bin`, name, { description: JSON.stringify(meta) });
    archived++;
  }
  return archived;
};

/** A full backup of `primary` now, then its binary logs archived and the retention applied. */
export const backupNow = async (
  ctx: ManagerContext,
  primary: NodeView,
  schedule: BackupSchedule | undefined,
): Promise<BackupView> => {
  const at = new Date();
  const id = `b-${compact(at)}-${randomBytes(2).toString('hex')}`;
  const file = `${id}.mbs.gz`;
  const taken = BackupTaken.parse(
    await ctx.callAgent(primary.nodeId, 'backup_take', { file }, { timeoutMs: HOUR }),
  );
  const meta: z.infer<typeof BackupMeta> = {
    kind: 'backup',
    at: at.toISOString(),
    gtid: taken.gtid,
    nodeId: primary.nodeId,
    dataId: taken.dataId,
  };
  const tookMs = Date.now() - at.getTime();
  const o = await ctx.objects.fromNode(primary.nodeId, file, id, { description: JSON.stringify(meta) });
  const storedMs = Date.now() - at.getTime() - tookMs;
  const logs = await archiveBinlogs(ctx, primary);
  ctx.log.info('backup stored', {
    id,
    bytes: o.size,
    gtid: taken.gtid,
    backupMs: tookMs,
    storeMs: storedMs,
    binlogs: logs,
    binlogsMs: Date.now() - at.getTime() - tookMs - storedMs,
  });
  if (schedule) await prune(ctx, schedule);
  return { id, at: meta.at, size: o.size, sha256: o.digest, gtid: taken.gtid, nodeId: primary.nodeId };
};

/**
 * Keeps the newest `keep` backups, none older than `max_age_days` but the newest, and the binary
 * logs closed after the oldest backup kept (those before it restore nothing).
 */
export const prune = async (ctx: ManagerContext, schedule: BackupSchedule): Promise<string[]> => {
  const { backups, binlogs } = await stored(ctx);
  const cutoff = schedule.max_age_days ? Date.now() - schedule.max_age_days * 24 * HOUR : -Infinity;
  const kept = backups.filter(
    (b, i) => i === backups.length - 1 || (i >= backups.length - schedule.keep && Date.parse(b.at) >= cutoff),
  );
  const gone = backups.filter((b) => !kept.includes(b)).map((b) => b.id);
  const oldest = kept[0]?.at;
  if (oldest) gone.push(...binlogs.filter((l) => l.closed < oldest).map((l) => l.name));
  for (const name of gone) await ctx.objects.delete(name);
  if (gone.length > 0) ctx.log.info('backups pruned', { deleted: gone });
  return gone;
};

/** `at` as mariadb-binlog's `--stop-datetime` (UTC, to the second). */
const stopAt = (at: Date) => at.toISOString().slice(0, 19).replace('T', ' ');

/**
 * What a restore replays: the backup asked for, or the newest one taken at or before `at`, and for
 * `at` the lineages of binary logs archived until at least `at`, the most recent first (the agent
 * checks which one continues the backup before it touches anything).
 */
export const restorePlan = async (
  ctx: ManagerContext,
  a: { backup?: string; at?: Date },
): Promise<{ backup: BackupView; lineages: string[][] }> => {
  const { backups, binlogs } = await stored(ctx);
  const backup = a.backup
    ? backups.find((b) => b.id === a.backup)
    : backups.filter((b) => Date.parse(b.at) <= a.at!.getTime()).at(-1);
  if (!backup)
    throw a.backup
      ? new ValidationError(`no backup ${a.backup}`, [
          { path: '$.backup', code: 'not_found', message: 'no such backup (see list_backups)' },
        ])
      : new ValidationError(`no backup was taken at or before ${a.at!.toISOString()}`, [
          { path: '$.at', code: 'not_covered', message: 'before the oldest backup' },
        ]);
  if (!a.at) return { backup, lineages: [[]] };
  if (a.backup && Date.parse(backup.at) > a.at.getTime())
    throw new ValidationError(`backup ${backup.id} was taken after ${a.at.toISOString()}`, [
      { path: '$.at', code: 'not_covered', message: 'before the backup asked for' },
    ]);
  const byData = new Map<string, BinlogView[]>();
  for (const l of binlogs) byData.set(l.dataId, [...(byData.get(l.dataId) ?? []), l]);
  const lineages = [...byData.values()]
    .map((ls) => ls.sort((x, y) => x.file.localeCompare(y.file)))
    .filter((ls) => ls.some((l) => Date.parse(l.closed) >= a.at!.getTime()))
    .sort((x, y) => y.at(-1)!.closed.localeCompare(x.at(-1)!.closed))
    .map((ls) => ls.map((l) => l.name));
  if (lineages.length === 0)
    throw new ValidationError(`no binary logs were archived until ${a.at.toISOString()}`, [
      { path: '$.at', code: 'not_covered', message: 'later than the archived binary logs' },
    ]);
  return { backup, lineages };
};

/**
 * Restores `plan` on `primary`: the backup and the binary logs of one lineage are copied to its
 * spool, then the agent swaps the data (see `restoreBackup`); a lineage that does not continue the
 * backup is refused there before anything changed, and the next one tried.
 */
export const restoreOn = async (
  ctx: ManagerContext,
  primary: NodeView,
  plan: { backup: BackupView; lineages: string[][] },
  at: Date | undefined,
): Promise<{ replaced: string; gtid: string }> => {
  let last: unknown;
  for (const lineage of plan.lineages) {
    const file = `${plan.backup.id}.mbs.gz`;
    await ctx.objects.toNode(plan.backup.id, primary.nodeId, file);
    for (const name of lineage) await ctx.objects.toNode(name, primary.nodeId, `${name}.bin`);
    try {
      return (await ctx.callAgent(
        primary.nodeId,
        'restore',
        {
          file,
          gtid: plan.backup.gtid,
          binlogs: lineage.map((n) => `${n}.bin`),
          ...(at ? { stopAt: stopAt(at) } : {}),
        },
        { timeoutMs: HOUR },
      )) as { replaced: string; gtid: string };
    } catch (e) {
      if (!(e instanceof CpsError) || !e.issues.some((i) => i.code === 'not_covered')) throw e;
      last = e;
    }
  }
  throw last;
};
