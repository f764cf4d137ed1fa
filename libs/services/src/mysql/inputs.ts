import { z } from 'zod';
import { ValidationError } from '@cps/core';
import { secret } from '../contract/secrets.js';

/**
 * What the mysql service accepts from outside, checked before anything runs on a server: names,
 * passwords, privileges, server variables and dumps. Pure; the SQL built from these values quotes
 * them again (`ident`, `literal`).
 */

/** Database and user names: what needs no quoting anywhere, and no prefix the service keeps for itself. */
export const NameSchema = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_]{0,31}$/, 'letters, digits and _, starting with a letter, 32 at most')
  .refine((n) => !/^cps_/i.test(n), 'names starting with cps_ belong to the platform')
  .refine((n) => !SYSTEM_DATABASES.has(n.toLowerCase()), 'a system database');

const SYSTEM_DATABASES = new Set(['mysql', 'sys', 'information_schema', 'performance_schema', 'root']);

/** A user name: like a database name, and `root` (the manifest's `Password` user) is allowed. */
export const UserSchema = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_]{0,31}$/, 'letters, digits and _, starting with a letter, 32 at most')
  .refine((n) => !/^cps_/i.test(n), 'names starting with cps_ belong to the platform')
  .refine((n) => n === 'root' || !['mysql', 'mariadb'].includes(n.toLowerCase()), 'a system account');

/**
 * A password a user chooses: 10 to 128 printable ASCII characters, at least three kinds of
 * lowercase, uppercase, digits and other characters, and not one of the few everybody tries.
 */
export const PasswordSchema = secret(
  z
    .string()
    .min(10, 'at least 10 characters')
    .max(128)
    .regex(/^[\x20-\x7e]+$/, 'printable ASCII characters only')
    .refine(
      (p) => [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((r) => r.test(p)).length >= 3,
      'too weak: use three of lowercase, uppercase, digits and other characters',
    )
    .refine((p) => !COMMON.some((c) => p.toLowerCase().includes(c)), 'too weak: a common password'),
);
const COMMON = ['password', 'passw0rd', '123456', 'qwerty', 'letmein', 'welcome', 'admin123'];

/** The privileges `create_user` grants on one database (never FILE, SUPER or any server-wide one). */
export const PRIVILEGES = [
  'ALL',
  'SELECT',
  'INSERT',
  'UPDATE',
  'DELETE',
  'CREATE',
  'DROP',
  'INDEX',
  'ALTER',
  'CREATE TEMPORARY TABLES',
  'LOCK TABLES',
  'EXECUTE',
  'CREATE VIEW',
  'SHOW VIEW',
  'CREATE ROUTINE',
  'ALTER ROUTINE',
  'EVENT',
  'TRIGGER',
  'REFERENCES',
] as const;
export const PrivilegeSchema = z.enum(PRIVILEGES);

/**
 * What a database user of the service may do on every database (the manifest's `root` and the
 * temporary users of `cps mysql connect`): everything on data and schema, nothing on the server
 * itself (no FILE, SUPER, SHUTDOWN, PROCESS, RELOAD, replication or binary-log privilege).
 */
export const USER_GLOBAL_PRIVILEGES =
  'SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER, CREATE TEMPORARY TABLES, LOCK TABLES, ' +
  'EXECUTE, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, EVENT, TRIGGER, REFERENCES, ' +
  'SHOW DATABASES, CREATE USER';

const int = (min: number, max: number) => (v: string) =>
  /^\d+$/.test(v) && Number(v) >= min && Number(v) <= max ? undefined : `an integer from ${min} to ${max}`;
const onOff = (v: string) => (/^(ON|OFF|0|1)$/i.test(v) ? undefined : 'ON or OFF');
const decimal = (min: number, max: number) => (v: string) =>
  /^\d+(\.\d+)?$/.test(v) && Number(v) >= min && Number(v) <= max
    ? undefined
    : `a number from ${min} to ${max}`;
const words = (re: RegExp, what: string) => (v: string) => (re.test(v) ? undefined : what);

/**
 * The server variables `set_param` may change, each with its check (undefined when the value is
 * good). Nothing that weakens durability or replication (`sync_binlog`, `innodb_flush_log_at_trx_commit`,
 * `read_only`, `gtid_*`, `rpl_*`) and nothing that reaches files (`secure_file_priv`, `general_log_file`).
 */
export const PARAMS: Readonly<Record<string, (value: string) => string | undefined>> = {
  max_connections: int(10, 5_000),
  wait_timeout: int(1, 31_536_000),
  interactive_timeout: int(1, 31_536_000),
  lock_wait_timeout: int(1, 31_536_000),
  innodb_lock_wait_timeout: int(1, 1_073_741_824),
  long_query_time: decimal(0, 3_600),
  slow_query_log: onOff,
  max_allowed_packet: int(1_024, 1_073_741_824),
  sort_buffer_size: int(32_768, 268_435_456),
  join_buffer_size: int(8_228, 268_435_456),
  tmp_table_size: int(1_024, 4_294_967_295),
  max_heap_table_size: int(16_384, 4_294_967_295),
  table_open_cache: int(1, 1_048_576),
  innodb_buffer_pool_size: int(134_217_728, 68_719_476_736),
  sql_mode: words(/^[A-Z_]*(,[A-Z_]+)*$/, 'comma-separated SQL modes (uppercase)'),
  character_set_server: words(/^[a-z0-9]{1,32}$/, 'a character set name'),
  collation_server: words(/^[a-z0-9_]{1,64}$/, 'a collation name'),
};

/** `set_param`'s arguments, checked against {@link PARAMS}: a `param_not_allowed` or `validation` error. */
export const checkParam = (name: string, value: string): void => {
  const check = PARAMS[name];
  if (!check)
    throw new ValidationError(`server variable ${name} may not be set`, [
      {
        path: '$.name',
        code: 'param_not_allowed',
        message: `allowed: ${Object.keys(PARAMS).join(', ')}`,
      },
    ]);
  const problem = check(value);
  if (problem)
    throw new ValidationError(`bad value for ${name}: ${problem}`, [
      { path: '$.value', code: 'invalid_value', message: problem },
    ]);
};

/** A value of {@link PARAMS} as SQL: numbers and ON/OFF as they are, anything else quoted. */
export const paramValue = (value: string): string =>
  /^(\d+(\.\d+)?|ON|OFF)$/i.test(value) ? value : literal(value);

/** The largest dump `load_dump` takes in one request, and `sqldump` answers. */
export const MAX_DUMP_BYTES = 512 * 1024;

/** A dump's text must be text: no NUL byte (a binary file), not empty. */
export const checkDumpText = (sql: string): void => {
  const nul = sql.indexOf('\0');
  if (nul >= 0 || sql.trim().length === 0)
    throw new ValidationError('the dump is not SQL text', [
      {
        path: '$.sql',
        code: 'not_sql',
        message:
          nul >= 0 ? `a NUL byte at line ${sql.slice(0, nul).split('\n').length}: not a text file` : 'empty',
      },
    ]);
};

/** The line a client error names (`ERROR 1064 (42000) at line 3: ...`), if it names one. */
export const errorLine = (stderr: string): number | undefined => {
  const m = /ERROR \d+ \([0-9A-Z]+\) at line (\d+)/.exec(stderr);
  return m ? Number(m[1]) : undefined;
};

/** `name` as an SQL identifier. */
export const ident = (name: string): string => '`' + name.replace(/`/g, '``') + '`';

/** `text` as an SQL string literal. */
export const literal = (text: string): string =>
  "'" + text.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\0/g, '\\0') + "'";
