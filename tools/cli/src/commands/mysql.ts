import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Command } from 'commander';
import { CpsError } from '@cps/core';
import { json, readUserFile, table, usage } from '../output.js';
import { callMethod, director, examples, needApp, type Globals } from './shared.js';

/** The largest dump `cps mysql load` sends, in bytes of the file: the service's limit too. */
export const MAX_DUMP_BYTES = 512 * 1024;

/** The lifetime of a temporary user, in minutes: its default and bounds. */
export const TEMPORARY_USER_MINUTES = { default: 60, min: 1, max: 1440 } as const;

/** The MariaDB client `connect --exec` runs, and the Debian package that has it. */
const CLIENT = 'mariadb';
const CLIENT_PACKAGE = 'mariadb-client';

/** What the manager's `temporary_user` answers. */
export interface TemporaryUser {
  readonly user: string;
  readonly password: string;
  readonly host: string;
  readonly port: number;
  readonly expiresAt: string;
}

/** `s` as one shell word, always in single quotes (a `'` inside becomes `'\''`). */
export const singleQuote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;

/** `s` as one shell word: as it is when no shell reads anything special in it, else single-quoted. */
export const shellQuote = (s: string): string => (/^[A-Za-z0-9_./:@%+,=-]+$/.test(s) ? s : singleQuote(s));

/**
 * The shell command that connects to the service with a temporary user: the password in the
 * client's environment (`MYSQL_PWD`), never in its arguments.
 */
export const connectCommand = (u: TemporaryUser): string =>
  `MYSQL_PWD=${singleQuote(u.password)} ${CLIENT} -h ${shellQuote(u.host)} -P ${u.port} -u ${shellQuote(u.user)}`;

/** `--minutes`: an integer within the bounds, or a validation error naming the flag. */
export const parseMinutes = (value: string): number => {
  const { min, max } = TEMPORARY_USER_MINUTES;
  const n = /^\s*\d{1,5}\s*$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= max))
    throw new CpsError('validation', `--minutes needs a number of minutes, got ${JSON.stringify(value)}`, [
      { path: '--minutes', code: 'invalid_minutes', message: `an integer from ${min} to ${max}` },
    ]);
  return n;
};

/** Refuses a dump larger than the service takes, naming the file, its size and the limit. */
export const checkDumpSize = (file: string, bytes: number): void => {
  if (bytes <= MAX_DUMP_BYTES) return;
  const limit = `${MAX_DUMP_BYTES / 1024} KiB (${MAX_DUMP_BYTES} bytes)`;
  throw new CpsError(
    'payload_too_large',
    `${file} is ${bytes} bytes: a dump loaded by \`cps mysql load\` may be at most ${limit}`,
    [{ path: file, code: 'too_large', message: `at most ${limit}` }],
  );
};

/** A dump file's text: refused before it is read whole when too large, and when not UTF-8. */
export const readDump = (file: string): string => {
  // the size on disk first: a huge file is refused without reading it (a file that cannot be
  // stat'ed is reported by readUserFile, plainly)
  let size = 0;
  try {
    size = statSync(file).size;
  } catch {
    // reported below
  }
  checkDumpSize(file, size);
  const bytes = readUserFile(file);
  // again on what was read: a file that grew meanwhile, or one without a size (a pipe)
  checkDumpSize(file, bytes.length);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new CpsError(
      'validation',
      `${file} is not UTF-8 text (dump it with --default-character-set=utf8mb4)`,
      [{ path: file, code: 'invalid_encoding', message: 'UTF-8 text' }],
    );
  }
};

/** The service answered something else than its method promises: said plainly, not used. */
const unexpected = (method: string, what: string): CpsError =>
  new CpsError('internal', `the mysql service answered ${method} unexpectedly: ${what}`);

const record = (method: string, v: unknown): Record<string, unknown> => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw unexpected(method, 'not an object');
  return v as Record<string, unknown>;
};

const text = (method: string, r: Record<string, unknown>, key: string): string => {
  const v = r[key];
  if (typeof v !== 'string') throw unexpected(method, `${key} is not a string`);
  return v;
};

/** `temporary_user`'s answer, checked: nothing is printed or run from anything else. */
export const asTemporaryUser = (v: unknown): TemporaryUser => {
  const m = 'temporary_user';
  const r = record(m, v);
  const port = r['port'];
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535)
    throw unexpected(m, 'port is not a port number');
  const u = {
    user: text(m, r, 'user'),
    password: text(m, r, 'password'),
    host: text(m, r, 'host'),
    port,
    expiresAt: text(m, r, 'expiresAt'),
  };
  if (!u.user || !u.host) throw unexpected(m, 'no user or no host');
  return u;
};

/** When a credential expires, for a person: the time, and how long until then when it can tell. */
export const expiryLine = (u: TemporaryUser, now = Date.now()): string => {
  const at = Date.parse(u.expiresAt);
  const left = Number.isNaN(at) ? '' : ` (in ${Math.max(0, Math.round((at - now) / 60_000))} minutes)`;
  return `the credential of ${u.user} expires at ${u.expiresAt}${left}`;
};

