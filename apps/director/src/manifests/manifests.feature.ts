import type { DirectorFeature, FeatureContext } from '../feature.js';

/** The routes of this feature (merged into the director's route table). */
export const manifestRoutes = {} as const;

/** Manifests: see the issue; built as one folder, registered in `features.ts`. */
export const manifestFeature = (ctx: FeatureContext): DirectorFeature => {
  void ctx;
  return { name: 'manifests', routes: manifestRoutes, controllers: [], providers: [] };
};
