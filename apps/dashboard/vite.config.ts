import { defineConfig } from 'vite';

/**
 * The dashboard's build: static files in `dist/`, which the director serves at `/`. JSX is
 * compiled by Vite's own transform (no plugin); the SDK's sources are bundled through its
 * `browser` export, which uses the page's `fetch`.
 */
export default defineConfig({
  root: import.meta.dirname,
  resolve: { conditions: ['@cps/source', 'browser', 'module', 'import', 'default'] },
  oxc: { jsx: { runtime: 'automatic' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // the budget is measured by bench case s (dashboard), not here
    chunkSizeWarningLimit: 1_000,
    rolldownOptions: {
      // libraries marked 'use client' for server rendering: meaningless in a single-page app
      onwarn: (w, warn) => {
        if (w.code !== 'MODULE_LEVEL_DIRECTIVE') warn(w);
      },
    },
  },
});
