import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  // `pnpm run build:js` (the demo's path) skips declarations: an app does not need them.
  dts: process.env.npm_lifecycle_event !== 'build:js',
  clean: true,
  sourcemap: true,
  target: 'node22',
});
