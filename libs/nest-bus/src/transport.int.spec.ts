import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Controller, Injectable, Module, UseFilters } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, MessagePattern, Payload, type MicroserviceOptions } from '@nestjs/microservices';
import type { INestMicroservice } from '@nestjs/common';
import { ConflictError, hasErrorCode } from '@cps/core';
import { Bus, defineCommand, subjects } from '@cps/bus';
import { CpsBusContext, CpsBusTransport, CpsRpcExceptionFilter } from './transport.js';
import { TestNats } from '@cps/testing';

const getServiceInfo = defineCommand(
  'get_service_info',
  z.object({}),
  z.object({ state: z.string(), nodes: z.number() }),
);
const addNodes = defineCommand(
  'add_nodes',
  z.object({ count: z.number().int().min(1) }),
  z.object({ requestId: z.string(), total: z.number() }),
);

@Injectable()
class Nodes {
  count = 0;
}

@Controller()
@UseFilters(new CpsRpcExceptionFilter())
class ManagerController {
  constructor(private readonly nodes: Nodes) {}

  @MessagePattern(getServiceInfo.name)
  info(): z.infer<typeof getServiceInfo.reply> {
    return { state: 'RUNNING', nodes: this.nodes.count };
  }

  @MessagePattern(addNodes.name)
  async add(
    @Payload() data: z.infer<typeof addNodes.request>,
    @Ctx() ctx: CpsBusContext,
  ): Promise<z.infer<typeof addNodes.reply>> {
    if (this.nodes.count + data.count > 5) throw new ConflictError('at most 5 nodes');
    await new Promise((r) => setTimeout(r, 1));
    this.nodes.count += data.count;
    return { requestId: ctx.requestId, total: this.nodes.count };
  }
}

@Module({ controllers: [ManagerController], providers: [Nodes] })
class ManagerModule {}

describe('NestJS microservice over the cps bus', () => {
  let nats: TestNats;
  let app: INestMicroservice;
  let director: Bus;
  const address = subjects.manager('a1', 's1');

  beforeAll(async () => {
    nats = await TestNats.start();
    const bus = await nats.bus({ role: 'manager', id: 's1', appId: 'a1', serviceId: 's1' });
    app = await NestFactory.createMicroservice<MicroserviceOptions>(ManagerModule, {
      strategy: new CpsBusTransport({ bus, address, commands: [getServiceInfo, addNodes] }),
      logger: false,
    });
    await app.listen();
    director = await nats.bus({ role: 'director', id: 'd1' });
  });
  afterAll(async () => {
    await app?.close();
    await nats.cleanup();
  });

  it('serves @MessagePattern handlers with injected services', async () => {
    expect(await director.request(address, getServiceInfo, {})).toEqual({ state: 'RUNNING', nodes: 0 });
    expect(await director.request(address, addNodes, { count: 2 }, { requestId: 'r-1' })).toEqual({
      requestId: 'r-1',
      total: 2,
    });
    expect(await director.request(address, getServiceInfo, {})).toEqual({ state: 'RUNNING', nodes: 2 });
  });

  it('validates before the controller runs, and keeps error codes', async () => {
    await expect(
      director.connection
        .request(`${address}.add_nodes`, JSON.stringify({ count: 'many' }), { timeout: 2_000 })
        .then((m) => m.json()),
    ).resolves.toMatchObject({
      code: 'validation',
      issues: [{ path: '$.count' }],
    });
    await expect(director.request(address, addNodes, { count: 4 })).rejects.toSatisfy(
      (e) => hasErrorCode(e, 'conflict') && e.message === 'at most 5 nodes',
    );
    expect(await director.request(address, getServiceInfo, {})).toEqual({ state: 'RUNNING', nodes: 2 });
  });
});
