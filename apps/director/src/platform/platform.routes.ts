import { z } from 'zod';
import { defineRoute } from '../api/route.js';
import { HealthSchema } from './platform.schemas.js';

/** The routes of the platform itself: liveness, readiness, metrics, this API's document. */
export const platformRoutes = {
  health: defineRoute({
    operationId: 'health',
    method: 'GET',
    path: '/healthz',
    summary: 'Liveness: the process answers',
    tag: 'platform',
    auth: 'none',
    response: HealthSchema,
  }),
  ready: defineRoute({
    operationId: 'ready',
    method: 'GET',
    path: '/readyz',
    summary: 'Readiness: the bus is connected and the read models are caught up',
    tag: 'platform',
    auth: 'none',
    response: HealthSchema,
    errors: ['unavailable'],
  }),
  metrics: defineRoute({
    operationId: 'metrics',
    method: 'GET',
    path: '/metrics',
    summary: 'Prometheus metrics',
    tag: 'platform',
    auth: 'none',
    response: z.string(),
    produces: 'text/plain',
  }),
  openapi: defineRoute({
    operationId: 'openapi',
    method: 'GET',
    path: '/openapi.json',
    summary: 'This document',
    tag: 'platform',
    auth: 'none',
    response: z.record(z.string(), z.unknown()),
  }),
} as const;
