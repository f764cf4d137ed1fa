import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Validator } from '@seriousme/openapi-schema-validator';
import { allRoutes } from '../features.js';
import { MAX_PATH_PARAM_LENGTH } from './schemas.js';
import { openApiText } from './write-openapi.js';

const committed = join(process.cwd(), 'apps', 'director', 'openapi.json');

describe('the OpenAPI document', () => {
  it('is committed and up to date with the routes of every feature (run `npm run openapi` after changing routes)', () => {
    expect(readFileSync(committed, 'utf8')).toBe(openApiText());
  });

  it('is a valid OpenAPI 3.1 document', async () => {
    const v = new Validator();
    const r = await v.validate(JSON.parse(openApiText()) as Parameters<Validator['validate']>[0]);
    expect(r.errors ?? []).toEqual([]);
    expect(r.valid).toBe(true);
    expect(v.version).toBe('3.1');
  });

  it('documents every route with its inputs, its answer and problem+json errors', () => {
    const doc = JSON.parse(openApiText()) as {
      paths: Record<
        string,
        Record<
          string,
          { responses: Record<string, { content?: Record<string, unknown> }>; requestBody?: unknown }
        >
      >;
    };
    for (const r of Object.values(allRoutes)) {
      const op = doc.paths[r.path]?.[r.method.toLowerCase()];
      expect(op, `${r.method} ${r.path}`).toBeDefined();
      expect(Object.keys(op!.responses)).toContain(String(r.status));
      if (r.body) expect(op!.requestBody, r.operationId).toBeDefined();
      const errors = Object.entries(op!.responses).filter(([s]) => Number(s) >= 400);
      expect(errors.length, r.operationId).toBeGreaterThan(0);
      for (const [, e] of errors) expect(Object.keys(e.content ?? {})).toEqual(['application/problem+json']);
    }
    const ids = Object.values(allRoutes).map((r) => r.operationId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('allows no path parameter longer than the router takes', () => {
    const doc = JSON.parse(openApiText()) as {
      paths: Record<string, Record<string, { parameters: { in: string; schema: { maxLength?: number } }[] }>>;
    };
    const lengths = Object.values(doc.paths)
      .flatMap((ops) => Object.values(ops))
      .flatMap((op) => op.parameters.filter((p) => p.in === 'path').map((p) => p.schema.maxLength ?? 0));
    expect(Math.max(...lengths)).toBe(MAX_PATH_PARAM_LENGTH);
  });
});
