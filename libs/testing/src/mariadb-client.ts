import { execFile } from 'node:child_process';

/** Where a MariaDB server listens. */
export interface SqlServer {
  readonly host: string;
  readonly port: number;
}

/**
 * Runs `statements` with the real `mariadb` client as `user`, as a user of a mysql service would
 * (the password in its environment); answers its output, trimmed, or rejects with the client's error.
 */
export const mariadb = (at: SqlServer, user: string, password: string, statements: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const child = execFile(
      'mariadb',
      [
        '--no-defaults',
        '--protocol=TCP',
        `-h${at.host}`,
        `-P${at.port}`,
        `-u${user}`,
        '--batch',
        '--skip-column-names',
      ],
      { env: { PATH: process.env.PATH ?? '', MYSQL_PWD: password }, timeout: 15_000 },
      (err, stdout, stderr) =>
        err ? reject(new Error(stderr.trim() || err.message)) : resolve(stdout.trim()),
    );
    // a server that dies under the client ends its input early
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(statements);
  });
