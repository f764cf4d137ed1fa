import { ValidationError, type Issue } from '@cps/core';

/**
 * The php settings a user may change (`update_php_configuration`), their defaults and their bounds,
 * and the files php-fpm runs from: `php.ini` and the pool. Pure: the agent writes what these give.
 */

export type PhpSettings = Readonly<Record<string, string>>;

const MiB = 1024 * 1024;

/** `128M`, `2G`, `512K` or bytes, as php reads sizes; undefined when it is not one. */
export const bytesOf = (v: string): number | undefined => {
  const m = /^(\d{1,10})([KMG]?)$/i.exec(v.trim());
  if (!m) return undefined;
  const unit = { '': 1, K: 1024, M: MiB, G: 1024 * MiB }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G'];
  return Number(m[1]) * unit;
};

type Rule =
  | { readonly kind: 'size'; readonly min: number; readonly max: number }
  | { readonly kind: 'int'; readonly min: number; readonly max: number }
  | { readonly kind: 'bool' }
  | { readonly kind: 'timezone' };

/** Every key `update_php_configuration` accepts, with its rule. */
export const PHP_SETTING_RULES: Readonly<Record<string, Rule>> = {
  memory_limit: { kind: 'size', min: 16 * MiB, max: 2048 * MiB },
  max_execution_time: { kind: 'int', min: 1, max: 3600 },
  upload_max_filesize: { kind: 'size', min: 1 * MiB, max: 1024 * MiB },
  post_max_size: { kind: 'size', min: 1 * MiB, max: 1024 * MiB },
  display_errors: { kind: 'bool' },
  'date.timezone': { kind: 'timezone' },
  'opcache.memory_consumption': { kind: 'int', min: 16, max: 1024 },
  'opcache.interned_strings_buffer': { kind: 'int', min: 4, max: 256 },
  'opcache.max_accelerated_files': { kind: 'int', min: 200, max: 1_000_000 },
};

export const PHP_DEFAULTS: PhpSettings = {
  memory_limit: '128M',
  max_execution_time: '30',
  upload_max_filesize: '16M',
  post_max_size: '16M',
  display_errors: 'Off',
  'date.timezone': 'UTC',
  'opcache.memory_consumption': '128',
  'opcache.interned_strings_buffer': '16',
  'opcache.max_accelerated_files': '20000',
};

const timezones = (): ReadonlySet<string> => {
  const zones = new Set(
    (Intl as { supportedValuesOf?: (k: string) => string[] }).supportedValuesOf?.('timeZone') ?? [],
  );
  zones.add('UTC');
  return zones;
};

const BOOL: Readonly<Record<string, 'On' | 'Off'>> = {
  on: 'On',
  off: 'Off',
  true: 'On',
  false: 'Off',
  '1': 'On',
  '0': 'Off',
  yes: 'On',
  no: 'Off',
};

/** One value checked against its rule: its normal form, or the issue. */
const normal = (key: string, value: string, rule: Rule): string | Issue => {
  const path = `$.settings.${key}`;
  const v = value.trim();
  switch (rule.kind) {
    case 'size': {
      const b = bytesOf(v);
      if (b === undefined)
        return { path, code: 'invalid_value', message: `${key} is a size such as 64M, 512K or 1G` };
      if (b < rule.min || b > rule.max)
        return {
          path,
          code: 'out_of_range',
          message: `${key} must be between ${rule.min / MiB}M and ${rule.max / MiB}M`,
        };
      return v.toUpperCase();
    }
    case 'int': {
      if (!/^\d{1,10}$/.test(v)) return { path, code: 'invalid_value', message: `${key} is a whole number` };
      const n = Number(v);
      if (n < rule.min || n > rule.max)
        return { path, code: 'out_of_range', message: `${key} must be between ${rule.min} and ${rule.max}` };
      return String(n);
    }
    case 'bool': {
      const b = BOOL[v.toLowerCase()];
      return b ?? { path, code: 'invalid_value', message: `${key} is On or Off` };
    }
    case 'timezone':
      return timezones().has(v)
        ? v
        : { path, code: 'invalid_value', message: `${key} is a time zone such as Europe/Amsterdam or UTC` };
  }
};

/**
 * `changes` applied to `current`: every key known, every value within its bounds, and
 * `post_max_size` at least `upload_max_filesize` (an upload travels in a post). All issues at once;
 * nothing applied when there is one.
 */
export const applyPhpSettings = (
  current: PhpSettings,
  changes: Readonly<Record<string, unknown>>,
): PhpSettings => {
  const issues: Issue[] = [];
  const next: Record<string, string> = { ...PHP_DEFAULTS, ...current };
  for (const [key, raw] of Object.entries(changes)) {
    const rule = PHP_SETTING_RULES[key];
    if (!rule) {
      issues.push({
        path: `$.settings.${key}`,
        code: 'unknown_setting',
        message: `${key} is not a setting; known: ${Object.keys(PHP_SETTING_RULES).join(', ')}`,
      });
      continue;
    }
    if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean') {
      issues.push({ path: `$.settings.${key}`, code: 'invalid_value', message: `${key} is a string` });
      continue;
    }
    const v = normal(key, String(raw), rule);
    if (typeof v === 'string') next[key] = v;
    else issues.push(v);
  }
  if (issues.length === 0 && bytesOf(next['post_max_size']!)! < bytesOf(next['upload_max_filesize']!)!)
    issues.push({
      path: `$.settings.${'post_max_size' in changes ? 'post_max_size' : 'upload_max_filesize'}`,
      code: 'out_of_range',
      message: `post_max_size (${next['post_max_size']}) must be at least upload_max_filesize (${next['upload_max_filesize']})`,
    });
  if (issues.length > 0) throw new ValidationError(issues.map((i) => i.message).join('; '), issues);
  return next;
};

