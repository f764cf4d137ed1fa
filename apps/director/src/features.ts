import type { DirectorFeature, FeatureContext } from './feature.js';
import { routes } from './api/routes.js';
import { manifestRoutes, manifestFeature } from './manifests/manifests.feature.js';
import { historyRoutes, historyFeature } from './history/history.feature.js';
import { certificateRoutes, certificateFeature } from './certificates/certificates.feature.js';

/** The director's features, in one explicit list (no scanning). */
export const builtinFeatures: readonly ((ctx: FeatureContext) => DirectorFeature)[] = [
  manifestFeature,
  historyFeature,
  certificateFeature,
];

/** Every route of the director: the core table and each feature's (the OpenAPI document's source). */
export const allRoutes = { ...routes, ...manifestRoutes, ...historyRoutes, ...certificateRoutes };
