import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCloud } from '@cps/clouds';
import { eventually, mariadb } from '@cps/testing';
import { cliPlatform } from './cli-platform.spec-helpers.js';

interface Listed {
  nodeId: string;
  role: string;
  state: string;
}
interface Credential {
  user: string;
  password: string;
  host: string;
  port: number;
  expiresAt: string;
}

/** The real `mariadb` client, as a user runs it with what `cps mysql connect` gave. */
const client = (c: Omit<Credential, 'expiresAt'>, sql: string) => mariadb(c, c.user, c.password, sql);

/**
 * The mysql example as a user deploys and uses it, as root (the service needs host mode): `cps deploy
 * examples/mysql/manifest.json`, then `cps mysql connect`, `load` and `dump`.
 */
describe.skipIf(LocalCloud.hostModeUnavailable() !== undefined)('mysql through the cps command', () => {
  const platform = cliPlatform('cps-mysql-');
  const { root, cps } = platform;
  const app = ['--app', 'mysql-demo'];

  beforeAll(async () => {
    await platform.init();
    await cps('up');
  }, 120_000);
  afterAll(() => platform.cleanup());

  it('deploys the example: a primary and a replica, reached with a temporary user from cps mysql connect', async () => {
    expect((await cps('deploy', join(process.cwd(), 'examples', 'mysql', 'manifest.json'))).stdout).toMatch(
      /deployed: /,
    );
    await eventually(
      async () =>
        (JSON.parse((await cps('--json', 'service', 'nodes', 'db', ...app)).stdout) as { nodes: Listed[] })
          .nodes,
      (ns) => ns.length === 2 && ns.every((n) => n.state === 'running'),
      120_000,
    );
    const c = JSON.parse((await cps('--json', 'mysql', 'connect', 'db', ...app)).stdout) as Credential;
    expect(c.user).toMatch(/^cps_tmp_/);
    expect(Date.parse(c.expiresAt)).toBeGreaterThan(Date.now() + 59 * 60_000);
    await client(
      c,
      'CREATE DATABASE demo; CREATE TABLE demo.t (id INT PRIMARY KEY); INSERT INTO demo.t VALUES (7)',
    );
    expect(await client(c, 'SELECT id FROM demo.t')).toBe('7');
    // the printed command holds the same kind of credential, quoted for a shell
    const printed = (await cps('mysql', 'connect', 'db', ...app)).stdout;
    expect(printed).toMatch(/^MYSQL_PWD='[^']+' mariadb -h \S+ -P \d+ -u cps_tmp_\w+$/m);
    // the manifest's Password is root's
    expect(await client({ ...c, user: 'root', password: 'Change-me-2026' }, 'SELECT id FROM demo.t')).toBe(
      '7',
    );
  });

  it('loads a dump file and dumps it back; a broken file names its line and loads nothing', async () => {
    const dump = join(root, 'shop.sql');
    writeFileSync(
      dump,
      "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20));\nINSERT INTO items VALUES (1, 'pen');\n",
    );
    expect((await cps('mysql', 'load', 'db', dump, '--database', 'shop', ...app)).stdout).toMatch(/1 table/);
    const out = (await cps('mysql', 'dump', 'db', '--database', 'shop', ...app)).stdout;
    expect(out).toContain('CREATE TABLE `items`');
    expect(out).toMatch(/\(1,'pen'\)/);

    const broken = join(root, 'broken.sql');
    writeFileSync(broken, 'CREATE TABLE more (id INT);\nINSERT INTO nowhere VALUES (;\n');
    const failed = await cps('mysql', 'load', 'db', broken, '--database', 'shop', ...app).then(
      () => undefined,
      (e: { stderr: string; code: number }) => e,
    );
    expect(failed?.code).not.toBe(0);
    expect(failed?.stderr).toMatch(/line 2/);
    expect(failed?.stderr).toMatch(/dump_error/);
    expect(
      await cps('mysql', 'dump', 'db', '--database', 'shop', ...app).then((r) => r.stdout),
    ).not.toContain('`more`');
  });

  it('backs up, lists the backups, and restores one only with --yes', async () => {
    const backup = JSON.parse((await cps('--json', 'mysql', 'backup', 'db', ...app)).stdout) as {
      id: string;
    };
    expect(backup.id).toMatch(/^b-/);
    expect((await cps('mysql', 'backups', 'db', ...app)).stdout).toContain(backup.id);
    const after = join(root, 'after.sql');
    writeFileSync(after, 'CREATE TABLE later (id INT PRIMARY KEY);\n');
    await cps('mysql', 'load', 'db', after, '--database', 'shop', ...app);

    const unasked = await cps('mysql', 'restore', 'db', '--backup', backup.id, ...app).then(
      () => undefined,
      (e: { stderr: string; code: number }) => e,
    );
    expect(unasked?.code).not.toBe(0);
    expect(unasked?.stderr).toMatch(/--yes/);
    expect((await cps('mysql', 'dump', 'db', '--database', 'shop', ...app)).stdout).toContain('`later`');

    const restored = (await cps('mysql', 'restore', 'db', '--backup', backup.id, '--yes', ...app)).stdout;
    expect(restored).toMatch(/kept at \S+db\.before-restore-\d+/);
    const out = (await cps('mysql', 'dump', 'db', '--database', 'shop', ...app)).stdout;
    expect(out).toContain('CREATE TABLE `items`');
    expect(out).not.toContain('`later`');
  });
});
