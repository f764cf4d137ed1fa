import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliPlatform, eventually, httpsText } from '@cps/testing';
import { tarOf, zerosBomb } from '../../../libs/archives/src/extract/archives.spec-helpers.js';

interface Version {
  version: string;
  size: number;
  digest: string;
  stored: string;
  current: boolean;
}

/** The director's largest upload (its `maxArchiveBytes`, not configurable): 256 MiB. */
const MAX_ARCHIVE_BYTES = 256 * 1024 * 1024;

const GOOD_PAGE = 'the good version\n';

/** `s` as a regular expression matching it literally. */
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Directories of code, as a user has them: file name to content (names may have directories). */
const writeTree = (dir: string, files: Record<string, string>): string => {
  for (const [name, body] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), body);
  }
  return dir;
};

/**
 * A php service running a first good version, and a person (or a script) giving it bad input
 * through the built `cps` command: broken, shapeless, hostile and oversized archives, versions that
 * do not exist or may not go, php settings out of bounds. Each is refused with a code and the
 * offending field, and leaves the service as it was: the same current version, the same stored
 * versions, the same settings, the site still answering with the good version.
 */
describe('cps php: bad input is refused and changes nothing', () => {
  const platform = cliPlatform('cps-php-bad-');
  const { root, cps } = platform;
  const app = ['--app', 'bad'];
  let base = '';
  let good = '';
  let spare = '';

  const fails = async (...args: string[]) =>
    (await cps(...args).then(
      () => {
        throw new Error(`cps ${args.join(' ')} should have failed`);
      },
      (e: unknown) => e,
    )) as { code: number; stdout: string; stderr: string };
  const versions = async (): Promise<Version[]> =>
    (JSON.parse((await cps('--json', 'php', 'versions', 'site', ...app)).stdout) as { versions: Version[] })
      .versions;
  const settings = async (): Promise<Record<string, string>> =>
    (
      JSON.parse((await cps('--json', 'php', 'config', 'site', ...app)).stdout) as {
        settings: Record<string, string>;
      }
    ).settings;
  const info = async () =>
    JSON.parse((await cps('--json', 'service', 'info', 'site', ...app)).stdout) as {
      state: string;
      archive?: { version: string; size: number; digest: string };
      endpoints?: Record<string, { address: string; port: number }>;
    };
  const page = async (): Promise<{ status: number; body: string }> =>
    fetch(`${base}/`, { signal: AbortSignal.timeout(15_000) }).then(
      async (r) => ({ status: r.status, body: await r.text() }),
      (e: unknown) => ({ status: 0, body: String(e) }),
    );
  /** The enabled version, and the versions each node holds (none given a refused archive). */
  const codeStatus = async () =>
    JSON.parse((await cps('--json', 'service', 'call', 'site', 'get_code_status', ...app)).stdout) as {
      enabled?: string;
      nodes: { nodeId: string; role: string; held: string[] }[];
    };
  /** Everything a refusal must leave alone. */
  const service = async () => {
    const i = await info();
    return {
      state: i.state,
      archive: i.archive,
      versions: await versions(),
      code: await codeStatus(),
      settings: await settings(),
      page: await page(),
    };
  };
  let before: Awaited<ReturnType<typeof service>>;

  /** A file of this machine holding `bytes`, as a user would upload it. */
  const file = (name: string, bytes: Buffer): string => {
    const f = join(root, name);
    writeFileSync(f, bytes);
    return f;
  };

  /** A file of `size` zero bytes, sparse on disk (the CLI still reads and sends every byte). */
  const sparse = (name: string, size: number): string => {
    const f = join(root, name);
    const fd = openSync(f, 'w');
    try {
      ftruncateSync(fd, size);
    } finally {
      closeSync(fd);
    }
    return f;
  };

  /**
   * `cps php upload` of `path` is refused: exit code 1, the error's code, and the offending field
   * (its path, message and issue code) on stderr; nothing changed.
   */
  const refusedUpload = async (path: string, code: string, field: string, issue: string) => {
    const r = await fails('php', 'upload', 'site', path, ...app, '--enable');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^error \\[${code}\\]: \\S`));
    expect(lines.slice(1)).toEqual([
      expect.stringMatching(new RegExp(`^  ${escape(field)}: .+ \\(${issue}\\)$`)),
    ]);
    expect(await service()).toEqual(before);
    return r.stderr;
  };

  beforeAll(async () => {
    await platform.init();
    await cps('up');
    await cps('app', 'create', 'bad');
    await cps('service', 'add', 'php', 'site', ...app);
    const first = writeTree(join(root, 'good'), {
      'index.php': `<?php echo ${JSON.stringify(GOOD_PAGE)};\n`,
      'lib/util.php': '<?php\n',
    });
    good = (await cps('php', 'upload', 'site', first, ...app, '--enable')).stdout.trim();
    const second = writeTree(join(root, 'spare'), { 'index.html': '<p>a spare version</p>\n' });
    spare = (await cps('php', 'upload', 'site', second, ...app)).stdout.trim();
    await cps('service', 'start', 'site', ...app);
    base = await eventually(
      async () => {
        const e = (await info()).endpoints?.['http'];
        return e ? `http://${e.address}:${e.port}` : '';
      },
      (u) => u !== '',
      60_000,
    );
    // the code reaches the nodes a few seconds after the service is RUNNING
    await eventually(page, (p) => p.status === 200 && p.body === GOOD_PAGE, 90_000);
    before = await service();
    expect(before.state).toBe('RUNNING');
    expect(before.archive?.version).toBe(good);
    expect(before.code.enabled).toBe(good);
    expect(before.code.nodes.map((n) => n.held)).toContainEqual([good]);
    expect(before.versions.map((v) => [v.version, v.current])).toEqual([
      [good, true],
      [spare, false],
    ]);
  }, 240_000);
  afterAll(() => platform.cleanup(), 60_000);

  it('a corrupt archive: random bytes, a truncated tar.gz, a tar.gz whose tar is cut short', async () => {
    const junk = randomBytes(64 * 1024);
    junk[0] = 0x42; // never the first byte of a gzip (0x1f) or a zip (0x50)
    const stderr = await refusedUpload(
      file('junk.tar.gz', junk),
      'validation',
      '$.archive',
      'unknown_format',
    );
    expect(stderr).toMatch(/not a tar, tar\.gz or zip archive/);

    const whole = gzipSync(tarOf([{ path: 'index.php', data: '<?php echo "never served";\n'.repeat(500) }]));
    const cut = file('cut.tar.gz', whole.subarray(0, Math.floor(whole.length / 2)));
    expect(await refusedUpload(cut, 'validation', '$.archive', 'corrupt')).toMatch(/unexpected end of file/);

    const short = tarOf([{ path: 'index.php', data: 'x'.repeat(100_000) }]).subarray(0, 5_000);
    const shortFile = file('short.tar.gz', gzipSync(short));
    expect(await refusedUpload(shortFile, 'validation', '$.archive', 'corrupt')).toMatch(/Truncated input/);
  });

  it('an archive with no index.php or index.html at its root or one level down (no_index)', async () => {
    const deep = writeTree(join(root, 'deep'), {
      'README.txt': 'the code is below\n',
      'src/app/index.php': '<?php echo "too deep";\n',
    });
    expect(await refusedUpload(deep, 'validation', '$.archive', 'no_index')).toMatch(
      /no index\.php or index\.html at its root or one level down/,
    );
    // one level down, but in one of two top-level directories: the agent would not know which to serve
    const two = writeTree(join(root, 'two'), {
      'a/index.php': '<?php echo "a";\n',
      'b/index.php': '<?php echo "b";\n',
    });
    await refusedUpload(two, 'validation', '$.archive', 'no_index');
  });

  it('a hostile archive: a ".." entry, symlinks pointing outside, gzip bombs', async () => {
    const index = { path: 'index.php', data: '<?php echo "hostile";\n' };
    const hostile: [name: string, bytes: Buffer, field: string, issue: string][] = [
      [
        'dotdot.tar.gz',
        gzipSync(tarOf([index, { path: '../evil.php', data: 'x' }])),
        '$.archive.../evil.php',
        'parent_segment',
      ],
      [
        'climb.tar.gz',
        gzipSync(tarOf([index, { path: 'lib/../../evil.php', data: 'x' }])),
        '$.archive.lib/../../evil.php',
        'parent_segment',
      ],
      [
        'uplink.tar.gz',
        gzipSync(tarOf([index, { path: 'etc', type: 'SymbolicLink', linkpath: '../../../etc' }])),
        '$.archive.etc',
        'link_outside',
      ],
      [
        'abslink.tar.gz',
        gzipSync(tarOf([index, { path: 'passwd', type: 'SymbolicLink', linkpath: '/etc/passwd' }])),
        '$.archive.passwd',
        'link_outside',
      ],
      // 257 MiB of zeros in 1 MiB files, in 290 KB: refused while decompressing, past 256 MiB
      ['bomb.tar.gz', zerosBomb(257, 1), '$.archive.zeros/0256', 'too_large'],
      // one file declaring 300 MiB: refused from its header
      ['big-entry.tar.gz', zerosBomb(1, 300, 'one/'), '$.archive.one/0000', 'entry_too_large'],
    ];
    for (const [name, bytes, field, issue] of hostile) {
      const started = Date.now();
      await refusedUpload(file(name, bytes), 'validation', field, issue);
      console.log(`${name} (${bytes.length} bytes) refused in ${Date.now() - started} ms`);
    }
  });

  it('an upload over the director’s limit (256 MiB): payload_too_large, nothing stored', async () => {
    const big = sparse('big.tar.gz', MAX_ARCHIVE_BYTES + 1);
    const started = Date.now();
    const stderr = await refusedUpload(big, 'payload_too_large', '$.archive', 'too_large');
    console.log(`${MAX_ARCHIVE_BYTES + 1} bytes refused in ${Date.now() - started} ms`);
    expect(stderr).toMatch(`larger than ${MAX_ARCHIVE_BYTES} bytes`);
    rmSync(big);
    // far over: refused while the CLI is still sending, and the CLI still shows the refusal
    const huge = sparse('huge.tar.gz', 320 * 1024 * 1024);
    await refusedUpload(huge, 'payload_too_large', '$.archive', 'too_large');
    rmSync(huge);
  }, 120_000);

  it('enabling a version that does not exist: not_found on $.version', async () => {
    const r = await fails('php', 'enable', 'site', 'vnosuchversion', ...app);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error \[not_found\]: no archive version vnosuchversion\n/);
    expect(r.stderr).toMatch(/^ {2}\$\.version: not a stored version of this service \(unknown_version\)$/m);
    expect(await service()).toEqual(before);
    // not a version's name at all: refused by the route, naming the path parameter
    const odd = await fails('php', 'enable', 'site', 'Not-A-Version!', ...app);
    expect(odd.code).toBe(1);
    expect(odd.stderr).toMatch(/^error \[validation\]: /);
    expect(odd.stderr).toMatch(/^ {2}path\.version: an archive version: .* \(invalid_format\)$/m);
    expect(await service()).toEqual(before);
  });

  it('deleting the active version: conflict on $.version; deleting an unknown one: not_found', async () => {
    const r = await fails('php', 'delete', 'site', good, ...app);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(`^error \\[conflict\\]: archive ${good} is the current version of site\\n`),
    );
    expect(r.stderr).toMatch(
      /^ {2}\$\.version: the active version cannot be deleted; enable another first \(active_version\)$/m,
    );
    expect(await service()).toEqual(before);
    const unknown = await fails('php', 'delete', 'site', 'vnosuchversion', ...app);
    expect(unknown.stderr).toMatch(/^error \[not_found\]/);
    expect(unknown.stderr).toMatch(/\$\.version: .* \(unknown_version\)$/m);
    expect(await service()).toEqual(before);
  });

  it('php settings out of range or unknown: refused naming the key, none applied', async () => {
    expect(before.settings['memory_limit']).toBe('128M');
    const big = await fails('php', 'config', 'site', 'memory_limit=9G', ...app);
    expect(big.code).toBe(1);
    expect(big.stderr).toMatch(/^error \[validation\]: .*memory_limit/);
    expect(big.stderr).toMatch(
      /^ {2}\$\.settings\.memory_limit: memory_limit must be between 16M and 2048M \(out_of_range\)$/m,
    );
    expect(await service()).toEqual(before);

    const unknown = await fails('php', 'config', 'site', 'no_such=1', ...app);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^error \[validation\]: no_such is not a setting/);
    expect(unknown.stderr).toMatch(
      /^ {2}\$\.settings\.no_such: no_such is not a setting; known: .*memory_limit.* \(unknown_setting\)$/m,
    );
    expect(await service()).toEqual(before);

    // a good setting beside a bad one: neither is applied; both keys named
    const mixed = await fails(
      'php',
      'config',
      'site',
      'memory_limit=256M',
      'max_execution_time=0',
      'no_such=1',
      ...app,
    );
    expect(mixed.stderr).toMatch(/\$\.settings\.max_execution_time: .* \(out_of_range\)$/m);
    expect(mixed.stderr).toMatch(/\$\.settings\.no_such: .* \(unknown_setting\)$/m);
    expect(mixed.stderr).not.toMatch(/\$\.settings\.memory_limit/);
    expect(await service()).toEqual(before);
    expect((await settings())['memory_limit']).toBe('128M');
  });

  it('a certificate that is not its key’s: key_mismatch on $.key, no HTTPS; --platform then serves HTTPS the written CA vouches for', async () => {
    const selfSigned = (name: string) => {
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-days',
          '2',
          '-subj',
          `/CN=${name}`,
          '-keyout',
          join(root, `${name}.key`),
          '-out',
          join(root, `${name}.crt`),
        ],
        { stdio: 'ignore' },
      );
      return { cert: join(root, `${name}.crt`), key: join(root, `${name}.key`) };
    };
    const [one, two] = [selfSigned('one'), selfSigned('two')];
    const r = await fails(
      'php',
      'certificate',
      'site',
      '--certificate',
      one.cert,
      '--private-key',
      two.key,
      ...app,
    );
    expect(r.stderr).toMatch(/^error \[validation\]: /);
    expect(r.stderr).toMatch(/^ {2}\$\.key: .+ \(key_mismatch\)$/m);
    expect((await cps('php', 'certificate', 'site', ...app)).stdout).toMatch(/^no certificate/);
    expect(await service()).toEqual(before);

    const ca = join(root, 'services-ca.pem');
    const shown = (await cps('php', 'certificate', 'site', '--platform', '--ca-out', ca, ...app)).stdout;
    expect(shown).toMatch(/^issuer: .*cps services/m);
    const https = await eventually(
      async () => (await info()).endpoints?.['https'],
      (e) => e !== undefined,
      30_000,
    );
    const body = await eventually(
      () => httpsText(https!, readFileSync(ca)),
      (b) => b === GOOD_PAGE,
      30_000,
    );
    expect(body).toBe(GOOD_PAGE);
    expect((await cps('php', 'certificate', 'site', '--remove', ...app)).stdout).toMatch(/^HTTPS stopped/);
  }, 120_000);

  it('after all that, the good version still serves, and a good change still goes through', async () => {
    expect(await page()).toEqual({ status: 200, body: GOOD_PAGE });
    expect((await cps('php', 'enable', 'site', spare, ...app)).stdout).toMatch(`version ${spare} is`);
    await eventually(page, (p) => p.status === 200 && p.body === '<p>a spare version</p>\n', 60_000);
    expect((await cps('php', 'config', 'site', 'memory_limit=256M', ...app)).stdout).toMatch(
      /^memory_limit=256M$/m,
    );
  }, 120_000);
});
