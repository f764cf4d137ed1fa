import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { CpsError, isErrorCode, type Issue } from '@cps/core';
import type { PlatformHome } from '@cps/platform';

/** The CLI's credentials for a platform (like a kubeconfig): `<home>/cli.json`, mode 0600. */
export interface CliCredentials {
  readonly url: string;
  readonly token: string;
}

const credentialsFile = (home: PlatformHome): string => join(home.dir, 'cli.json');

export const saveCredentials = (home: PlatformHome, c: CliCredentials): void =>
  writeFileSync(credentialsFile(home), JSON.stringify(c, null, 2) + '\n', { mode: 0o600 });

/**
 * A client of the platform's director over HTTPS, trusting only the platform CA (`<home>/ca.pem`).
 * Error answers (problem+json) become CpsErrors with their code and issues.
 */
export class DirectorClient {
  constructor(
    readonly url: string,
    private readonly ca: string,
    private readonly token?: string,
  ) {}

  static of(home: PlatformHome): DirectorClient {
    const file = credentialsFile(home);
    if (!existsSync(file))
      throw new CpsError(
        'unauthenticated',
        `no credentials in ${file}: run \`cps up\` on this platform first`,
      );
    const c = JSON.parse(readFileSync(file, 'utf8')) as CliCredentials;
    return new DirectorClient(c.url, readFileSync(join(home.dir, 'ca.pem'), 'utf8'), c.token);
  }

  static anonymous(home: PlatformHome, url: string): DirectorClient {
    return new DirectorClient(url, readFileSync(join(home.dir, 'ca.pem'), 'utf8'));
  }

  withToken(token: string): DirectorClient {
    return new DirectorClient(this.url, this.ca, token);
  }

  async call<T>(
    method: string,
    path: string,
    body?: { json?: unknown; text?: string; type?: string },
  ): Promise<{ status: number; body: T; location?: string }> {
    const data =
      body?.text !== undefined
        ? Buffer.from(body.text)
        : body?.json !== undefined
          ? Buffer.from(JSON.stringify(body.json))
          : undefined;
    return new Promise((resolve, reject) => {
      const req = request(
        new URL(path, this.url),
        {
          method,
          ca: this.ca,
          headers: {
            ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
            ...(data
              ? { 'content-type': body?.type ?? 'application/json', 'content-length': String(data.length) }
              : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown;
            try {
              parsed = text ? JSON.parse(text) : undefined;
            } catch {
              parsed = text;
            }
            const status = res.statusCode ?? 0;
            if (status >= 400) {
              const p = parsed as { code?: string; detail?: string; issues?: Issue[] } | undefined;
              const code = isErrorCode(p?.code) ? p.code : 'internal';
              return reject(new CpsError(code, p?.detail ?? `HTTP ${status}`, p?.issues ?? []));
            }
            const location = res.headers.location;
            resolve({ status, body: parsed as T, ...(location ? { location } : {}) });
          });
        },
      );
      req.on('error', (e) => reject(new CpsError('unavailable', `director at ${this.url}: ${e.message}`)));
      if (data) req.write(data);
      req.end();
    });
  }

  /** Follows an operation until it ends; answers it. */
  async wait(location: string, timeoutMs = 300_000): Promise<{ state: string; reason?: string }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const op = (await this.call<{ state: string; reason?: string }>('GET', location)).body;
      if (op.state !== 'running') return op;
      if (Date.now() > deadline) throw new CpsError('timeout', `operation ${location} still running`);
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}
