import { EnrollReplySchema, EnrollRequestSchema, ReenrollRequestSchema } from '@cps/platform';
import { defineRoute } from '../api/route.js';
import { listOf } from '../api/schemas.js';
import { CloudSchema, ResourceSchema } from './provisioning.schemas.js';

/** The routes of provisioning: the clouds, the caller's nodes and what they cost, a node's enrollment. */
export const provisioningRoutes = {
  clouds: defineRoute({
    operationId: 'listClouds',
    method: 'GET',
    path: '/v1/clouds',
    summary: 'The clouds nodes can be placed on',
    tag: 'platform',
    response: listOf('clouds', CloudSchema),
  }),
  resources: defineRoute({
    operationId: 'listResources',
    method: 'GET',
    path: '/v1/resources',
    summary: 'Your nodes, with their cost so far',
    tag: 'platform',
    response: listOf('resources', ResourceSchema),
  }),
  enroll: defineRoute({
    operationId: 'enrollNode',
    method: 'POST',
    path: '/v1/nodes/enroll',
    summary: 'A cloud node trades its one-time token and a CSR for its certificate and JWT',
    tag: 'platform',
    auth: 'none',
    status: 200,
    body: EnrollRequestSchema,
    response: EnrollReplySchema,
  }),
  reenroll: defineRoute({
    operationId: 'reenrollNode',
    method: 'POST',
    path: '/v1/nodes/reenroll',
    summary: 'A node whose certificate expired proves it holds its key and gets a fresh certificate and JWT',
    tag: 'platform',
    auth: 'none',
    status: 200,
    body: ReenrollRequestSchema,
    response: EnrollReplySchema,
  }),
} as const;
