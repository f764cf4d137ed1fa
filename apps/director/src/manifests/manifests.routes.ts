import { z } from 'zod';
import { defineRoute } from '../api/route.js';
import { RefSchema } from '../api/schemas.js';
import {
  ManifestDeploymentSchema,
  ManifestRequestSchema,
  ManifestSchema,
  ManifestValidationSchema,
} from './manifests.schemas.js';

/**
 * The routes of manifests: validate, deploy, export. Validate and deploy take a manifest as the JSON
 * body, or its YAML text as `{"yaml": "<text>"}` or as the body itself (`application/yaml`,
 * `text/yaml`); at most 256 KiB of manifest (`payload_too_large`).
 */
const MANIFEST_MEDIA_TYPES = ['application/json', 'application/yaml', 'text/yaml'];

export const manifestRoutes = {
  validateManifest: defineRoute({
    operationId: 'validateManifest',
    method: 'POST',
    path: '/v1/manifests/validate',
    summary: 'Check a manifest: every issue, with its JSON path (nothing is created)',
    tag: 'manifests',
    status: 200,
    body: ManifestRequestSchema,
    consumes: MANIFEST_MEDIA_TYPES,
    response: ManifestValidationSchema,
  }),
  deployManifest: defineRoute({
    operationId: 'deployManifest',
    method: 'POST',
    path: '/v1/manifests',
    summary:
      'Deploy a manifest: the application now, its services in order by an operation (invalid: nothing is created)',
    tag: 'manifests',
    status: 202,
    body: ManifestRequestSchema,
    consumes: MANIFEST_MEDIA_TYPES,
    response: ManifestDeploymentSchema,
    errors: ['name_taken', 'quota_exceeded'],
  }),
  exportManifest: defineRoute({
    operationId: 'exportManifest',
    method: 'GET',
    path: '/v1/applications/{app}/manifest',
    summary: 'The manifest that deploys this application again (secrets as references)',
    tag: 'manifests',
    params: z.object({ app: RefSchema }),
    response: ManifestSchema,
  }),
} as const;
