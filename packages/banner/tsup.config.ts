import { defineConfig } from 'tsup';

export default defineConfig([
  {
    // The package entry points for bundlers and SSR (the element class loads in Node too).
    entry: ['src/index.ts', 'src/auto.ts'],
    format: ['esm', 'cjs'],
    // `pnpm run build:js` (the demo's path) skips declarations: an app does not need them.
    dts: process.env.npm_lifecycle_event !== 'build:js',
    sourcemap: true,
    target: 'es2022',
  },
  {
    // The browser bundle: one <script> tag defines <quiesce-banner>.
    entry: { 'quiesce-banner': 'src/auto.ts' },
    format: ['iife'],
    platform: 'browser',
    minify: true,
    sourcemap: true,
    target: 'es2022',
    outExtension: () => ({ js: '.global.js' }),
  },
]);
