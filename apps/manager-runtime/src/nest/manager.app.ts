import 'reflect-metadata';
import {
  Controller,
  Inject,
  Module,
  UseFilters,
  type DynamicModule,
  type INestMicroservice,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, MessagePattern, Payload, type MicroserviceOptions } from '@nestjs/microservices';
import { NotFoundError } from '@cps/core';
import { subjects, type Bus } from '@cps/bus';
import { CpsBusContext, CpsBusTransport, CpsRpcExceptionFilter } from './transport.js';
import { GENERIC_MANAGER_METHODS } from '@cps/services';
import type { ManagerRuntime } from '../runtime/manager-runtime.js';

const MANAGER_RUNTIME = Symbol('ManagerRuntime');

/** The generic commands every manager serves; plugin methods arrive through `call`. */
const COMMANDS = [...GENERIC_MANAGER_METHODS, 'call'];

@Controller()
@UseFilters(new CpsRpcExceptionFilter())
class ManagerController {
  constructor(@Inject(MANAGER_RUNTIME) private readonly runtime: ManagerRuntime) {}

  @MessagePattern(COMMANDS)
  dispatch(@Payload() data: unknown, @Ctx() ctx: CpsBusContext): Promise<unknown> {
    const name = ctx.subject.split('.').at(-1) ?? '';
    const served = this.runtime.commands().get(name);
    if (!served) throw new NotFoundError(`no command ${name}`);
    return Promise.resolve(served.handle(data as never, ctx.getArgs()[0]));
  }
}

@Module({})
class ManagerModule {
  static forRuntime(runtime: ManagerRuntime): DynamicModule {
    return {
      module: ManagerModule,
      controllers: [ManagerController],
      providers: [{ provide: MANAGER_RUNTIME, useValue: runtime }],
    };
  }
}

/**
 * The manager as a NestJS microservice over the cps bus: the runtime (started with
 * `serveBus: false`) answers through a controller, with schemas checked by the transport.
 */
export const createManagerApp = async (
  runtime: ManagerRuntime,
  bus: Bus,
  appId: string,
  serviceId: string,
): Promise<INestMicroservice> => {
  const app = await NestFactory.createMicroservice<MicroserviceOptions>(ManagerModule.forRuntime(runtime), {
    strategy: new CpsBusTransport({
      bus,
      address: subjects.manager(appId, serviceId),
      commands: [...runtime.commands().values()].map((c) => c.command),
    }),
    logger: false,
  });
  await app.listen();
  return app;
};
