import type { DirectorFeature } from '../feature.js';
import { Manifests } from './manifests.js';
import { MANIFESTS, ManifestsController } from './manifests.controller.js';
import { manifestRoutes } from './manifests.routes.js';

/** The environment variable listing the URL prefixes `Archive` may come from (comma-separated). */
export const ARCHIVE_ALLOW_ENV = 'CPS_ARCHIVE_ALLOW';

/** The prefixes of `CPS_ARCHIVE_ALLOW`, read at each deploy; unset or empty: no downloads at all. */
export const archiveAllowList = (env: NodeJS.ProcessEnv = process.env): string[] =>
  (env[ARCHIVE_ALLOW_ENV] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);

/**
 * Manifests (ConPaaS's application manifests): validate, deploy as an operation, export.
 * Routes in `manifests.routes.ts`; archives come only from the prefixes of `CPS_ARCHIVE_ALLOW`.
 */
export const manifestFeature: DirectorFeature = {
  name: 'manifests',
  routes: manifestRoutes,
  create: (ctx) => {
    const manifests = new Manifests(
      ctx.core,
      ctx.applications,
      ctx.services,
      ctx.serviceOperations,
      ctx.operations,
      ctx.registry,
      {
        clouds: ctx.clouds,
        archiveAllow: () => archiveAllowList(),
        maxArchiveBytes: 256 * 1024 * 1024,
        downloadTimeoutMs: 120_000,
        stepTimeoutMs: 10 * 60_000,
        pollMs: 200,
      },
    );
    return {
      controllers: [ManifestsController],
      providers: [{ provide: MANIFESTS, useValue: manifests }],
      operations: [manifests.deployOp],
    };
  },
};
