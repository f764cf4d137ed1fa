import { Catch, type ArgumentsHost, type RpcExceptionFilter } from '@nestjs/common';
import { BaseRpcContext, Server, type CustomTransportStrategy } from '@nestjs/microservices';
import { isObservable, lastValueFrom, throwError, type Observable } from 'rxjs';
import type { Address, Bus, CommandDefinition, HandlerContext } from '@cps/bus';

/** What a `@MessagePattern` handler receives as its context: the bus request's metadata. */
export class CpsBusContext extends BaseRpcContext<[HandlerContext]> {
  get requestId(): string {
    return this.args[0].requestId;
  }
  get subject(): string {
    return this.args[0].subject;
  }
}

export interface CpsBusTransportOptions {
  readonly bus: Bus;
  /** Where this process's commands arrive (e.g. `subjects.manager(app, svc)`). */
  readonly address: Address;
  /** Every command a `@MessagePattern(name)` may serve; requests are validated against them. */
  readonly commands: readonly CommandDefinition[];
}

/**
 * NestJS microservice transport over the cps bus: `@MessagePattern('<command name>')` methods serve
 * the command of that name at `<address>.<name>`, with both ends validated by the command's schemas
 * and errors carried as cps error codes. Pass it as `{ strategy: new CpsBusTransport(...) }`.
 */
export class CpsBusTransport extends Server implements CustomTransportStrategy {
  constructor(private readonly o: CpsBusTransportOptions) {
    super();
  }

  listen(callback: (...optionalParams: unknown[]) => void): void {
    const byName = new Map(this.o.commands.map((c) => [c.name, c]));
    for (const [pattern, handler] of this.messageHandlers) {
      const command = byName.get(pattern);
      if (!command) {
        callback(new Error(`@MessagePattern('${pattern}') names no command known to this transport`));
        return;
      }
      this.o.bus.handle(this.o.address, command, async (data, ctx) => {
        const out = this.transformToObservable(
          await handler(data, new CpsBusContext([ctx])),
        ) as Observable<unknown>;
        return isObservable(out) ? await lastValueFrom(out) : out;
      });
    }
    this.o.bus.flush().then(() => callback(), callback);
  }

  async close(): Promise<void> {
    await this.o.bus.close();
  }

  on(): never {
    throw new Error('CpsBusTransport has no events to listen to');
  }

  unwrap<T>(): T {
    return this.o.bus as T;
  }
}

/**
 * Lets errors thrown by handlers reach the transport unchanged, so a CpsError keeps its code
 * (Nest's default filter would turn every error into "Internal server error").
 */
@Catch()
export class CpsRpcExceptionFilter implements RpcExceptionFilter {
  catch(exception: unknown, _host: ArgumentsHost): Observable<never> {
    return throwError(() => exception);
  }
}
