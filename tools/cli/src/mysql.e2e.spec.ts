import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCloud } from '@cps/clouds';
import { cliPlatform, eventually, mariadb } from '@cps/testing';

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

  // a manifest's Dump comes from a URL the director may download from (its CPS_ARCHIVE_ALLOW)
  const dumpServer = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/sql' });
    res.end(
      'CREATE DATABASE seeded;\nCREATE TABLE seeded.t (id INT PRIMARY KEY);\nINSERT INTO seeded.t VALUES (1),(2),(3);\n',
    );
  });
  let dumpUrl = '';

  beforeAll(async () => {
    await new Promise<void>((r) => dumpServer.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(dumpServer.address() as AddressInfo).port}/`;
    dumpUrl = `${base}seed.sql`;
    platform.env['CPS_ARCHIVE_ALLOW'] = base;
    await platform.init();
    await cps('up');
  }, 120_000);
  afterAll(async () => {
    await platform.cleanup();
    await new Promise((r) => dumpServer.close(r));
  });

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

  it('gives a service linking the database a user of its own in MYSQL_*: its database only, the password in no view', async () => {
    const code = join(root, 'linked-code');
    mkdirSync(code, { recursive: true });
    const mariadbAs = 'mariadb -N -B -h "$MYSQL_HOST" -P "$MYSQL_PORT" -u "$MYSQL_USER"';
    writeFileSync(
      join(code, 'run.sh'),
      [
        '#!/bin/sh',
        'export MYSQL_PWD="$MYSQL_PASSWORD"',
        'echo "link $MYSQL_USER@$MYSQL_HOST:$MYSQL_PORT ip=$MYSQL_IP db=$MYSQL_DATABASE via $LINK_DB_MYSQL ($1)"',
        `${mariadbAs} "$MYSQL_DATABASE" -e "CREATE TABLE IF NOT EXISTS t (x INT); INSERT INTO t VALUES (1); SELECT CONCAT('rows=', COUNT(*), ' ($1)') FROM t" 2>&1`,
        // the tenant tries what its user was not given
        `${mariadbAs} -e "SELECT CONCAT('escaped=', COUNT(*)) FROM mysql.user" 2>&1 | tr '\\n' ' '; echo "($1)"`,
        `${mariadbAs} -e "CREATE DATABASE other" 2>&1 | tr '\\n' ' '; echo "($1)"`,
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    const manifest = join(root, 'linked.json');
    writeFileSync(
      manifest,
      JSON.stringify({
        Application: 'linked-db',
        Services: [
          { ServiceName: 'db', Type: 'mysql', Start: 1 },
          { ServiceName: 'web', Type: 'generic', Start: 1, Archive: './linked-code', Links: { db: 'db' } },
        ],
      }),
    );
    await cps('deploy', manifest);
    const linked = ['--app', 'linked-db'];
    const master = await eventually(
      async () =>
        (
          JSON.parse((await cps('--json', 'service', 'nodes', 'web', ...linked)).stdout) as {
            nodes: Listed[];
          }
        ).nodes,
      (ns) => ns.length > 0 && ns.every((n) => n.state === 'running'),
      180_000,
    );
    const node = master[0]!.nodeId;
    const ran = async (marker: string): Promise<string[]> => {
      await eventually(
        () =>
          cps('service', 'call', 'web', 'run', ...linked, '--arg', `parameters=["${marker}"]`).then(
            () => true,
            () => false,
          ),
        (ok) => ok,
        60_000,
      );
      const log = await eventually(
        async () =>
          (await cps('service', 'log', 'web', ...linked, '--node', node, '--workload', 'run')).stdout,
        (t) => t.split('\n').filter((l) => l.includes(`(${marker})`)).length >= 3,
        60_000,
      );
      // the lines run.sh printed, without the log's own prefix
      return log
        .split('\n')
        .filter((l) => l.includes(`(${marker})`))
        .map((l) => l.replace(/^out \S+ /, ''));
    };
    // the credentials reach the node once the director asked the database for them
    const lines = await eventually(
      () => ran(`m${Date.now()}`).catch((): string[] => []),
      (ls) => ls.some((l) => l.startsWith('rows=')),
      120_000,
    ).catch(async (e: unknown) => {
      for (const args of [
        ['service', 'log', 'db', ...linked],
        ['service', 'log', 'web', ...linked],
        ['--json', 'service', 'info', 'web', ...linked],
      ])
        console.log(
          args.join(' '),
          (await cps(...args).catch((x: { stdout: string }) => x)).stdout.slice(-3000),
        );
      throw e;
    });
    const [info, rows, escaped, created] = lines;
    expect(info).toMatch(
      /^link cps_link_\S+@198\.18\.\d+\.\d+:\d+ ip=198\.18\.\d+\.\d+ db=web via 198\.18\.\d+\.\d+:\d+ /,
    );
    expect(rows).toMatch(/^rows=1 /);
    expect(escaped).toMatch(/denied/i);
    expect(escaped).not.toMatch(/escaped=\d/);
    expect(created).toMatch(/denied/i);
    // the password is in no view of the service
    const views = [
      (await cps('--json', 'service', 'info', 'web', ...linked)).stdout,
      (await cps('--json', 'app', 'export', 'linked-db')).stdout,
    ].join('\n');
    expect(views).not.toMatch(/MYSQL_PASSWORD|credentials/);
  });

  it("loads a manifest's Dump (ConPaaS's) once into the new database; a URL off the allow-list is refused naming the key", async () => {
    const manifest = join(root, 'seeded.json');
    const write = (url: string) =>
      writeFileSync(
        manifest,
        JSON.stringify({
          Application: 'seeded',
          Services: [{ ServiceName: 'db', Type: 'mysql', Start: 1, Dump: url }],
        }),
      );
    write('http://192.0.2.1/elsewhere.sql');
    const refused = await cps('deploy', manifest).then(
      () => undefined,
      (e: { stderr: string; code: number }) => e,
    );
    expect(refused?.code).not.toBe(0);
    expect(refused?.stderr).toMatch(/Services\[0\]\.Dump/);
    await cps('app', 'delete', 'seeded').catch(() => undefined);

    write(dumpUrl);
    await cps('deploy', manifest);
    const seeded = ['--app', 'seeded'];
    const c = await eventually(
      async () => JSON.parse((await cps('--json', 'mysql', 'connect', 'db', ...seeded)).stdout) as Credential,
      (x) => !!x.user,
      120_000,
    );
    expect(
      await eventually(
        () => client(c, 'SELECT COUNT(*) FROM seeded.t').catch(() => ''),
        (n) => n === '3',
        60_000,
      ),
    ).toBe('3');
    const info = JSON.parse(
      (await cps('--json', 'service', 'call', 'db', 'get_connection_info', ...seeded)).stdout,
    ) as { result?: { dump?: { bytes: number } }; dump?: { bytes: number } };
    expect((info.result ?? info).dump?.bytes).toBeGreaterThan(50);
  });
});