/** nginx's `client_max_body_size` for these settings: the larger of the post and upload sizes, plus 1 MiB. */
export const bodyLimit = (s: PhpSettings): string => {
  const b = Math.max(bytesOf(s['post_max_size'] ?? '')!, bytesOf(s['upload_max_filesize'] ?? '')!);
  return `${Math.ceil(b / MiB) + 1}m`;
};

/** The extensions loaded, in an order that satisfies their dependencies (those present are used). */
export const PHP_EXTENSIONS = [
  'mysqlnd',
  'pdo',
  'xml',
  'calendar',
  'ctype',
  'curl',
  'dom',
  'exif',
  'fileinfo',
  'gd',
  'gettext',
  'iconv',
  'intl',
  'mbstring',
  'mysqli',
  'pdo_mysql',
  'phar',
  'posix',
  'simplexml',
  'sockets',
  'tokenizer',
  'xmlreader',
  'xmlwriter',
  'xsl',
  'zip',
] as const;

/**
 * The `php.ini` of a node: the user's settings, the extensions found, opcache on, and the node's
 * own directories for sessions, uploads and temporary files (`work` is the absolute work directory).
 */
export const phpIni = (o: {
  readonly settings: PhpSettings;
  readonly extensions: readonly string[];
  readonly work: string;
}): string => {
  const s = { ...PHP_DEFAULTS, ...o.settings };
  const lines = [
    '[PHP]',
    'engine = On',
    'expose_php = Off',
    'short_open_tag = Off',
    `memory_limit = ${s['memory_limit']}`,
    `max_execution_time = ${s['max_execution_time']}`,
    `upload_max_filesize = ${s['upload_max_filesize']}`,
    `post_max_size = ${s['post_max_size']}`,
    `display_errors = ${s['display_errors']}`,
    'log_errors = On',
    'error_reporting = E_ALL & ~E_DEPRECATED & ~E_STRICT',
    'allow_url_include = Off',
    'file_uploads = On',
    `upload_tmp_dir = "${o.work}/tmp"`,
    `sys_temp_dir = "${o.work}/tmp"`,
    `session.save_path = "${o.work}/sessions"`,
    '',
    '[Date]',
    `date.timezone = "${s['date.timezone']}"`,
    '',
    ...o.extensions.map((e) => `extension = ${e}`),
    'zend_extension = opcache',
    '',
    '[opcache]',
    'opcache.enable = 1',
    `opcache.memory_consumption = ${s['opcache.memory_consumption']}`,
    `opcache.interned_strings_buffer = ${s['opcache.interned_strings_buffer']}`,
    `opcache.max_accelerated_files = ${s['opcache.max_accelerated_files']}`,
    'opcache.validate_timestamps = 1',
    'opcache.revalidate_freq = 2',
  ];
  return lines.join('\n') + '\n';
};

/** A value of the pool's `env[...]`: php-fpm parses them as INI, so only plain characters pass. */
export const poolEnvValue = (v: string): boolean => /^[A-Za-z0-9 ._:@/+=,-]{0,1024}$/.test(v);

/**
 * php-fpm's configuration: one pool listening on the node's address (nginx on the same node only),
 * static children, a clean environment with `env` only (values that cannot be written plainly are
 * left out, and named in `skipped`).
 */
export const fpmConf = (o: {
  readonly work: string;
  readonly address: string;
  readonly port: number;
  readonly children: number;
  readonly env: Readonly<Record<string, string>>;
}): { readonly conf: string; readonly skipped: readonly string[] } => {
  const skipped: string[] = [];
  const env: string[] = [];
  for (const [k, v] of Object.entries(o.env).sort(([a], [b]) => a.localeCompare(b))) {
    if (!/^[A-Z_][A-Z0-9_]{0,63}$/.test(k) || !poolEnvValue(v)) skipped.push(k);
    else env.push(`env[${k}] = "${v}"`);
  }
  const conf = [
    '[global]',
    `pid = ${o.work}/php/fpm.pid`,
    // with `-O` php-fpm logs to its stderr (the node's log); it still wants a file it can open
    `error_log = ${o.work}/logs/php-fpm.log`,
    'daemonize = no',
    // a reload lets running requests finish (up to this long) before the children are replaced
    'process_control_timeout = 20s',
    'log_level = warning',
    '',
    '[app]',
    `listen = ${o.address}:${o.port}`,
    `listen.allowed_clients = ${o.address}`,
    'listen.backlog = 511',
    'pm = static',
    `pm.max_children = ${o.children}`,
    'pm.max_requests = 10000',
    'clear_env = yes',
    'catch_workers_output = yes',
    'decorate_workers_output = no',
    'security.limit_extensions = .php',
    `chdir = ${o.work}`,
    ...env,
  ];
  return { conf: conf.join('\n') + '\n', skipped };
};
