import type { DirectorFeature, FeatureContext } from '../feature.js';

/** The routes of this feature (merged into the director's route table). */
export const historyRoutes = {} as const;

/** History: see the issue; built as one folder, registered in `features.ts`. */
export const historyFeature = (ctx: FeatureContext): DirectorFeature => {
  void ctx;
  return { name: 'history', routes: historyRoutes, controllers: [], providers: [] };
};
