import { describe, expect, it } from 'vitest';
import { hasErrorCode, type ValidationError } from '@cps/core';
import { covers, mostAdvanced, parseGtid } from './gtid.js';
import {
  checkDumpText,
  checkParam,
  errorLine,
  ident,
  literal,
  NameSchema,
  paramValue,
  PasswordSchema,
  UserSchema,
} from './inputs.js';
import { serverId } from './server.js';
import { mysqlService } from './mysql.js';

const attempt = (f: () => unknown): unknown => {
  try {
    f();
    return undefined;
  } catch (e) {
    return e;
  }
};
const fieldOf = (e: unknown) => (e as ValidationError).issues[0];

describe('mysql: GTID positions', () => {
  it('reads positions per domain and knows which covers which', () => {
    const a = parseGtid('0-11-120,1-12-7');
    expect([...a]).toEqual([
      [0, 120],
      [1, 7],
    ]);
    expect(covers(a, parseGtid('0-13-119'))).toBe(true);
    expect(covers(parseGtid('0-13-119'), a)).toBe(false);
    expect(covers(parseGtid(''), parseGtid(''))).toBe(true);
  });

  it('promotes the replica that received everything any other did; else the furthest; ties to the first', () => {
    const pick = (...positions: string[]) =>
      mostAdvanced(positions.map((position, i) => ({ id: i, position })))?.id;
    expect(pick('0-1-10', '0-1-12', '0-1-11')).toBe(1);
    expect(pick('0-1-10,1-2-5', '0-1-10')).toBe(0);
    // diverged (each has what the other lacks): the furthest in total
    expect(pick('0-1-10,1-2-1', '0-1-8,1-2-9')).toBe(1);
    expect(pick('0-1-10', '0-1-10')).toBe(0);
    expect(pick()).toBeUndefined();
  });
});

describe('mysql: inputs', () => {
  it('takes plain names, refuses the platform\u2019s, the system\u2019s and anything needing quotes', () => {
    for (const ok of ['shop', 'wp_1', 'A1']) expect(NameSchema.safeParse(ok).success).toBe(true);
    for (const bad of ['', '1shop', 'cps_x', 'mysql', 'sys', 'a-b', 'a`b', "a'b", 'x'.repeat(33)])
      expect(NameSchema.safeParse(bad).success).toBe(false);
    expect(UserSchema.safeParse('root').success).toBe(true);
    expect(UserSchema.safeParse('cps_admin').success).toBe(false);
  });

  it('refuses weak passwords: short, one or two kinds of characters, common ones, non-ASCII', () => {
    expect(PasswordSchema.safeParse('Shop-keeper-2026').success).toBe(true);
    for (const weak of [
      '',
      'Ab1-',
      'alllowercaseletters',
      'ALLUPPER12345',
      'MyPassword-1',
      'Pass\u00e9word-12x',
    ])
      expect(PasswordSchema.safeParse(weak).success).toBe(false);
  });

  it('allows listed server variables with checked values only, naming the field', () => {
    expect(() => checkParam('max_connections', '300')).not.toThrow();
    expect(() => checkParam('slow_query_log', 'ON')).not.toThrow();
    const notAllowed = attempt(() => checkParam('sync_binlog', '0'));
    expect(hasErrorCode(notAllowed, 'validation')).toBe(true);
    expect(fieldOf(notAllowed)).toMatchObject({ path: '$.name', code: 'param_not_allowed' });
    for (const [name, value] of [
      ['max_connections', '3'],
      ['max_connections', '1; DROP'],
      ['sql_mode', "x'; DROP TABLE t"],
      ['long_query_time', '-1'],
    ] as const)
      expect(fieldOf(attempt(() => checkParam(name, value)))).toMatchObject({
        path: '$.value',
        code: 'invalid_value',
      });
    expect(paramValue('300')).toBe('300');
    expect(paramValue('STRICT_TRANS_TABLES')).toBe("'STRICT_TRANS_TABLES'");
  });

  it('refuses a dump that is not text, and finds the line a client error names', () => {
    expect(fieldOf(attempt(() => checkDumpText('SELECT 1;\n\0\u0001')))).toMatchObject({
      path: '$.sql',
      code: 'not_sql',
      message: expect.stringContaining('line 2'),
    });
    expect(fieldOf(attempt(() => checkDumpText('  \n')))).toMatchObject({ code: 'not_sql' });
    expect(() => checkDumpText('SELECT 1;')).not.toThrow();
    expect(errorLine('ERROR 1064 (42000) at line 3: You have an error')).toBe(3);
    expect(errorLine('connection refused')).toBeUndefined();
  });

  it('quotes identifiers and literals so nothing escapes them', () => {
    expect(ident('a`b')).toBe('`a``b`');
    expect(literal("it's \\ done")).toBe("'it\\'s \\\\ done'");
  });

  it('gives each node a server id of its own, the same at every start', () => {
    expect(serverId('n1')).toBe(serverId('n1'));
    expect(serverId('n1')).not.toBe(serverId('n2'));
    expect(serverId('n1')).toBeGreaterThan(0);
    expect(serverId('n1')).toBeLessThan(2 ** 32);
  });
});

describe('mysql: what a linking service gets', () => {
  it('MYSQL_* from the primary endpoint and the credentials; none of the host without an endpoint', () => {
    const env = mysqlService.links!.env;
    const credentials = { MYSQL_DATABASE: 'web', MYSQL_USER: 'cps_link_s1', MYSQL_PASSWORD: 'p' };
    expect(env({ endpoints: { mysql: { address: '198.18.1.3', port: 20000 } }, credentials })).toEqual({
      MYSQL_HOST: '198.18.1.3',
      MYSQL_IP: '198.18.1.3',
      MYSQL_PORT: '20000',
      ...credentials,
    });
    expect(env({ endpoints: {}, credentials })).toEqual(credentials);
  });
});
