import type { Provider, Type } from '@nestjs/common';
import type { Logger } from 'pino';
import type { Bus } from '@cps/bus';
import type { Provisioner } from '@cps/clouds';
import type { IdentityIssuer } from '@cps/platform';
import type { ServiceRegistry } from '@cps/services';
import type { RouteDefinition } from './api/route.js';
import type { Applications } from './applications/applications.js';
import type { DirectorCore } from './core/director-core.js';
import type { OperationKind } from './operations/operation.js';
import type { Operations } from './operations/operations.js';
import type { Supervisor } from './supervision/supervisor.js';
import type { Accounts } from './users/accounts.js';

/** What a feature of the director is built from. */
export interface FeatureContext {
  readonly core: DirectorCore;
  readonly bus: Bus;
  readonly registry: ServiceRegistry;
  readonly accounts: Accounts;
  readonly applications: Applications;
  readonly operations: Operations;
  readonly supervisor: Supervisor;
  readonly provisioner: Provisioner;
  readonly issuer: IdentityIssuer;
  /** The names of the clouds nodes can be placed on (the first is the default). */
  readonly clouds: readonly string[];
  readonly log: Logger;
}

/**
 * One area of the API (manifests, event history, certificates, ...): its routes (merged into the
 * one route table the OpenAPI document is built from), its controllers and the values they inject,
 * and what it runs while this director is the leader.
 */
export interface DirectorFeature {
  readonly name: string;
  readonly routes: Readonly<Record<string, RouteDefinition>>;
  readonly controllers: readonly Type[];
  readonly providers: readonly Provider[];
  /** The kinds of operation it defines (run by `Operations`, taken over by the leader). */
  readonly operations?: readonly OperationKind[];
  /** Singleton duties: started when this director becomes the leader, stopped when it stops being it. */
  leading?(): { stop(): Promise<void> | void };
  stop?(): Promise<void>;
}
