import { defineConfig } from 'vitest/config';
import { defaultServerConditions } from 'vite';

const tier = (name: string, pattern: string, timeout: number) => ({
  extends: true as const,
  test: {
    name,
    include: [`{libs,apps,tools}/*/src/**/*.${pattern}.spec.ts`, `bench/**/*.${pattern}.spec.ts`],
    testTimeout: timeout,
    hookTimeout: timeout * 2,
  },
});

export default defineConfig({
  // 'module' is a bundler-only condition: in Node workers it makes some packages (the AWS SDK) load their bundler build
  ssr: { resolve: { conditions: ['@cps/source', ...defaultServerConditions.filter((c) => c !== 'module')] } },
  resolve: { conditions: ['@cps/source'] },
  test: {
    pool: 'forks',
    projects: [tier('unit', 'unit', 10_000), tier('int', 'int', 60_000), tier('e2e', 'e2e', 180_000)],
  },
});
