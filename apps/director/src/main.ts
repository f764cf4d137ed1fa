import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, jwtAuthenticator } from '@nats-io/transport-node';
import pino from 'pino';
import { issueSystemCredentials, OperatorModeAuthority } from '@cps/bus';
import { isCpsError } from '@cps/core';
import { LocalCloud, workloadUser } from '@cps/clouds';
import { defaultHome, PlatformHome } from '@cps/platform';
import { Director } from './director.js';

/** Where the node processes' entry points are, beside this app in the repository. */
const entry = (app: 'manager-runtime' | 'agent-runtime'): string =>
  fileURLToPath(new URL(`../../${app}/dist/main.js`, import.meta.url));

/** The web dashboard's build, beside this app (absent until `npm run build` built it). */
const dashboard = fileURLToPath(new URL('../../dashboard/dist/', import.meta.url));

/**
 * The director process: reads the platform home (`CPS_HOME`), joins its NATS with the director's
 * identity, and serves HTTPS on 127.0.0.1 (`CPS_DIRECTOR_PORT`, default 14443). On the start that
 * creates the admin it leaves `run/admin.json` (0600) for `cps up`, which signs the CLI in with it:
 * the generated password (shown once), or no password when it was `CPS_ADMIN_PASSWORD`. Started
 * and restarted by the platform supervisor.
 */
const main = async (): Promise<void> => {
  const log = pino({ level: process.env['CPS_LOG_LEVEL'] ?? 'info' });
  const home = PlatformHome.open(process.env['CPS_HOME'] ?? defaultHome());
  const secrets = home.secrets();
  const info = home.info();
  const identity = await home.directorIdentity();
  const system = async () => {
    const creds = await issueSystemCredentials(secrets.operator, new Date(), 3600_000);
    return connect({
      servers: [...home.natsUrls()],
      tls: { ca: identity.tls.ca, cert: identity.tls.cert, key: identity.tls.key },
      authenticator: jwtAuthenticator(creds.jwt, new TextEncoder().encode(creds.seed)),
    });
  };
  const user = workloadUser();
  const network = home.network();
  const cloud = new LocalCloud({
    dir: join(home.dir, 'cloud'),
    // host mode: nodes reach NATS at the platform address only, and see nothing of the platform's home
    ...(network.mode === 'host' && network.address
      ? { host: { nats: { address: network.address, port: info.natsPort }, hide: home.dir } }
      : {}),
    command: (spec) => ({
      command: process.execPath,
      args: [entry(spec.kind === 'manager' ? 'manager-runtime' : 'agent-runtime')],
    }),
    ...(user && process.getuid?.() === 0 ? { workloadUser: user } : {}),
  });
  const director = await Director.start({
    directorId: home.directorId(),
    natsUrls: home.natsUrls(),
    identity,
    secrets,
    authority: new OperatorModeAuthority(secrets.operator, system),
    clouds: [cloud],
    port: Number(process.env['CPS_DIRECTOR_PORT'] ?? info.directorPort ?? 14443),
    ...(process.env['CPS_DIRECTOR_HOST'] ? { host: process.env['CPS_DIRECTOR_HOST'] } : {}),
    ...(process.env['CPS_STREAM_REPLICAS'] ? { replicas: Number(process.env['CPS_STREAM_REPLICAS']) } : {}),
    ...(process.env['CPS_ADMIN_PASSWORD'] ? { adminPassword: process.env['CPS_ADMIN_PASSWORD'] } : {}),
    accounts: { registration: process.env['CPS_REGISTRATION'] === 'open' ? 'open' : 'admin' },
    ...(existsSync(join(dashboard, 'index.html')) ? { dashboard } : {}),
    httpsKey: home.directorHttpsKey(),
    log,
  });
  writeFileSync(join(home.dir, 'ca.pem'), info.busTrustPem, { mode: 0o644 });
  // what a browser or curl trusts to reach the services that serve HTTPS with a platform certificate
  if (info.servicesCaPem)
    writeFileSync(join(home.dir, 'services-ca.pem'), info.servicesCaPem, { mode: 0o644 });
  // for `cps up` to sign the CLI in: the generated password, or none when it was CPS_ADMIN_PASSWORD
  if (director.adminCreated)
    writeFileSync(
      join(home.runDir, 'admin.json'),
      JSON.stringify({
        username: 'admin',
        ...(director.adminPassword ? { password: director.adminPassword } : {}),
      }),
      { mode: 0o600 },
    );
  writeFileSync(join(home.runDir, 'director.json'), JSON.stringify({ url: director.url, pid: process.pid }), {
    mode: 0o644,
  });
  const stop = (): void => {
    void director.stop().finally(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
};

main().catch((e: unknown) => {
  console.error(isCpsError(e) ? `director failed [${e.code}]: ${e.message}` : e);
  process.exit(1);
});
