import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CpsError } from '@cps/core';

/** One director the CLI talks to: its URL, the token, and the CA its certificate chains to. */
export interface Context {
  readonly url: string;
  readonly token?: string;
  /** Path of the CA bundle (PEM). */
  readonly ca?: string;
  /** Paths of a client certificate and its key (PEM), to sign in without a token. */
  readonly cert?: string;
  readonly key?: string;
  readonly user?: string;
}

interface ConfigFile {
  current?: string;
  contexts: Record<string, Context>;
}

/** The platform's data directory: `CPS_HOME`, else `$XDG_DATA_HOME/cps` (the platform library's rule). */
export const defaultHome = (env: NodeJS.ProcessEnv = process.env): string =>
  env['CPS_HOME'] ?? join(env['XDG_DATA_HOME'] ?? join(homedir(), '.local', 'share'), 'cps');

/** `$XDG_CONFIG_HOME/cps` (default `~/.config/cps`); `CPS_CONFIG_DIR` overrides it (tests). */
export const configDir = (env: NodeJS.ProcessEnv = process.env): string =>
  env['CPS_CONFIG_DIR'] ?? join(env['XDG_CONFIG_HOME'] ?? join(homedir(), '.config'), 'cps');

const file = (): string => join(configDir(), 'config.json');

const read = (): ConfigFile => {
  if (!existsSync(file())) return { contexts: {} };
  try {
    return JSON.parse(readFileSync(file(), 'utf8')) as ConfigFile;
  } catch {
    throw new CpsError('validation', `${file()} is not valid JSON: fix or remove it`);
  }
};

const write = (c: ConfigFile): void => {
  mkdirSync(configDir(), { recursive: true, mode: 0o700 });
  writeFileSync(file(), JSON.stringify(c, null, 2) + '\n', { mode: 0o600 });
  chmodSync(file(), 0o600);
};

/** Saves a context (and makes it the current one unless `current: false`). */
export const saveContext = (name: string, ctx: Context, o: { current?: boolean } = {}): void => {
  const c = read();
  c.contexts[name] = ctx;
  if (o.current !== false) c.current = name;
  write(c);
};

export const removeToken = (name: string): void => {
  const c = read();
  const ctx = c.contexts[name];
  if (!ctx) return;
  const { token: _token, ...rest } = ctx;
  void _token;
  c.contexts[name] = rest;
  write(c);
};

export const contexts = (): { current?: string; contexts: Record<string, Context> } => read();

/** Makes `name` the current context. */
export const useContext = (name: string): void => {
  const c = read();
  if (!c.contexts[name]) throw new CpsError('not_found', `no context ${name}`);
  c.current = name;
  write(c);
};

/**
 * The context a command uses: flags first, then `CPS_URL`, `CPS_TOKEN`, `CPS_CA`, `CPS_CERT`, `CPS_KEY`, then the named (or
 * current) context of the config file.
 */
export const resolveContext = (
  flags: { context?: string; url?: string; token?: string; ca?: string; cert?: string; key?: string },
  env: NodeJS.ProcessEnv = process.env,
): { name: string; ctx: Context } => {
  const c = read();
  const name = flags.context ?? env['CPS_CONTEXT'] ?? c.current ?? '';
  const saved: Partial<Context> = c.contexts[name] ?? {};
  const url = flags.url ?? env['CPS_URL'] ?? saved.url;
  const named = flags.context ?? env['CPS_CONTEXT'];
  if (!url && named !== undefined && !c.contexts[named])
    throw new CpsError(
      'not_found',
      `no context ${named} (${Object.keys(c.contexts).join(', ') || 'none yet'}: see \`cps context list\`)`,
    );
  if (!url)
    throw new CpsError(
      'unauthenticated',
      'no director: run `cps up` for a local platform, or `cps login --url URL`',
    );
  const token = flags.token ?? env['CPS_TOKEN'] ?? saved.token;
  const ca = flags.ca ?? env['CPS_CA'] ?? saved.ca;
  const cert = flags.cert ?? env['CPS_CERT'] ?? saved.cert;
  const key = flags.key ?? env['CPS_KEY'] ?? saved.key;
  if (cert && !key)
    throw new CpsError('validation', 'a client certificate needs its key', [
      { path: '--key', code: 'required', message: 'give --key (or CPS_KEY) with --cert' },
    ]);
  return {
    name,
    ctx: {
      url,
      ...(token ? { token } : {}),
      ...(ca ? { ca } : {}),
      ...(cert && key ? { cert, key } : {}),
      ...(saved.user ? { user: saved.user } : {}),
    },
  };
};
