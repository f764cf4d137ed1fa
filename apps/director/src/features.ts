import type { RouteDefinition } from './api/route.js';
import type { DirectorFeature } from './feature.js';
import { platformFeature } from './platform/platform.feature.js';
import { userFeature } from './users/users.feature.js';
import { applicationFeature } from './applications/applications.feature.js';
import { serviceFeature } from './services/services.feature.js';
import { operationFeature } from './operations/operations.feature.js';
import { provisioningFeature } from './provisioning/provisioning.feature.js';
import { creditFeature } from './credit/credit.feature.js';
import { manifestFeature } from './manifests/manifests.feature.js';
import { historyFeature } from './history/history.feature.js';
import { certificateFeature } from './certificates/certificates.feature.js';

/**
 * The director's features, in one explicit list (no scanning). Their order is the order of the
 * OpenAPI document and of the leader's duties.
 */
export const builtinFeatures: readonly DirectorFeature[] = [
  platformFeature,
  userFeature,
  applicationFeature,
  serviceFeature,
  operationFeature,
  provisioningFeature,
  creditFeature,
  manifestFeature,
  historyFeature,
  certificateFeature,
];

/** Every route of the director, feature by feature (the OpenAPI document's source). */
export const allRoutes: readonly RouteDefinition[] = builtinFeatures.flatMap((f) => Object.values(f.routes));