/** The executable `name` in the directories of `PATH`, or undefined (empty entries are skipped). */
export const findOnPath = (name: string, path = process.env['PATH'] ?? ''): string | undefined => {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, name);
    try {
      accessSync(file, fsConstants.X_OK);
      if (statSync(file).isFile()) return file;
    } catch {
      // not here
    }
  }
  return undefined;
};

const clientMissing = (): CpsError =>
  new CpsError(
    'not_found',
    `the MariaDB client (${CLIENT}) is not installed: install the Debian package ${CLIENT_PACKAGE} (apt-get install ${CLIENT_PACKAGE}), or run without --exec to print the command`,
  );

/**
 * Runs the MariaDB client against the service, its terminal shared, the password in its
 * environment only; answers its exit code (128 + the signal's number when a signal ended it).
 * Interrupts typed meanwhile are the client's (they stop its query), not this process's.
 */
export const runClient = (file: string, u: TemporaryUser): Promise<number> =>
  new Promise((resolve, reject) => {
    const ignore = (): void => undefined;
    process.on('SIGINT', ignore);
    process.on('SIGQUIT', ignore);
    const done = (): void => {
      process.off('SIGINT', ignore);
      process.off('SIGQUIT', ignore);
    };
    const child = spawn(file, ['-h', u.host, '-P', String(u.port), '-u', u.user], {
      stdio: 'inherit',
      env: { ...process.env, MYSQL_PWD: u.password },
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      done();
      reject(e.code === 'ENOENT' ? clientMissing() : e);
    });
    child.on('close', (code, signal) => {
      done();
      resolve(code ?? (signal ? 128 + (osConstants.signals[signal] ?? 0) : 1));
    });
  });

/**
 * `--at`: a moment JavaScript reads (ISO 8601, or a date and time of this machine's time zone),
 * as ISO 8601 UTC; a validation error naming the flag otherwise.
 */
export const parseMoment = (value: string): string => {
  const t = Date.parse(value);
  if (Number.isNaN(t))
    throw new CpsError('validation', `--at needs a date and time, got ${JSON.stringify(value)}`, [
      { path: '--at', code: 'invalid_moment', message: 'e.g. 2026-12-06T18:30:00Z or "2026-12-06 19:30"' },
    ]);
  return new Date(t).toISOString();
};

