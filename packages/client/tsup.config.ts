import { defineConfig } from 'tsup';

export default defineConfig([
  {
    // The package entry points; the host libraries of the integrations stay external (optional peers).
    entry: ['src/index.ts', 'src/apollo.ts', 'src/urql.ts', 'src/ky.ts'],
    format: ['esm', 'cjs'],
    // Shared chunks in CommonJS too, so `QuiesceRetryError` is one class whichever entry threw it.
    splitting: true,
    // `pnpm run build:js` (the demo's path) skips declarations: an app does not need them.
    dts: process.env.npm_lifecycle_event !== 'build:js',
    sourcemap: true,
    target: 'es2022',
  },
  {
    // The browser bundle: one <script> tag defines the global `QuiesceClient`.
    entry: { 'quiesce-client': 'src/browser.ts' },
    format: ['iife'],
    globalName: 'QuiesceClient',
    platform: 'browser',
    minify: true,
    sourcemap: true,
    target: 'es2022',
    outExtension: () => ({ js: '.global.js' }),
  },
]);
