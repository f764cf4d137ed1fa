import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isCpsError } from '@cps/core';
import {
  asTemporaryUser,
  checkDumpSize,
  connectCommand,
  expiryLine,
  findOnPath,
  MAX_DUMP_BYTES,
  parseMinutes,
  parseMoment,
  readDump,
  runClient,
  shellQuote,
  singleQuote,
  type TemporaryUser,
} from './mysql.js';

const dir = mkdtempSync(join(tmpdir(), 'cps-mysql-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What `sh` makes of a line: the words `printf` receives, one per line. */
const sh = (line: string, env: NodeJS.ProcessEnv = process.env): string =>
  execFileSync('sh', ['-c', line], { encoding: 'utf8', env });

/** The error `f` throws, as a CpsError's code, message and issue paths. */
const refusal = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    if (!isCpsError(e)) throw e;
    return { code: e.code, message: e.message, paths: e.issues.map((i) => i.path) };
  }
  throw new Error('did not throw');
};

/** A stand-in `mariadb` that writes its arguments and MYSQL_PWD to a file, and exits with $EXIT. */
const fakeClient = (bin: string, out: string): string => {
  const file = join(bin, 'mariadb');
  writeFileSync(
    file,
    `#!/bin/sh\n{ printf 'arg=%s\\n' "$@"; printf 'pwd=%s\\n' "$MYSQL_PWD"; } > ${singleQuote(out)}\nexit "\${EXIT:-0}"\n`,
  );
  chmodSync(file, 0o755);
  return file;
};

const hostile = [
  "it's",
  '$(touch pwned)',
  '`id`',
  'a b\tc',
  'new\nline',
  'bang!',
  '',
  '*',
  '~root',
  '\\',
  '"',
  "''",
  'plain-Pass_1.2',
];

const user: TemporaryUser = {
  user: 'tmp_3f9c2a',
  password: 'p\'a$s `w`"d',
  host: '198.18.0.7',
  port: 3306,
  expiresAt: '2026-12-06T13:00:00.000Z',
};

describe('cps mysql: shell quoting', () => {
  it.each(hostile)('singleQuote and shellQuote give the shell %j as one word, unchanged', (v) => {
    expect(sh(`printf '%s|' ${singleQuote(v)}`)).toBe(`${v}|`);
    expect(sh(`printf '%s|' ${shellQuote(v)}`)).toBe(`${v}|`);
  });

  it('leaves plain words alone and always quotes what a shell would read', () => {
    expect(shellQuote('198.18.0.7')).toBe('198.18.0.7');
    expect(shellQuote('tmp_3f9c2a')).toBe('tmp_3f9c2a');
    expect(shellQuote('fe80::1%eth0')).toBe('fe80::1%eth0');
    expect(shellQuote('a b')).toBe("'a b'");
    expect(shellQuote('')).toBe("''");
    expect(singleQuote("it's")).toBe("'it'\\''s'");
  });

  it('prints the connect command with the password in MYSQL_PWD, quoted', () => {
    expect(connectCommand({ ...user, password: 'Pw-123' })).toBe(
      "MYSQL_PWD='Pw-123' mariadb -h 198.18.0.7 -P 3306 -u tmp_3f9c2a",
    );
  });

  it('the printed command, run by a shell, gives the client the values as answered', () => {
    const bin = mkdtempSync(join(dir, 'bin-'));
    const out = join(bin, 'out');
    fakeClient(bin, out);
    const odd = { ...user, user: "o'dd user", host: 'db host' };
    sh(connectCommand(odd), { ...process.env, PATH: `${bin}${delimiter}${process.env['PATH'] ?? ''}` });
    expect(readFileSync(out, 'utf8')).toBe(
      ['-h', 'db host', '-P', '3306', '-u', "o'dd user"].map((a) => `arg=${a}\n`).join('') +
        `pwd=${odd.password}\n`,
    );
  });
});

