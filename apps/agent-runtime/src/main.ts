import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CpsError, isCpsError } from '@cps/core';
import { Bus, connectBus } from '@cps/bus';
import { IdentityRenewer, type BusIdentity } from '@cps/platform';
import { builtinServices, ServiceRegistry } from '@cps/services';
import { workloadUser } from '@cps/clouds';
import { ProcessSupervisor } from './processes/index.js';
import { AgentRuntime } from './runtime/agent-runtime.js';

/** The agent process: started by a cloud with its identity in its node directory. */
const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new CpsError('validation', `missing environment variable ${name}`);
  return v;
};

const main = async (): Promise<void> => {
  const nodeDir = env('CPS_NODE_DIR');
  const identity = JSON.parse(readFileSync(join(nodeDir, 'identity.json'), 'utf8')) as BusIdentity;
  const servers = env('CPS_NATS_URLS').split(',');
  const open = (id: BusIdentity) =>
    connectBus({
      servers,
      tls: id.tls,
      credentials: id.credentials,
      inboxPrefix: id.inboxPrefix,
      name: `agent:${env('CPS_NODE_ID')}`,
    });
  const bus = new Bus(await open(identity));
  const renewer = new IdentityRenewer(
    bus,
    { ...identity, certExpiresAt: new Date(identity.certExpiresAt) },
    open,
  );
  renewer.start();
  const user = workloadUser();
  const agent = new AgentRuntime({
    bus,
    service: new ServiceRegistry([...builtinServices]).get(env('CPS_SERVICE_TYPE')),
    appId: env('CPS_APP_ID'),
    serviceId: env('CPS_SERVICE_ID'),
    nodeId: env('CPS_NODE_ID'),
    role: env('CPS_NODE_ROLE'),
    nodeDir,
    ports: { from: Number(env('CPS_PORT_FROM')), to: Number(env('CPS_PORT_TO')) },
    supervisor: new ProcessSupervisor({ logDir: join(nodeDir, 'logs') }),
    ...(user && process.getuid?.() === 0 ? { workloadUser: user } : {}),
  });
  const shutdown = (): void => {
    renewer.stop();
    void agent
      .stop()
      .then(() => bus.close())
      .finally(() => process.exit(0));
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  await agent.start();
};

main().catch((e: unknown) => {
  console.error(isCpsError(e) ? `agent failed [${e.code}]: ${e.message}` : e);
  process.exit(1);
});
