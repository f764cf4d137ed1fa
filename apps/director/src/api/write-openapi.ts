import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { allRoutes } from '../features.js';
import { buildOpenApi } from './openapi.js';

/** The committed OpenAPI document (the SDK is generated from it). */
export const OPENAPI_FILE = fileURLToPath(new URL('../../openapi.json', import.meta.url));

/** The document as it is committed: generated from every feature's routes, stable key order. */
export const openApiText = (): string =>
  JSON.stringify(buildOpenApi(allRoutes, { version: '0.1.0' }), null, 2) + '\n';

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(OPENAPI_FILE, openApiText());
  console.log(`wrote ${OPENAPI_FILE}`);
}