describe('cps mysql connect: its inputs and the answer', () => {
  it('--minutes: an integer from 1 to 1440', () => {
    expect(parseMinutes('60')).toBe(60);
    expect(parseMinutes('1')).toBe(1);
    expect(parseMinutes('1440')).toBe(1440);
    for (const bad of ['0', '1441', '1.5', '-5', 'abc', ''])
      expect(refusal(() => parseMinutes(bad))).toMatchObject({ code: 'validation', paths: ['--minutes'] });
  });

  it('takes only the answer temporary_user promises', () => {
    expect(asTemporaryUser({ ...user, extra: 1 })).toEqual(user);
    for (const bad of [
      null,
      'x',
      [],
      { ...user, password: undefined },
      { ...user, port: '3306' },
      { ...user, port: 0 },
      { ...user, host: '' },
    ])
      expect(refusal(() => asTemporaryUser(bad))).toMatchObject({ code: 'internal' });
  });

  it('says when the credential expires', () => {
    expect(expiryLine(user, Date.parse('2026-12-06T12:00:00.000Z'))).toBe(
      'the credential of tmp_3f9c2a expires at 2026-12-06T13:00:00.000Z (in 60 minutes)',
    );
    expect(expiryLine({ ...user, expiresAt: 'soon' })).toBe('the credential of tmp_3f9c2a expires at soon');
  });

  it('finds the client on PATH only as an executable file', () => {
    const bin = mkdtempSync(join(dir, 'path-'));
    writeFileSync(join(bin, 'mariadb'), 'not executable');
    expect(findOnPath('mariadb', bin)).toBeUndefined();
    const exe = fakeClient(bin, join(bin, 'out'));
    expect(findOnPath('mariadb', `${join(dir, 'nowhere')}${delimiter}${delimiter}${bin}`)).toBe(exe);
  });

  it('--exec: the password in the environment, not the arguments; the exit code passed on', async () => {
    const bin = mkdtempSync(join(dir, 'exec-'));
    const out = join(bin, 'out');
    const exe = fakeClient(bin, out);
    process.env['EXIT'] = '3';
    try {
      expect(await runClient(exe, user)).toBe(3);
    } finally {
      delete process.env['EXIT'];
    }
    const seen = readFileSync(out, 'utf8');
    expect(seen).toBe(
      ['-h', user.host, '-P', '3306', '-u', user.user].map((a) => `arg=${a}\n`).join('') +
        `pwd=${user.password}\n`,
    );
    expect(await runClient(exe, user)).toBe(0);
  });

  it('--exec: a client that is not there is named with its Debian package', async () => {
    await expect(runClient(join(dir, 'no-such-mariadb'), user)).rejects.toMatchObject({
      code: 'not_found',
      message: expect.stringContaining('mariadb-client') as unknown,
    });
  });
});

describe('cps mysql load: the dump file', () => {
  it('takes up to MAX_DUMP_BYTES (512 KiB) and refuses one byte more, naming the limit', () => {
    expect(MAX_DUMP_BYTES).toBe(512 * 1024);
    expect(() => checkDumpSize('a.sql', MAX_DUMP_BYTES)).not.toThrow();
    const r = refusal(() => checkDumpSize('a.sql', MAX_DUMP_BYTES + 1));
    expect(r).toMatchObject({ code: 'payload_too_large', paths: ['a.sql'] });
    expect(r.message).toContain('512 KiB');
    expect(r.message).toContain(String(MAX_DUMP_BYTES + 1));
  });

  it('reads a dump as UTF-8 text; refuses one too large, one not UTF-8, one missing', () => {
    const ok = join(dir, 'ok.sql');
    const sql = "CREATE TABLE t (v TEXT);\nINSERT INTO t VALUES ('é');\n";
    writeFileSync(ok, sql);
    expect(readDump(ok)).toBe(sql);
    const full = join(dir, 'full.sql');
    writeFileSync(full, Buffer.alloc(MAX_DUMP_BYTES, 0x20));
    expect(readDump(full)).toHaveLength(MAX_DUMP_BYTES);
    const big = join(dir, 'big.sql');
    writeFileSync(big, Buffer.alloc(MAX_DUMP_BYTES + 1, 0x20));
    expect(refusal(() => readDump(big))).toMatchObject({ code: 'payload_too_large' });
    const latin1 = join(dir, 'latin1.sql');
    writeFileSync(latin1, Buffer.from([0x27, 0xe9, 0x27]));
    expect(refusal(() => readDump(latin1))).toMatchObject({ code: 'validation', paths: [latin1] });
    expect(refusal(() => readDump(join(dir, 'missing.sql')))).toMatchObject({
      code: 'validation',
      message: expect.stringContaining('no such file') as unknown,
    });
  });
});

describe('cps mysql restore --at: the moment', () => {
  it('reads ISO 8601 and local dates and times as UTC; refuses anything else, naming the flag', () => {
    expect(parseMoment('2026-12-06T18:30:00Z')).toBe('2026-12-06T18:30:00.000Z');
    expect(parseMoment('2026-12-06T19:30:00+01:00')).toBe('2026-12-06T18:30:00.000Z');
    expect(parseMoment('2026-12-06 18:30')).toBe(new Date(2026, 11, 6, 18, 30).toISOString());
    for (const bad of ['', 'yesterday', '2026-13-45T99:00:00Z']) {
      let e: unknown;
      try {
        parseMoment(bad);
      } catch (err) {
        e = err;
      }
      expect(isCpsError(e) && e.code === 'validation' && e.issues[0]?.path === '--at').toBe(true);
    }
  });
});
