import { join } from 'node:path';
import { parseNodeEnvironment, workloadUser } from '@cps/clouds';
import { joinBus, requireEnv as env, runNodeProcess } from '@cps/platform';
import type { INestMicroservice } from '@nestjs/common';
import { subjects } from '@cps/bus';
import { createBusApp } from '@cps/nest-bus';
import { builtinServices, ServiceRegistry } from '@cps/services';
import { ProcessSupervisor } from './processes/index.js';
import { AgentRuntime } from './runtime/agent-runtime.js';

/**
 * The agent process: started by a cloud with its identity in its node directory; a NestJS
 * microservice over the cps bus, as the manager is.
 */
runNodeProcess('agent', async () => {
  const { nodeId, nodeDir, address, ports } = parseNodeEnvironment(process.env);
  const { bus, renewer } = await joinBus(`agent:${nodeId}`);
  const user = workloadUser();
  const types = new ServiceRegistry([...builtinServices]);
  const agent = new AgentRuntime({
    bus,
    service: types.get(env('CPS_SERVICE_TYPE')),
    types: (type) => (types.has(type) ? types.get(type) : undefined),
    appId: env('CPS_APP_ID'),
    serviceId: env('CPS_SERVICE_ID'),
    nodeId,
    role: env('CPS_NODE_ROLE'),
    nodeDir,
    address,
    ports,
    supervisor: new ProcessSupervisor({ logDir: join(nodeDir, 'logs') }),
    ...(user && process.getuid?.() === 0 ? { workloadUser: user } : {}),
  });
  let app: INestMicroservice | undefined;
  await agent.start({
    serve: async (commands) => {
      app = await createBusApp({
        bus,
        address: subjects.agent(env('CPS_APP_ID'), env('CPS_SERVICE_ID'), nodeId),
        commands,
      });
    },
  });
  return {
    bus,
    renewer,
    stop: async () => {
      await agent.stop();
      await app?.close();
    },
  };
});
