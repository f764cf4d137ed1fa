import 'reflect-metadata';
import { Controller, Module, UseFilters, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, MessagePattern, Payload, type MicroserviceOptions } from '@nestjs/microservices';
import { NotFoundError } from '@cps/core';
import type { Address, Bus, CommandDefinition, Handler } from '@cps/bus';
import { CpsBusContext, CpsBusTransport, CpsRpcExceptionFilter } from './transport.js';

/** One command a process serves, with its handler. */
export interface ServedCommand {
  readonly command: CommandDefinition;
  readonly handle: Handler<CommandDefinition>;
}

export interface BusAppOptions {
  readonly bus: Bus;
  /** Where the commands arrive (`subjects.manager(app, svc)`, `subjects.agent(app, svc, node)`). */
  readonly address: Address;
  /** The commands served, by name. */
  readonly commands: ReadonlyMap<string, ServedCommand>;
}

/**
 * A runtime's command table served as a NestJS microservice over the cps bus: one controller whose
 * `@MessagePattern` names every command of the table, dispatching each to its handler, with both
 * ends validated by the transport. The manager and the agent are both made this way.
 */
export const createBusApp = async (o: BusAppOptions): Promise<INestMicroservice> => {
  const names = [...o.commands.keys()];

  @Controller()
  @UseFilters(new CpsRpcExceptionFilter())
  class CommandsController {
    @MessagePattern(names)
    dispatch(@Payload() data: unknown, @Ctx() ctx: CpsBusContext): Promise<unknown> {
      const name = ctx.subject.split('.').at(-1) ?? '';
      const served = o.commands.get(name);
      if (!served) throw new NotFoundError(`no command ${name}`);
      return Promise.resolve(served.handle(data as never, ctx.getArgs()[0]));
    }
  }

  @Module({ controllers: [CommandsController] })
  class CommandsModule {}

  const app = await NestFactory.createMicroservice<MicroserviceOptions>(CommandsModule, {
    strategy: new CpsBusTransport({
      bus: o.bus,
      address: o.address,
      commands: [...o.commands.values()].map((c) => c.command),
    }),
    logger: false,
  });
  await app.listen();
  return app;
};
