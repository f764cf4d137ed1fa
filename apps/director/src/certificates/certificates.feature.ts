import type { DirectorFeature, FeatureContext } from '../feature.js';

/** The routes of this feature (merged into the director's route table). */
export const certificateRoutes = {} as const;

/** Certificates: see the issue; built as one folder, registered in `features.ts`. */
export const certificateFeature = (ctx: FeatureContext): DirectorFeature => {
  void ctx;
  return { name: 'certificates', routes: certificateRoutes, controllers: [], providers: [] };
};
