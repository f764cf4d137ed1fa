import { once } from 'node:events';
import { createWriteStream, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { link, rename, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { CpsError } from '@cps/core';
import type { components } from '@cps/sdk';
import { archiveBytes } from '../local-archives.js';
import { json, table, usage } from '../output.js';
import { callMethod, director, examples, needApp, type Globals } from './shared.js';

type ArchiveVersion = components['schemas']['ArchiveVersion'];

/** A PHP setting's name as `cps php config` takes it: `memory_limit`, `date.timezone`. */
const SETTING_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;

/**
 * `key=value` words as the settings `update_php_configuration` takes, values as strings (the
 * service checks them). Split at the first `=`: a value may hold more. A word without `=`, a bad
 * name or a name given twice is a validation error naming that word.
 */
export const parseSettings = (words: readonly string[]): Record<string, string> => {
  // a Map, then own properties: a name such as __proto__ stays a setting
  const settings = new Map<string, string>();
  for (const w of words) {
    const at = w.indexOf('=');
    const key = at < 0 ? w : w.slice(0, at);
    const refuse = (code: string, message: string) =>
      new CpsError('validation', `${JSON.stringify(w)}: ${message}`, [{ path: w, code, message }]);
    if (at < 0) throw refuse('invalid_setting', 'give key=value');
    if (!SETTING_NAME.test(key)) throw refuse('invalid_name', 'a PHP setting name: letters, digits, _ . -');
    if (settings.has(key)) throw refuse('duplicate', `${key} is given twice`);
    settings.set(key, w.slice(at + 1));
  }
  return Object.fromEntries(settings);
};

const scalar = (v: unknown): string =>
  v === null || v === undefined
    ? ''
    : typeof v === 'string'
      ? v
      : typeof v === 'number' || typeof v === 'boolean'
        ? String(v)
        : JSON.stringify(v);

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The settings in a php method's answer, values as text: its `settings` object, or with `whole`
 * the answer itself when it has none; undefined when there are none.
 */
export const settingsOf = (
  answer: unknown,
  o: { readonly whole?: boolean } = {},
): Record<string, string> | undefined => {
  if (!isRecord(answer)) return undefined;
  const s = isRecord(answer['settings']) ? answer['settings'] : o.whole ? answer : undefined;
  return s && Object.fromEntries(Object.entries(s).map(([k, v]) => [k, scalar(v)]));
};

/** Settings as `key=value` lines, in their order. */
export const settingLines = (settings: Readonly<Record<string, string>>): string[] =>
  Object.entries(settings).map(([k, v]) => `${k}=${v}`);

/** The rows of `cps php versions`: `*` marks the current version. */
export const versionRows = (versions: readonly ArchiveVersion[]): Record<string, unknown>[] =>
  versions.map((v) => ({
    version: v.version,
    size: v.size,
    stored: v.stored,
    current: v.current ? '*' : '',
  }));

/**
 * The file `cps php download` writes: that of `-o`, else none (stdout), which must not be a
 * terminal (an archive is bytes, not text).
 */
export const downloadTarget = (output: string | undefined, stdoutIsTty: boolean): string | undefined => {
  if (output) return output;
  if (stdoutIsTty) throw usage('an archive is not for a terminal: give -o FILE, or redirect stdout');
  return undefined;
};

const svcPath = (app: string, svc: string) => ({ params: { path: { app, svc } } });
const versionPath = (app: string, svc: string, version: string) => ({
  params: { path: { app, svc, version } },
});

/** Writes the stream to stdout, waiting when it is full; stdout stays open. */
const toStdout = async (body: ReadableStream<Uint8Array>): Promise<void> => {
  for await (const chunk of Readable.fromWeb(body as never) as AsyncIterable<Uint8Array>)
    if (!process.stdout.write(chunk)) await once(process.stdout, 'drain');
};

const exists = (file: string): CpsError =>
  new CpsError('conflict', `${file} exists: give another -o FILE, or remove it`, [
    { path: file, code: 'exists', message: 'not overwritten' },
  ]);

/**
 * Writes the stream to `file` through a temporary name beside it, then links it in: an interrupted
 * download leaves nothing, and a file that exists is never overwritten.
 */
const toFile = async (body: ReadableStream<Uint8Array>, file: string): Promise<number> => {
  const partial = `${file}.partial-${process.pid}`;
  let size = 0;
  const counted = Readable.fromWeb(body as never).on('data', (c: Uint8Array) => (size += c.length));
  try {
    await pipeline(counted, createWriteStream(partial, { flags: 'wx', mode: 0o644 }));
    await link(partial, file).catch(async (e: NodeJS.ErrnoException) => {
      if (e.code === 'EEXIST') throw exists(file);
      // a file system without hard links (vfat): checked, then renamed
      if (existsSync(file)) throw exists(file);
      await rename(partial, file);
    });
    return size;
  } finally {
    await rm(partial, { force: true });
  }
};

/** `cps php …`: a php service's code versions and its PHP settings, through the director. */
export const phpCommands = (program: Command, g: Globals): void => {
  const php = examples(
    program
      .command('php')
      .description('a php service: versions of its code, and its PHP settings (give --app)'),
    [
      'cps php upload web ./site --app shop',
      'cps php versions web --app shop',
      'cps php enable web v1a2b3c4d5e6f --app shop',
      'cps php config web memory_limit=256M --app shop',
    ],
  );

  examples(php.command('versions <svc>'), [
    'cps php versions web --app shop',
    'cps --json php versions web --app shop',
  ])
    .description('the stored versions of the code, oldest first; * marks the current one')
    .option('--app <app>', 'application')
    .action(async (svc: string, o: { app?: string }) => {
      const d = director(g);
      const r = await d.ask(
        d.cps.GET('/v1/applications/{app}/services/{svc}/archives', svcPath(needApp(o), svc)),
      );
      if (g().json) return json(r);
      if (r.versions.length === 0) console.error('no versions yet: cps php upload SVC PATH --app APP');
      else table(versionRows(r.versions), ['version', 'size', 'stored', 'current']);
    });

  examples(php.command('upload <svc> <path>'), [
    'cps php upload web site.tar.gz --app shop',
    'cps php upload web ./site --app shop --enable',
  ])
    .description(
      'store a new version of the code: a tar, tar.gz or zip file, or a directory (packed as tar.gz); prints the version',
    )
    .option('--app <app>', 'application')
    .option('--enable', 'make it the current version at once')
    .action(async (svc: string, path: string, o: { app?: string; enable?: boolean }) => {
      const app = needApp(o);
      if (!existsSync(path))
        throw new CpsError('validation', `${path}: no such file or directory`, [
          { path, code: 'not_found', message: 'no such file or directory' },
        ]);
      const bytes = await archiveBytes(path);
      const d = director(g);
      const r = await d.ask(
        d.cps.PUT('/v1/applications/{app}/services/{svc}/archive', {
          params: { path: { app, svc }, query: { enable: o.enable ? 'true' : 'false' } },
          body: bytes as never,
          bodySerializer: (b: unknown) => b as Uint8Array,
          headers: { 'content-type': 'application/octet-stream' },
        }),
      );
      if (g().json) return json(r);
      console.log(r.version);
      console.error(
        r.current
          ? `uploaded ${path} (${r.size} bytes): the current version`
          : `uploaded ${path} (${r.size} bytes); make it current with: cps php enable ${svc} ${r.version} --app ${app}`,
      );
    });

  examples(php.command('enable <svc> <version>'), ['cps php enable web v1a2b3c4d5e6f --app shop'])
    .description('make a stored version the current code (the nodes get it)')
    .option('--app <app>', 'application')
    .action(async (svc: string, version: string, o: { app?: string }) => {
      const d = director(g);
      const r = await d.ask(
        d.cps.POST(
          '/v1/applications/{app}/services/{svc}/archives/{version}/enable',
          versionPath(needApp(o), svc, version),
        ),
      );
      if (g().json) return json(r);
      console.log(`version ${r.version} is the current code`);
    });

  examples(php.command('delete <svc> <version>'), ['cps php delete web v1a2b3c4d5e6f --app shop'])
    .description('delete a stored version (not the current one: enable another first)')
    .option('--app <app>', 'application')
    .action(async (svc: string, version: string, o: { app?: string }) => {
      const d = director(g);
      await d.ask(
        d.cps.DELETE(
          '/v1/applications/{app}/services/{svc}/archives/{version}',
          versionPath(needApp(o), svc, version),
        ),
      );
      if (g().json) return json({ deleted: version });
      console.log(`deleted version ${version}`);
    });

  examples(php.command('download <svc> <version>'), [
    'cps php download web v1a2b3c4d5e6f --app shop -o site.tar.gz',
    'cps php download web v1a2b3c4d5e6f --app shop | tar -tz',
  ])
    .description('a stored version as it was uploaded: to -o FILE, or to stdout when it is not a terminal')
    .option('--app <app>', 'application')
    .option('-o, --output <file>', 'the file to write (not overwritten if it exists)')
    .action(async (svc: string, version: string, o: { app?: string; output?: string }) => {
      const app = needApp(o);
      const target = downloadTarget(o.output, process.stdout.isTTY === true);
      if (target !== undefined && existsSync(target)) throw exists(target);
      const d = director(g);
      const body = await d.ask(
        d.cps.GET('/v1/applications/{app}/services/{svc}/archives/{version}', {
          ...versionPath(app, svc, version),
          parseAs: 'stream',
        }),
      );
      if (!body) throw new CpsError('internal', `the director answered no content for ${version}`);
      if (target === undefined) return toStdout(body);
      const size = await toFile(body, target);
      if (g().json) return json({ version, file: target, size });
      console.error(`wrote ${target} (${size} bytes)`);
    });

  examples(php.command('config <svc> [settings...]'), [
    'cps php config web --app shop',
    'cps php config web memory_limit=256M upload_max_filesize=32M --app shop',
    'cps --json php config web --app shop',
  ])
    .description(
      'the PHP settings of the service; with key=value words, change those (the service checks them)',
    )
    .option('--app <app>', 'application')
    .action(async (svc: string, words: string[], o: { app?: string }) => {
      const app = needApp(o);
      const settings = parseSettings(words);
      const update = Object.keys(settings).length > 0;
      const method = update ? 'update_php_configuration' : 'get_php_configuration';
      const result = await callMethod(director(g), app, svc, method, update ? { settings } : {});
      if (g().json) return json(result);
      const shown = update ? (settingsOf(result) ?? settings) : settingsOf(result, { whole: true });
      if (!shown) throw new CpsError('internal', `the php service answered ${method} without settings`);
      if (update) console.error(`updated ${settingLines(settings).join(' ')}`);
      for (const line of settingLines(shown)) console.log(line);
    });
  examples(php.command('certificate <svc>'), [
    'cps php certificate web --certificate site.crt --private-key site.key --app shop',
    'cps php certificate web --certificate site.crt --private-key site.key --redirect --app shop',
    'cps php certificate web --platform --ca-out services-ca.pem --app shop',
    'cps php certificate web --app shop',
    'cps php certificate web --remove --app shop',
  ])
    .description(
      "the proxy's HTTPS certificate; with --certificate and --private-key (PEM files), serve HTTPS with them, or with --platform with one the platform's services CA issues for the proxy's address (--redirect: plain HTTP redirects to HTTPS)",
    )
    .option('--app <app>', 'application')
    .option('--certificate <file>', 'the certificate, then its chain (PEM)')
    .option('--private-key <file>', "the certificate's private key (PEM)")
    .option('--platform', "a certificate from the platform's services CA, renewed by the service")
    .option(
      '--ca-out <file>',
      'with --platform: where to write the services CA, for browsers and curl to trust',
    )
    .option('--redirect', 'plain HTTP answers with a redirection to HTTPS')
    .option('--remove', 'stop serving HTTPS')
    .action(
      async (
        svc: string,
        o: {
          app?: string;
          certificate?: string;
          privateKey?: string;
          platform?: boolean;
          caOut?: string;
          redirect?: boolean;
          remove?: boolean;
        },
      ) => {
        const app = needApp(o);
        const d = director(g);
        if (o.remove) {
          const r = await callMethod(d, app, svc, 'remove_certificate', {});
          return g().json ? json(r) : console.log('HTTPS stopped');
        }
        if (!o.certificate !== !o.privateKey)
          throw new CpsError('validation', 'give both --certificate and --private-key', [
            {
              path: o.certificate ? '--private-key' : '--certificate',
              code: 'required',
              message: 'a certificate needs its key',
            },
          ]);
        if (o.caOut && !o.platform)
          throw new CpsError('validation', '--ca-out goes with --platform', [
            { path: '--ca-out', code: 'conflict', message: 'only a platform certificate has a services CA' },
          ]);
        if (o.platform && o.certificate)
          throw new CpsError('validation', 'give --platform or --certificate and --private-key, not both', [
            { path: '--platform', code: 'conflict', message: 'the platform makes the key itself' },
          ]);
        const r = o.platform
          ? await callMethod(d, app, svc, 'set_certificate', {
              platform: true,
              redirect_http: o.redirect === true,
            })
          : o.certificate
            ? await callMethod(d, app, svc, 'set_certificate', {
                certificate: readFileSync(o.certificate, 'utf8'),
                key: readFileSync(o.privateKey!, 'utf8'),
                redirect_http: o.redirect === true,
              })
            : await callMethod(d, app, svc, 'get_certificate', {});
        const ca = (r as { ca?: unknown }).ca;
        if (o.caOut && typeof ca === 'string') {
          writeFileSync(o.caOut, ca, { mode: 0o644 });
          console.error(`the services CA the certificate chains to is in ${o.caOut}`);
        }
        if (g().json) return json(r);
        const c = ((r as { certificate?: unknown }).certificate ?? r) as Record<string, unknown>;
        if (!c['subject']) return console.log('no certificate: the proxy serves plain HTTP');
        for (const k of ['subject', 'issuer', 'validTo', 'names', 'fingerprint256', 'redirect_http'])
          console.log(`${k}: ${Array.isArray(c[k]) ? (c[k] as string[]).join(', ') : String(c[k])}`);
      },
    );
};