/** `cps mysql …`: methods of a mysql service's manager, through the director as `cps service call`. */
export const mysqlCommands = (program: Command, g: Globals): void => {
  const mysql = examples(
    program
      .command('mysql')
      .description('a mysql service: connect with a temporary user, dump, load (give --app)'),
    [
      'cps mysql connect db --app shop',
      'cps mysql dump db --app shop > db.sql',
      'cps mysql load db db.sql --app shop --database shop',
      'cps mysql backups db --app shop',
      'cps mysql restore db --app shop --at 2026-12-06T18:30:00Z --yes',
    ],
  );

  examples(mysql.command('backup <svc>'), ['cps mysql backup db --app shop'])
    .description('a full backup of the service now, kept in the platform object store')
    .option('--app <app>', 'application')
    .action(async (svc: string, o: { app?: string }) => {
      const app = needApp(o);
      if (!g().json) console.error('backing up...');
      const b = record('backup', await callMethod(director(g), app, svc, 'backup', {}));
      if (g().json) return json(b);
      console.log(`backup ${text('backup', b, 'id')}: ${String(b['size'])} bytes, GTID ${String(b['gtid'])}`);
    });

  examples(mysql.command('backups <svc>'), [
    'cps mysql backups db --app shop',
    'cps --json mysql backups db --app shop',
  ])
    .description('the stored backups, and until when a point-in-time restore can reach')
    .option('--app <app>', 'application')
    .action(async (svc: string, o: { app?: string }) => {
      const app = needApp(o);
      const r = record('list_backups', await callMethod(director(g), app, svc, 'list_backups', {}));
      if (g().json) return json(r);
      const backups = r['backups'];
      if (!Array.isArray(backups)) throw unexpected('list_backups', 'backups is not a list');
      if (backups.length === 0) console.log('no backups yet: cps mysql backup SVC --app APP takes one');
      else table(backups as Record<string, unknown>[], ['id', 'at', 'size', 'gtid', 'nodeId']);
      const logs = r['binlogs'] as { count?: number; until?: string } | undefined;
      if (logs?.until)
        console.error(
          `point-in-time restores reach until ${logs.until} (${logs.count ?? 0} binary logs archived)`,
        );
      const schedule = r['schedule'] as Record<string, unknown> | undefined;
      console.error(
        schedule
          ? `schedule: every ${String(schedule['every_minutes'])} minutes, keeping ${String(schedule['keep'])}`
          : 'no schedule (cps service call ... set_backup_schedule, or Backups in the manifest)',
      );
    });

  examples(mysql.command('restore <svc>'), [
    'cps mysql restore db --app shop --backup b-20261206t183000z-1a2b --yes',
    'cps mysql restore db --app shop --at 2026-12-06T18:30:00Z --yes',
  ])
    .description(
      'replace the live data with a backup, or with its state at a moment (the backup before it and the binary logs); the replaced data is kept aside on the node',
    )
    .option('--app <app>', 'application')
    .option('--backup <id>', 'a backup (see cps mysql backups)')
    .option('--at <time>', 'a moment: ISO 8601, or a date and time of this machine')
    .option('--yes', 'yes, replace the live data')
    .action(async (svc: string, o: { app?: string; backup?: string; at?: string; yes?: boolean }) => {
      const app = needApp(o);
      if (!o.backup && !o.at) throw usage('give --backup ID or --at TIME');
      const at = o.at === undefined ? undefined : parseMoment(o.at);
      if (!o.yes)
        throw new CpsError('validation', 'a restore replaces the live data of the service: add --yes', [
          { path: '--yes', code: 'confirmation_required', message: 'required' },
        ]);
      if (!g().json) console.error(`restoring ${o.backup ?? `the state at ${at}`}...`);
      const r = record(
        'restore',
        await callMethod(director(g), app, svc, 'restore', {
          ...(o.backup ? { backup: o.backup } : {}),
          ...(at ? { at } : {}),
          yes: true,
        }),
      );
      if (g().json) return json(r);
      console.log(
        `restored ${text('restore', r, 'backup')}${typeof r['at'] === 'string' ? ` to ${r['at']}` : ''} on ${text('restore', r, 'nodeId')}; the data it replaced is kept at ${text('restore', r, 'replaced')} on that node`,
      );
    });

  examples(mysql.command('connect <svc>'), [
    'cps mysql connect db --app shop',
    'cps mysql connect db --app shop --exec',
    'cps mysql connect db --app shop --minutes 15 --json',
  ])
    .description(
      `a temporary user of the service: print the ${CLIENT} command that connects with it, or run it (--exec)`,
    )
    .option('--app <app>', 'application')
    .option(
      '--minutes <n>',
      `how long the user lasts (${TEMPORARY_USER_MINUTES.min} to ${TEMPORARY_USER_MINUTES.max})`,
      String(TEMPORARY_USER_MINUTES.default),
    )
    .option('--exec', `run ${CLIENT} (Debian package ${CLIENT_PACKAGE}) instead of printing the command`)
    .action(async (svc: string, o: { app?: string; minutes: string; exec?: boolean }) => {
      const minutes = parseMinutes(o.minutes);
      const app = needApp(o);
      // no temporary user is made for a client that cannot run
      const client = o.exec ? findOnPath(CLIENT) : undefined;
      if (o.exec && !client) throw clientMissing();
      const d = director(g);
      const u = asTemporaryUser(await callMethod(d, app, svc, 'temporary_user', { minutes }));
      if (client) {
        console.error(`connecting to ${u.host}:${u.port} as ${u.user}; ${expiryLine(u)}`);
        process.exitCode = await runClient(client, u);
        return;
      }
      if (g().json) return json(u);
      console.log(connectCommand(u));
      console.error(expiryLine(u));
    });

  examples(mysql.command('dump <svc>'), [
    'cps mysql dump db --app shop > db.sql',
    'cps mysql dump db --app shop --database shop | gzip > shop.sql.gz',
  ])
    .description('an SQL dump of the service (one database with --database), written to stdout as it is')
    .option('--app <app>', 'application')
    .option('--database <name>', 'one database (default: all of them)')
    .action(async (svc: string, o: { app?: string; database?: string }) => {
      const app = needApp(o);
      const d = director(g);
      const result = await callMethod(d, app, svc, 'sqldump', o.database ? { database: o.database } : {});
      const sql = text('sqldump', record('sqldump', result), 'sql');
      if (g().json) return json({ sql });
      await new Promise<void>((resolve, reject) =>
        process.stdout.write(sql, (e) => (e ? reject(e) : resolve())),
      );
    });

  examples(mysql.command('load <svc> <file>'), [
    'cps mysql load db shop.sql --app shop --database shop',
    'cps --json mysql load db shop.sql --app shop --database shop',
  ])
    .description(
      `load an SQL dump (a file of at most ${MAX_DUMP_BYTES / 1024} KiB) into a database of the service`,
    )
    .option('--app <app>', 'application')
    .requiredOption('--database <name>', 'the database to load it into')
    .action(async (svc: string, file: string, o: { app?: string; database: string }) => {
      const app = needApp(o);
      // refused here, before anything is sent
      const sql = readDump(file);
      const d = director(g);
      if (!g().json)
        console.error(`loading ${file} (${Buffer.byteLength(sql)} bytes) into database ${o.database}...`);
      const answer = await callMethod(d, app, svc, 'load_dump', { sql, database: o.database });
      const r = record('load_dump', answer);
      const tables = r['tables'];
      if (typeof tables !== 'number') throw unexpected('load_dump', 'tables is not a number');
      const loaded = { database: text('load_dump', r, 'database'), tables };
      if (g().json) return json(loaded);
      console.log(
        `loaded ${file} into database ${loaded.database}: ${tables} table${tables === 1 ? '' : 's'}`,
      );
    });
};
