import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CpsApiError } from '@cps/sdk';

describe('the SDK', () => {
  it('is generated from the committed OpenAPI document (run `npm run sdk:generate` after `npm run openapi`)', async () => {
    // @ts-expect-error -- a plain ES module script of this package, without types
    const { generate } = (await import('../scripts/generate.mjs')) as { generate: () => Promise<string> };
    const committed = readFileSync(join(process.cwd(), 'libs', 'sdk', 'src', 'openapi.gen.ts'), 'utf8');
    expect(committed).toBe(await generate());
  });

  it('turns a problem+json answer into an error with its code and fields', () => {
    const e = CpsApiError.from(
      {
        code: 'validation',
        detail: 'invalid request',
        issues: [{ path: '$.name', code: 'too_big', message: 'long' }],
      },
      new Response(null, { status: 400 }),
    );
    expect(e).toMatchObject({ status: 400, code: 'validation', message: 'invalid request' });
    expect(e.issues[0]?.path).toBe('$.name');
    expect(CpsApiError.from('garbage', new Response(null, { status: 502 }))).toMatchObject({
      code: 'internal',
      message: 'HTTP 502',
    });
    // without a problem document, the code the status stands for
    expect(CpsApiError.from(undefined, new Response(null, { status: 400 }))).toMatchObject({
      code: 'validation',
      message: 'HTTP 400',
    });
    expect(CpsApiError.from({}, new Response(null, { status: 503 })).code).toBe('unavailable');
  });
});
