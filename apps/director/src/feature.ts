import type { Provider, Type } from '@nestjs/common';
import type { Logger } from 'pino';
import type { Bus } from '@cps/bus';
import type { Provisioner } from '@cps/clouds';
import type { IdentityIssuer } from '@cps/platform';
import type { ServiceRegistry } from '@cps/services';
import type { HttpMetrics } from './api/metrics.js';
import type { RouteDefinition } from './api/route.js';
import type { ApplicationOperations } from './applications/application-operations.js';
import type { Applications } from './applications/applications.js';
import type { DirectorCore } from './core/director-core.js';
import type { Credit } from './credit/credit.js';
import type { OperationKind } from './operations/operation.js';
import type { Operations } from './operations/operations.js';
import type { ServiceOperations } from './services/service-operations.js';
import type { Services } from './services/services.js';
import type { Accounts } from './users/accounts.js';

/**
 * What a feature is built from in a running director: the core, the bus, and the services that
 * several features use (built once by the director).
 */
export interface FeatureContext {
  readonly core: DirectorCore;
  readonly bus: Bus;
  readonly registry: ServiceRegistry;
  readonly log: Logger;
  /** The names of the clouds nodes can be placed on (the first is the default). */
  readonly clouds: readonly string[];
  readonly metrics: HttpMetrics;
  /** The OpenAPI document of every feature's routes. */
  readonly openapi: () => Record<string, unknown>;
  readonly accounts: Accounts;
  readonly applications: Applications;
  readonly applicationOperations: ApplicationOperations;
  readonly services: Services;
  readonly serviceOperations: ServiceOperations;
  readonly operations: Operations;
  readonly provisioner: Provisioner;
  readonly issuer: IdentityIssuer;
  readonly credit: Credit;
  /** How often the leader reconciles the clouds with the records, and charges credit. */
  readonly every: { readonly reconcileMs: number; readonly chargeMs: number };
}

/** A duty of the leader, started when this director leads and stopped when it no longer does. */
export interface Duty {
  stop(): Promise<void> | void;
}

/** A feature's parts in a running director. */
export interface FeatureParts {
  /** The controllers serving its routes, and the values they inject, by token. */
  readonly controllers: readonly Type[];
  readonly providers: readonly Provider[];
  /** The kinds of operation it defines (run by `Operations`, taken over by the leader). */
  readonly operations?: readonly OperationKind[];
  /** Its singleton duties: started, in the order of the features, when this director becomes the leader. */
  leading?(): Promise<Duty> | Duty;
  stop?(): Promise<void>;
}

/**
 * One area of the director (users, applications, manifests, ...), one folder: its routes (each
 * defined with `defineRoute` in its `*.routes.ts`, served by its controller), and how it is built.
 */
export interface DirectorFeature {
  readonly name: string;
  readonly routes: Readonly<Record<string, RouteDefinition>>;
  create(ctx: FeatureContext): FeatureParts;
}
