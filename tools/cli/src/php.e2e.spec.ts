import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { list as tarList } from 'tar';
import { CLI, cliPlatform, run } from '@cps/testing';

interface Version {
  version: string;
  size: number;
  current: boolean;
}

/**
 * `cps php` as a user runs it. The code-version commands work on any service with archives: here a
 * generic one, not started (its versions live in the director and the bucket). `config` calls the
 * php type's methods, which a generic service does not have: the refusal shows the call's path.
 */
describe('cps php: versions of a service’s code', () => {
  const platform = cliPlatform('cps-php-');
  const { root, cps } = platform;
  const app = ['--app', 'shop'];
  const fails = async (...args: string[]) =>
    (await cps(...args).then(
      () => {
        throw new Error(`cps ${args.join(' ')} should have failed`);
      },
      (e: unknown) => e,
    )) as { code: number; stderr: string };
  const versions = async (): Promise<Version[]> =>
    (JSON.parse((await cps('--json', 'php', 'versions', 'web', ...app)).stdout) as { versions: Version[] })
      .versions;
  const site = join(root, 'site');
  let first = '';
  let second = '';

  beforeAll(async () => {
    platform.env['CPS_LOCAL_MODE'] = 'process';
    await platform.init();
    await cps('up');
    await cps('app', 'create', 'shop');
    await cps('service', 'add', 'generic', 'web', ...app);
    mkdirSync(join(site, 'lib'), { recursive: true });
    writeFileSync(join(site, 'index.php'), '<?php echo "hello";\n');
    writeFileSync(join(site, 'lib', 'util.php'), '<?php\n');
  }, 120_000);
  afterAll(async () => platform.cleanup());

  it('uploads a directory as a version, not current unless --enable', async () => {
    expect((await fails('php', 'versions', 'web')).code).toBe(1);
    expect((await cps('php', 'versions', 'web', ...app)).stderr).toMatch(/no versions yet/);
    const up = await cps('php', 'upload', 'web', site, ...app);
    first = up.stdout.trim();
    expect(first).toMatch(/^v[a-z0-9]+$/);
    expect(up.stderr).toContain(`cps php enable web ${first} --app shop`);
    expect((await versions()).map((v) => [v.version, v.current])).toEqual([[first, false]]);

    const again = JSON.parse(
      (await cps('--json', 'php', 'upload', 'web', site, ...app, '--enable')).stdout,
    ) as Version;
    second = again.version;
    expect(again.current).toBe(true);
    const table = (await cps('php', 'versions', 'web', ...app)).stdout.split('\n');
    expect(table[0]).toMatch(/^VERSION\s+SIZE\s+STORED\s+CURRENT$/);
    expect(table.find((l) => l.startsWith(second))).toMatch(/\*$/);
    expect(table.find((l) => l.startsWith(first))).not.toMatch(/\*$/);
  });

  it('downloads a version to a file and to stdout: the packed directory', async () => {
    const file = join(root, 'got.tar.gz');
    await cps('php', 'download', 'web', first, ...app, '-o', file);
    const names: string[] = [];
    await tarList({ file, onReadEntry: (e) => void names.push(e.path) });
    expect(names).toEqual(expect.arrayContaining(['./index.php', './lib/util.php']));
    const [v] = (await versions()).filter((x) => x.version === first);
    expect(readFileSync(file).length).toBe(v?.size);
    // the file exists now: it is not overwritten
    expect((await fails('php', 'download', 'web', first, ...app, '-o', file)).code).toBe(1);
    const piped = await run(process.execPath, [CLI, 'php', 'download', 'web', first, ...app], {
      env: platform.env,
      encoding: 'buffer',
      maxBuffer: 64 * 1024 * 1024,
    });
    expect(piped.stdout.equals(readFileSync(file))).toBe(true);
  });

  it('enables an older version; refuses to delete the current one; deletes another', async () => {
    expect((await cps('php', 'enable', 'web', first, ...app)).stdout).toMatch(`version ${first} is`);
    expect((await versions()).find((v) => v.current)?.version).toBe(first);
    const refused = await fails('php', 'delete', 'web', first, ...app);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/error \[conflict\]/);
    expect(refused.stderr).toMatch(/\$\.version: the active version cannot be deleted; enable another first/);
    expect(JSON.parse((await cps('--json', 'php', 'delete', 'web', second, ...app)).stdout)).toEqual({
      deleted: second,
    });
    expect((await versions()).map((v) => v.version)).toEqual([first]);
    expect((await fails('php', 'enable', 'web', second, ...app)).stderr).toMatch(/error \[not_found\]/);
  });

  it('config: refuses a bad setting before calling, and names the method the service lacks', async () => {
    const bad = await fails('php', 'config', 'web', 'memory_limit', ...app);
    expect(bad.stderr).toMatch(/error \[validation\].*give key=value/);
    const set = await fails('php', 'config', 'web', 'memory_limit=256M', ...app);
    expect(set.stderr).toMatch(/generic has no method update_php_configuration/);
    const get = await fails('php', 'config', 'web', ...app);
    expect(get.stderr).toMatch(/generic has no method get_php_configuration/);
  });
});
