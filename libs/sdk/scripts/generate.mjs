// Regenerates src/openapi.gen.ts (the SDK's types) from the director's committed OpenAPI document.
// Run with `npm run sdk:generate` after `npm run openapi`; a unit test fails when the file is stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import openapiTS, { astToString } from 'openapi-typescript';

const SPEC = fileURLToPath(new URL('../../../apps/director/openapi.json', import.meta.url));
export const OUT = fileURLToPath(new URL('../src/openapi.gen.ts', import.meta.url));

/** The generated source, from the committed document. */
export const generate = async () => {
  const ast = await openapiTS(JSON.parse(readFileSync(SPEC, 'utf8')), { alphabetize: false });
  return `// Generated from apps/director/openapi.json by libs/sdk/scripts/generate.mjs: do not edit.\n${astToString(ast)}`;
};

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(OUT, await generate());
  console.log(`wrote ${OUT}`);
}
